"""The ephemeral port range: local ports handed out when a socket names none, to TCP and UDP alike."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from pystack.config_check import need


@dataclass(frozen=True, slots=True)
class PortRange:
    """Ports ``low`` to ``high`` inclusive (the kernel's net.ipv4.ip_local_port_range, 32768-60999)."""

    low: int = 32768
    high: int = 60999

    def __post_init__(self) -> None:
        need(self, 1 <= self.low <= self.high <= 65535, "need 1 <= low <= high <= 65535")

    def pick(self, rng: random.Random, taken: Callable[[int], bool]) -> int | None:
        """A port not ``taken``, scanning from a random start (RFC 6056 3.3.1) so that the next port is
        not guessable from the last; None when every port is taken."""
        low = self.low
        span = self.high - low + 1
        start = rng.randrange(span)
        for i in range(span):
            port = low + (start + i) % span
            if not taken(port):
                return port
        return None
