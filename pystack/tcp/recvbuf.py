"""The receive buffer of a connection: the bytes received in order and not yet read, the room it offers
the peer as a window, and its growth with what the user reads (receive buffer auto-tuning).

Positions (``pos``) are stream offsets, unbounded ints: the connection turns sequence numbers into them.
"""

from __future__ import annotations


class ReceiveBuffer:
    __slots__ = ("data", "cap", "pos", "eof", "space", "space_pos", "space_time")

    def __init__(self, cap: int, space: int) -> None:
        self.data = bytearray()
        self.cap = cap
        """How many unread bytes it holds at most: the window offered never promises more."""
        self.pos = 0
        """Stream position of RCV.NXT (bytes received in order)."""
        self.eof = False
        """The peer's FIN arrived in order."""
        self.space = space
        """Bytes the user read in the last measured round trip (Linux rcvq_space), for auto-tuning."""
        self.space_pos = 0
        """Stream position the user had read to when that round trip began."""
        self.space_time = 0.0

    def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` from the front, taken out."""
        data = self.data
        if max_bytes >= len(data):
            out = bytes(data)
            data.clear()
        else:
            out = bytes(data[:max_bytes])
            del data[:max_bytes]
        return out

    def offer(self, cur: int, ws: int, smss: int) -> int:
        """The window field to send (scaled by ``ws``) when ``cur`` bytes are offered now.

        Receiver SWS avoidance (RFC 9293 3.8.6.2.2): the right edge moves only by a useful amount, and never
        left (the window granted is a promise), but for the scaling remainder below."""
        cap = self.cap
        if cur > cap + (1 << ws):  # stale edge (RCV.NXT passed it): treat as closed
            cur = 0
        wmax = 0xFFFF << ws
        if wmax > cap:
            wmax = cap
        free = cap - len(self.data)
        if free > wmax:
            free = wmax
        if free - cur >= min(wmax >> 1, smss):
            cur = free
        field = cur >> ws
        if field > 0xFFFF:
            field = 0xFFFF
        elif (field << ws) < cur and ((field + 1) << ws) < free + (1 << ws):
            field += 1  # round up so the edge never moves left; the slack is below 2**ws bytes
        # Else a stalled reader's window is not rounded up: each ACK would move the edge right by up to
        # 2**ws - 1 bytes the buffer does not have, without end (RFC 7323 appendix F; Linux's
        # tcp_shrink_window). It retracts by less than one unit instead.
        return field

    def opened(self, cur: int, ws: int, smss: int) -> bool:
        """After a read: whether to tell a peer that has ``cur`` bytes of window left that it opened (as
        Linux's tcp_cleanup_rbuf: when the new window is at least double what it has left)."""
        wmax = min(self.cap, 0xFFFF << ws)
        free = min(self.cap - len(self.data), wmax)
        return cur * 2 <= wmax and free >= 2 * cur and free - cur >= min(wmax >> 1, smss)

    def autotune(self, now: float, srtt: float | None, adv_mss: int, cap_max: int) -> None:
        """Receive buffer auto-tuning, as Linux's tcp_rcv_space_adjust: once per round trip, compare what the
        user read in it with the last one; if it read more, the sender is held by our window rather than
        by the user, so grow the buffer to twice that much (what a round trip needs with room to double),
        plus the growth itself once more, up to ``cap_max``. Only reading grows it: a slow reader keeps
        its small buffer, and memory is taken only as data waits."""
        if srtt is None or now - self.space_time < srtt:
            return
        read_to = self.pos - len(self.data)
        copied = read_to - self.space_pos
        space = self.space
        if copied > space:
            window = 2 * copied + 16 * adv_mss
            window += 2 * window * (copied - space) // space
            if window > self.cap:
                self.cap = min(window, cap_max)
            self.space = copied
        self.space_pos = read_to
        self.space_time = now
