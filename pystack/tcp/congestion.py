"""Congestion control behind a small interface, so algorithms can be swapped (as aioquic does).

The connection owns loss *detection* and recovery (dup ACKs, NewReno partial ACKs, SACK holes);
a controller only decides ``cwnd`` and ``ssthresh`` at the events below. ``NewReno`` implements
RFC 5681 (slow start, congestion avoidance with appropriate byte counting, RFC 3465) and the window
arithmetic of RFC 6582 fast recovery.
"""

from __future__ import annotations

from typing import Callable


class CongestionControl:
    """Interface. All sizes are bytes; ``flight`` is the data outstanding when the event happened."""

    __slots__ = ("mss", "cwnd", "ssthresh")

    def __init__(self, mss: int, initial_window_segments: int) -> None:
        self.mss = mss
        self.cwnd = initial_window_segments * mss
        self.ssthresh = 1 << 30  # "arbitrarily high" (RFC 5681 3.1)

    def set_mss(self, mss: int) -> None:
        self.mss = mss

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        """New data acknowledged outside loss recovery."""
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

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        if self.cwnd < self.ssthresh:  # slow start, L = 2 SMSS (RFC 3465 2.2)
            self.cwnd += min(acked, 2 * self.mss)
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


ALGORITHMS: dict[str, Callable[[int, int], CongestionControl]] = {"newreno": NewReno}
