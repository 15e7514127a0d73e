"""The send buffer of a connection: the bytes from SND.UNA on, and the FIN queued after them.

Offsets into it are offsets from SND.UNA (the connection turns sequence numbers into them). The
FIN, once queued, sits just past the last byte: it takes one sequence number after the data.
"""

from __future__ import annotations


class SendBuffer:
    __slots__ = ("data", "base", "cap", "cap_max", "fin", "fin_acked", "acked")

    def __init__(self, cap: int, cap_max: int) -> None:
        self.data = bytearray()
        self.base = 0
        """Where SND.UNA's byte sits in ``data``: acknowledged bytes are dropped from the front only when
        they are more than half of it, so appending does not make the bytearray copy itself each time."""
        self.cap = cap
        """How many unacknowledged bytes it takes; grows with the window (see ``follow``)."""
        self.cap_max = cap_max
        self.fin = False
        """The user shut the write side: a FIN follows the data."""
        self.fin_acked = False
        self.acked = 0
        """Sequence numbers acknowledged in all, the FIN's included: an unbounded int that does not wrap
        with the sequence space, as Linux's 64-bit tcpi_bytes_acked (RFC 4898 HCThruOctetsAcked)."""

    def __len__(self) -> int:
        """Bytes not yet acknowledged (sent or not)."""
        return len(self.data) - self.base

    def space(self) -> int:
        return max(self.cap - len(self.data) + self.base, 0)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append as much of ``data`` as fits; returns how much did."""
        n = min(len(data), self.cap - len(self.data) + self.base)
        if n <= 0:
            return 0
        self.data += data[:n] if n < len(data) else data
        return n

    def view(self) -> memoryview:
        """The bytes from SND.UNA on, without copying (slices of it are copied into segments). Callers
        keep it only while they build segments: ``data`` cannot change size while a view lives."""
        return memoryview(self.data)[self.base:]

    def acknowledge(self, acked: int) -> int:
        """SND.UNA moved ``acked`` sequence numbers: drop those bytes; one more than the data held is
        the FIN. Returns how many data bytes went (the user may write again)."""
        self.acked += acked
        data = self.data
        base = self.base
        held = len(data) - base
        if acked > held:
            self.fin_acked = True
            acked = held
        if acked:
            if acked == held:
                data.clear()
                self.base = 0
            else:
                base += acked
                if base > held - acked:  # more acknowledged than left: drop it (amortized O(1))
                    del data[:base]
                    base = 0
                self.base = base
        return acked

    def follow(self, cwnd: int) -> None:
        """The capacity follows the congestion window (as Linux's tcp_sndbuf_expand): two windows' worth,
        so the next flight is queued while this one is acknowledged, up to ``cap_max``."""
        want = cwnd << 1
        if want > self.cap and self.cap < self.cap_max:
            self.cap = want if want < self.cap_max else self.cap_max
