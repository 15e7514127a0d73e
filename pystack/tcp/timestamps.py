"""RFC 7323 timestamps of one connection: the TSval clock, TS.Recent, and the rules that use them.

- the clock (5.4): milliseconds from a per-host-pair offset, never going back;
- TS.Recent (4.3): the peer's TSval to echo, taken from segments that cover Last.ACK.sent;
- PAWS (5.3): a segment whose TSval is older than TS.Recent is an old duplicate, unless TS.Recent has
  gone stale (5.5), or (as Linux) the segment is a duplicate ACK that a newer one merely overtook;
- RTT from echoes (4.1), with Karn's rule for them: the echo of a TSval sent before the last
  retransmission may time the original transmission, so it times nothing.

The connection decides that the option is in use (``ok``: both SYNs carried it, RFC 7323 3.2), builds
the segments, and keeps PAWS's test on its header-prediction path inline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pystack.tcp.seq import MASK
from pystack.wire.tcp import ACK

if TYPE_CHECKING:
    from pystack.wire.tcp import TcpSegment

HZ = 1000
"""TSval ticks per second. RFC 7323 5.4 allows 1 ms to 1 s per tick; 1 ms is what RTT samples from
echoes resolve, and the clock granularity G of the RTO (pystack.tcp.rtt)."""
IDLE_LIMIT = 24 * 24 * 3600.0
"""Seconds after which TS.Recent is no longer valid for PAWS (RFC 7323 5.5): a protocol constant, 24 days,
a little under 2**31 ticks of the fastest clock the RFC allows, past which a TSval's age has no sign."""


class Timestamps:
    __slots__ = ("ok", "recent", "recent_age", "_offset", "_last", "_rtx_clock")

    def __init__(self, offset: int) -> None:
        self.ok = False
        """Both SYNs carried the option (RFC 7323 3.2): every segment carries it, and PAWS applies."""
        self.recent = 0
        """TS.Recent: the peer's TSval we echo (RFC 7323 4.3)."""
        self.recent_age = 0.0
        """When TS.Recent was set (RFC 7323 5.5)."""
        self._offset = offset
        """Where the clock starts (RFC 7323 5.4): pystack.tcp.isn keys it per pair of hosts."""
        self._last = 0
        self._rtx_clock: int | None = None
        """The clock at our last retransmission, None before any: echoes of older TSvals time nothing."""

    def clock(self, now: float) -> int:
        """TSval now (RFC 7323 5.4). Never goes back, even if callers hand in times out of order (a batch's
        time after a live clock's)."""
        value = int(now * HZ)
        if value < self._last:
            value = self._last
        self._last = value
        return (value + self._offset) & MASK

    def remember(self, ts_val: int, now: float) -> None:
        """TS.Recent from an acceptable segment that covers Last.ACK.sent (RFC 7323 4.3), or from the SYN."""
        self.recent = ts_val
        self.recent_age = now

    def paws_rejects(self, seg: TcpSegment, ts_val: int, now: float, rcv_nxt: int, snd_una: int, rto: float) -> bool:
        """RFC 7323 5.3 PAWS: a TSval older than TS.Recent marks an old duplicate, to be dropped (and ACKed)
        unless TS.Recent is older than 5.5's limit. Except a duplicate ACK, no older than an RTO, merely
        overtaken by a newer segment: it still carries SACK news (Linux's tcp_disordered_ack)."""
        behind = (self.recent - ts_val) & MASK
        if not (0 < behind < 0x80000000 and now - self.recent_age < IDLE_LIMIT):
            return False
        return not (seg.flags == ACK and not seg.payload and seg.seq == rcv_nxt and seg.ack == snd_una
                    and behind <= rto * HZ)

    def rtt(self, ecr: int | None, now: float) -> float | None:
        """The round trip an echoed TSval measures (RFC 7323 4.1), in seconds; None without an echo (0 is
        none, as a SYN's TSecr is 0), or for a TSval sent before our last retransmission (Karn's rule)."""
        if not ecr:
            return None
        if self._rtx_clock is not None and ((ecr - self._rtx_clock) & MASK) >= 0x80000000:
            return None
        return ((self.clock(now) - ecr) & MASK) / HZ

    def retransmitted(self, now: float) -> None:
        """A segment was just sent again: echoes of TSvals before this one no longer time anything."""
        self._rtx_clock = self.clock(now)
