"""The one exception every parser raises, carrying a reason used as a drop-counter key."""


class WireError(ValueError):
    """Malformed input. ``reason`` is a short key like ``"ipv4.bad_checksum"``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
