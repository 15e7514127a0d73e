"""Counters of frames in and out and of drops by reason.

Every drop in the stack goes through :meth:`Counters.drop` with a short reason such as
``"ipv4.bad_checksum"``, so the daemon can print, and tests can assert, exactly why input was refused.
"""

from __future__ import annotations

from collections import Counter


class Counters(Counter[str]):
    """A ``Counter`` with a helper for drops; keys are ``"drop.<layer>.<reason>"`` or plain event names."""

    def drop(self, reason: str) -> None:
        self["drop." + reason] += 1

    def drops(self) -> dict[str, int]:
        """Drops only, keyed by reason without the ``drop.`` prefix."""
        return {k[5:]: v for k, v in self.items() if k.startswith("drop.")}

    def total_drops(self) -> int:
        return sum(v for k, v in self.items() if k.startswith("drop."))

    def report(self) -> str:
        """One line per counter, sorted, for the daemon's shutdown summary."""
        return "\n".join(f"  {k:<40} {v}" for k, v in sorted(self.items()))
