"""The bounded out-of-order queue of a receiver, which also yields the SACK blocks (RFC 2018).

Positions are absolute stream offsets (unbounded ints), not sequence numbers, so no wraparound
arithmetic is needed here; the connection translates. Which positions are held is a RangeSet (sorted,
disjoint, non-adjacent: overlapping or touching arrivals merge, so duplicates cost nothing); the bytes
of each range sit in a parallel list.
"""

from __future__ import annotations

from pystack.tcp.rangeset import RangeSet


class Reassembly:
    __slots__ = ("held", "blocks", "limit", "fin_pos", "latest")

    def __init__(self, limit: int) -> None:
        self.held = RangeSet()
        self.blocks: list[bytearray] = []  # the bytes of held.ranges[i], for each i
        self.limit = limit
        self.fin_pos: int | None = None  # stream position of a FIN that arrived out of order
        self.latest = -1  # start of the block that took the most recent arrival (RFC 2018 4: reported first)

    def __bool__(self) -> bool:
        return bool(self.blocks)

    def add(self, start: int, data: bytes | memoryview) -> bool:
        """Hold ``data`` at ``start``; False when a new block would exceed the limit (data dropped)."""
        end = start + len(data)
        held = self.held
        chunks = self.blocks
        i, j = held.span(start, end)
        if i == j:
            if len(chunks) >= self.limit:
                return False
            held.join(i, j, start, end)
            chunks.insert(i, bytearray(data))
            self.latest = start
            return True
        ranges = held.ranges
        first_start = ranges[i][0]
        buf = chunks[i]
        if first_start <= start:
            s0, cur = first_start, first_start + len(buf)
        else:
            s0, cur, buf = start, start, bytearray()
        if end > cur:
            buf += data[cur - start:]
            cur = end
        for k in range(i, j):
            bs, be = ranges[k]
            if be > cur:
                bd = chunks[k]
                buf += bd[cur - bs:] if bd is not buf else b""
                cur = be
        held.join(i, j, start, end)
        chunks[i:j] = [buf]
        self.latest = s0
        return True

    def pop_ready(self, pos: int) -> bytearray | None:
        """Remove and return the data continuing the stream at ``pos`` (None when the next block is later)."""
        held = self.held
        chunks = self.blocks
        while chunks and held.ranges[0][0] <= pos:
            start, end = held.popleft()
            data = chunks.pop(0)
            if end > pos:
                return data if start == pos else data[pos - start:]
        return None

    def ranges(self, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` (start, end) blocks, the one holding the latest arrival first (RFC 2018 4)."""
        held = self.held.ranges
        latest = self.latest
        out = [r for r in held if r[0] == latest]
        for r in reversed(held):
            if len(out) >= limit:
                break
            if r[0] != latest:
                out.append(r)
        return out


NOTHING_HELD = Reassembly(0)
"""The queue of every connection that has not had a segment out of order: shared and only read (its limit
of 0 refuses any add), so an idle connection carries none of its own; the first out-of-order segment
gives the connection its own queue (Connection._receive)."""
