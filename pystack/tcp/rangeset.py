"""A set of integers kept as sorted, disjoint, non-touching half-open ranges [lo, hi).

One type for the two places TCP keeps ranges of a stream: the receiver's out-of-order queue (stream
positions, tcp/reassembly.py) and the sender's SACK scoreboard (offsets from SND.UNA, tcp/recovery.py).
Ranges that overlap or touch an added one are merged into it, so adding what is known costs nothing.
Positions are plain ints, never sequence numbers: the callers translate, so nothing here wraps.
The lists are short (a few SACK blocks, a bounded out-of-order queue), so a linear walk is the search.
"""

from __future__ import annotations

from typing import Iterator


class RangeSet:
    __slots__ = ("ranges", "size")

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        self.size = 0
        """How many integers the ranges hold (kept as they change, never summed)."""

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __len__(self) -> int:
        return len(self.ranges)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.ranges)

    def __repr__(self) -> str:
        return f"RangeSet({self.ranges!r})"

    def span(self, lo: int, hi: int) -> tuple[int, int]:
        """Indices i, j such that ranges[i:j] are those that [lo, hi) overlaps or touches; i == j when
        none does, and i is then where [lo, hi) would go."""
        ranges = self.ranges
        n = len(ranges)
        i = 0
        while i < n and ranges[i][1] < lo:
            i += 1
        j = i
        while j < n and ranges[j][0] <= hi:
            j += 1
        return i, j

    def join(self, i: int, j: int, lo: int, hi: int) -> int:
        """Replace ranges[i:j], as ``span(lo, hi)`` found them, by their union with [lo, hi).
        Returns how many integers were added (0: [lo, hi) was already covered)."""
        ranges = self.ranges
        covered = 0
        if i < j:
            first, last = ranges[i][0], ranges[j - 1][1]
            if first < lo:
                lo = first
            if last > hi:
                hi = last
            for a, b in ranges[i:j]:
                covered += b - a
        ranges[i:j] = [(lo, hi)]
        added = hi - lo - covered
        self.size += added
        return added

    def add(self, lo: int, hi: int) -> int:
        """Cover [lo, hi) (lo < hi). Returns how many integers were not covered before."""
        i, j = self.span(lo, hi)
        return self.join(i, j, lo, hi)

    def popleft(self) -> tuple[int, int]:
        """Remove and return the lowest range."""
        lo, hi = self.ranges.pop(0)
        self.size -= hi - lo
        return lo, hi

    def clear(self) -> None:
        self.ranges.clear()
        self.size = 0

    def shift(self, n: int) -> None:
        """Renumber so that ``n`` becomes 0, dropping everything below it (the stream's front moved)."""
        kept = []
        size = 0
        for lo, hi in self.ranges:
            hi -= n
            if hi <= 0:
                continue
            lo = lo - n if lo > n else 0
            kept.append((lo, hi))
            size += hi - lo
        self.ranges = kept
        self.size = size

    def covered(self, lo: int, hi: int) -> int:
        """How many integers of [lo, hi) the set holds."""
        total = 0
        for a, b in self.ranges:
            if b <= lo:
                continue
            if a >= hi:
                break
            total += (b if b < hi else hi) - (a if a > lo else lo)
        return total

    def covers(self, lo: int, hi: int) -> bool:
        """True when one range holds all of [lo, hi)."""
        return any(a <= lo and b >= hi for a, b in self.ranges)

    def gap(self, start: int, limit: int) -> tuple[int, int] | None:
        """The first run of integers not in the set that begins at or after ``start`` and below
        ``limit``, cut at ``limit``; None when everything from ``start`` to ``limit`` is covered."""
        pos = start
        end = limit
        for a, b in self.ranges:
            if b <= pos:
                continue
            if a > pos:
                if a < end:
                    end = a
                break
            pos = b
        if pos >= limit:
            return None
        return pos, end
