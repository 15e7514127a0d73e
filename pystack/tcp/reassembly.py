"""The bounded out-of-order queue of a receiver, which also yields the SACK blocks (RFC 2018).

Positions are absolute stream offsets (unbounded ints), not sequence numbers, so no wraparound
arithmetic is needed here; the connection translates. Blocks are kept sorted, disjoint and
non-adjacent: overlapping or touching arrivals are merged, so duplicates cost nothing.
"""

from __future__ import annotations


class Reassembly:
    __slots__ = ("blocks", "limit", "fin_pos", "latest")

    def __init__(self, limit: int) -> None:
        self.blocks: list[list] = []  # [start, bytearray]
        self.limit = limit
        self.fin_pos: int | None = None  # stream position of a FIN that arrived out of order
        self.latest = -1  # start of the block that took the most recent arrival (RFC 2018 4: reported first)

    def __bool__(self) -> bool:
        return bool(self.blocks)

    def add(self, start: int, data: bytes | memoryview) -> bool:
        """Hold ``data`` at ``start``; False when a new block would exceed the limit (data dropped)."""
        end = start + len(data)
        blocks = self.blocks
        n = len(blocks)
        i = 0
        while i < n and blocks[i][0] + len(blocks[i][1]) < start:
            i += 1
        j = i
        while j < n and blocks[j][0] <= end:
            j += 1
        if i == j:
            if n >= self.limit:
                return False
            blocks.insert(i, [start, bytearray(data)])
            self.latest = start
            return True
        first_start, buf = blocks[i]
        if first_start <= start:
            s0, cur = first_start, first_start + len(buf)
        else:
            s0, cur, buf = start, start, bytearray()
        if end > cur:
            buf += data[cur - start:]
            cur = end
        for k in range(i, j):
            bs, bd = blocks[k]
            be = bs + len(bd)
            if be > cur:
                buf += bd[cur - bs:] if bd is not buf else b""
                cur = be
        blocks[i:j] = [[s0, buf]]
        self.latest = s0
        return True

    def pop_ready(self, pos: int) -> bytearray | None:
        """Remove and return the data continuing the stream at ``pos`` (None when the next block is later)."""
        blocks = self.blocks
        while blocks and blocks[0][0] <= pos:
            start, data = blocks.pop(0)
            if start + len(data) > pos:
                return data if start == pos else data[pos - start:]
        return None

    def ranges(self, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` (start, end) blocks, the one holding the latest arrival first (RFC 2018 4)."""
        out = [(s, s + len(d)) for s, d in self.blocks if s == self.latest]
        for s, d in reversed(self.blocks):
            if len(out) >= limit:
                break
            if s != self.latest:
                out.append((s, s + len(d)))
        return out

    @property
    def held(self) -> int:
        return sum(len(d) for _s, d in self.blocks)
