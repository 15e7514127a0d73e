"""Congestion control behind a small interface, so algorithms can be swapped (as aioquic does).

The connection owns loss *detection* and recovery (dup ACKs, NewReno partial ACKs, SACK holes);
a controller only decides ``cwnd`` and ``ssthresh`` at the events below. ``NewReno`` implements
RFC 5681 (slow start, congestion avoidance with appropriate byte counting, RFC 3465) and the window
arithmetic of RFC 6582 fast recovery. ``Cubic`` (RFC 9438, Linux's default) changes congestion
avoidance and the reduction on loss, and keeps the rest.
"""

from __future__ import annotations

from typing import Callable

from pystack.tcp.seq import seq_lt

SSTHRESH_INITIAL = 1 << 30
"""ssthresh before any loss: "arbitrarily high" (RFC 5681 3.1)."""


class CongestionControl:
    """Interface. All sizes are bytes; ``flight`` is the data outstanding when the event happened."""

    __slots__ = ("mss", "cwnd", "ssthresh", "slow_start_limit", "_max_flight", "_use_end", "_limited")

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        self.mss = mss
        self.cwnd = initial_window_segments * mss
        self.ssthresh = SSTHRESH_INITIAL
        self.slow_start_limit = 2
        """TcpConfig.slow_start_limit, set by the connection."""
        self._max_flight = 0
        """The most bytes in flight in the current window (until SND.UNA passes ``_use_end``), and whether
        the flight filled cwnd in it (``_limited``): how much of cwnd was used (``used``)."""
        self._use_end = 0
        self._limited = False

    def set_mss(self, mss: int) -> None:
        self.mss = mss

    def slow_start(self, acked: int) -> None:
        """Grow cwnd by the ``acked`` bytes, at most ``slow_start_limit`` SMSS of them (RFC 3465 2.2's L), all
        of them when that is 0."""
        limit = self.slow_start_limit * self.mss
        self.cwnd += acked if not limit or acked < limit else limit

    def track_use(self, flight: int, una: int, nxt: int) -> None:
        """After sending, with ``flight`` bytes out from SND.UNA ``una`` to SND.NXT ``nxt``: remember the
        largest flight of this window, or that it filled cwnd (as Linux's tcp_cwnd_validate); a window
        ends when SND.UNA passes what was sent when it began."""
        limited = flight + self.mss > self.cwnd
        if not seq_lt(una, self._use_end) or limited or (not self._limited and flight > self._max_flight):
            self._limited = limited
            self._max_flight = flight
            self._use_end = nxt

    def used(self) -> bool:
        """Whether the flight tested cwnd (TcpConfig.cwnd_validation, RFC 7661's idea): in slow start while
        cwnd is below twice the largest flight of the window, in congestion avoidance when it filled cwnd."""
        if self.cwnd < self.ssthresh:
            return self.cwnd < 2 * self._max_flight
        return self._limited

    def on_ack(self, acked: int, flight: int, now: float, srtt: float) -> None:
        """New data acknowledged outside loss recovery; ``srtt`` in seconds (0 before any sample)."""
        raise NotImplementedError

    def on_enter_recovery(self, flight: int, now: float) -> None:
        """Loss detected by duplicate ACKs or SACK; the connection retransmits."""
        raise NotImplementedError

    def on_partial_ack(self, acked: int) -> None:
        """An ACK inside recovery that advanced SND.UNA but not past the recovery point."""
        raise NotImplementedError

    def on_dupack_in_recovery(self) -> None:
        """A further duplicate ACK during NewReno recovery (window inflation)."""
        raise NotImplementedError

    def on_exit_recovery(self, flight: int) -> None:
        raise NotImplementedError

    def on_timeout(self, flight: int, now: float) -> None:
        """The retransmission timer expired."""
        raise NotImplementedError


class NewReno(CongestionControl):
    __slots__ = ("_ca_acked",)

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        super().__init__(mss, initial_window_segments)
        self._ca_acked = 0

    def on_ack(self, acked: int, flight: int, now: float, srtt: float) -> None:
        if self.cwnd < self.ssthresh:  # slow start (RFC 5681 3.1, RFC 3465 2.2)
            self.slow_start(acked)
        else:  # congestion avoidance: one SMSS per cwnd of bytes acked (RFC 5681 3.1, RFC 3465 2.1)
            self._ca_acked += acked
            if self._ca_acked >= self.cwnd:
                self._ca_acked -= self.cwnd
                self.cwnd += self.mss

    def on_enter_recovery(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)  # RFC 5681 equation (4)
        self.cwnd = self.ssthresh + 3 * self.mss  # RFC 6582 3.2 step 2 (inflated by the 3 dup ACKs)
        self._ca_acked = 0

    def on_dupack_in_recovery(self) -> None:
        self.cwnd += self.mss  # RFC 6582 3.2 step 3

    def on_partial_ack(self, acked: int) -> None:
        # RFC 6582 3.2 step 5: deflate by the amount acked, add back one SMSS if that was >= SMSS.
        self.cwnd = max(self.cwnd - acked + (self.mss if acked >= self.mss else 0), self.mss)

    def on_exit_recovery(self, flight: int) -> None:
        self.cwnd = min(self.ssthresh, max(flight, self.mss) + self.mss)  # RFC 6582 3.2 step 4 option 1

    def on_timeout(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)  # RFC 5681 equation (4)
        self.cwnd = self.mss  # loss window (RFC 5681 3.1)
        self._ca_acked = 0


class Cubic(NewReno):
    """CUBIC (RFC 9438): after a loss the window falls to beta = 0.7 of what it was (not half), then
    follows a cubic of the time since: fast while far below W_max, the window where the loss happened,
    flat around it (concave), then probing beyond (convex). Growth depends on time rather than on round
    trips, so long and short paths share alike; where Reno would grow faster (short paths, small
    windows) it grows as Reno would (the Reno-friendly region, 4.3). Slow start, recovery's window
    arithmetic and the loss window after a timeout are NewReno's (RFC 9438 4.8, 4.10)."""

    C = 0.4
    """Scaling constant of the cubic, in segments per second cubed (RFC 9438 5)."""
    BETA = 0.7
    """Multiplicative decrease (RFC 9438 4.6)."""
    ALPHA = 3 * (1 - BETA) / (1 + BETA)
    """Reno-friendly additive increase per RTT that gives Reno's average window (RFC 9438 4.3)."""

    __slots__ = ("_w_max", "_k", "_epoch", "_w_est", "_frac")

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        super().__init__(mss, initial_window_segments)
        self._w_max = 0.0  # segments, where the last congestion event happened
        self._k = 0.0  # seconds from the epoch until the cubic is back at _w_max
        self._epoch: float | None = None  # start of this congestion avoidance stage (t_epoch)
        self._w_est = 0.0  # the Reno-friendly estimate, segments
        self._frac = 0.0  # growth below one byte, carried to the next ACK

    def on_ack(self, acked: int, flight: int, now: float, srtt: float) -> None:
        mss = self.mss
        if self.cwnd < self.ssthresh:  # slow start, as RFC 5681 / 3465 (RFC 9438 4.10)
            self.slow_start(acked)
            return
        cwnd = self.cwnd / mss
        if self._epoch is None:  # RFC 9438 4.2: a new stage starts with its first ACK
            self._epoch = now
            if cwnd < self._w_max:
                self._k = ((self._w_max - cwnd) / self.C) ** (1 / 3)
            else:
                self._k = 0.0
                self._w_max = cwnd
            self._w_est = cwnd
        t = now - self._epoch
        segments = acked / mss
        alpha = 1.0 if self._w_est >= self._w_max else self.ALPHA
        self._w_est += alpha * segments / cwnd
        if self.C * (t - self._k) ** 3 + self._w_max < self._w_est:
            grow = self._w_est - cwnd  # the Reno-friendly region
        else:
            target = self.C * (t + srtt - self._k) ** 3 + self._w_max  # where to be one RTT from now
            if target < cwnd:
                target = cwnd
            elif target > 1.5 * cwnd:
                target = 1.5 * cwnd
            grow = (target - cwnd) * segments / cwnd  # (target - cwnd) / cwnd per segment acked (4.4, 4.5)
        if grow > 0:
            self._frac += grow * mss
            whole = int(self._frac)
            self.cwnd += whole
            self._frac -= whole

    def _reduce(self, flight: int) -> None:
        """W_max and ssthresh at a congestion event (RFC 9438 4.6, with fast convergence 4.7)."""
        cwnd = self.cwnd / self.mss
        self._w_max = cwnd * (1 + self.BETA) / 2 if cwnd < self._w_max else cwnd
        self.ssthresh = max(int(flight * self.BETA), 2 * self.mss)
        self._epoch = None
        self._frac = 0.0

    def on_enter_recovery(self, flight: int, now: float) -> None:
        self._reduce(flight)
        # As NewReno (RFC 6582 step 2); SACK recovery then sets cwnd = ssthresh.
        self.cwnd = self.ssthresh + 3 * self.mss

    def on_timeout(self, flight: int, now: float) -> None:
        self._reduce(flight)
        self.cwnd = self.mss  # the loss window (RFC 9438 4.8)


ALGORITHMS: dict[str, Callable[[int, int], CongestionControl]] = {"newreno": NewReno, "cubic": Cubic}
