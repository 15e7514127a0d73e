"""Retransmission timeout estimation (RFC 6298): SRTT, RTTVAR, RTO, and exponential backoff."""

from __future__ import annotations

from pystack.tcp.timestamps import HZ

G = 1 / HZ
"""RFC 6298 2.2's clock granularity G: the tick of the TSval clock that times RTT samples when timestamps
are in use (1 ms); samples without them are read on a finer clock."""


class RttEstimator:
    __slots__ = ("srtt", "rttvar", "rto", "_base", "_min", "_max", "_min_on_variance")

    def __init__(self, initial: float, minimum: float, maximum: float, min_on_variance: bool = False) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self._min = minimum
        self._max = maximum
        self._min_on_variance = min_on_variance
        """TcpConfig.rto_min_on_variance: the floor bounds 4*RTTVAR, not the sum (Linux)."""
        self._base = initial  # RTO computed from the samples, before backoff
        self.rto = initial  # RFC 6298 2.1

    def sample(self, r: float) -> None:
        """Fold in one RTT measurement (never from a retransmitted segment: Karn, RFC 6298 3)."""
        if r < 0:
            return
        if self.srtt is None:  # RFC 6298 2.2
            self.srtt = r
            self.rttvar = r / 2
        else:  # RFC 6298 2.3, alpha = 1/8, beta = 1/4
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        if self._min_on_variance:
            rto = self.srtt + max(self._min, 4 * self.rttvar)
        else:
            rto = self.srtt + max(G, 4 * self.rttvar)
        self._base = rto = min(max(rto, self._min), self._max)  # RFC 6298 2.4, 2.5
        self.rto = rto  # a new sample also ends any backoff (RFC 6298 5.7)

    def backoff(self) -> None:
        """Double the RTO after a timeout (RFC 6298 5.5), up to the maximum."""
        self.rto = min(self.rto * 2, self._max)

    def reset_backoff(self) -> None:
        self.rto = self._base

    def syn_fallback(self, rto: float = 3.0) -> None:
        """RFC 6298 5.7: the SYN was retransmitted and nothing was measured, so start data at 3 s."""
        if self.srtt is None and self._base < rto:
            self._base = self.rto = rto
