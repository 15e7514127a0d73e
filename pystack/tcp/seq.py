"""32-bit sequence-number arithmetic with wraparound (RFC 9293 3.4, RFC 1982 style).

``a < b`` means ``b`` lies less than 2**31 ahead of ``a`` in the circular space.
"""

from __future__ import annotations

MASK = 0xFFFFFFFF
HALF = 0x80000000


def seq_add(a: int, n: int) -> int:
    return (a + n) & MASK


def seq_diff(a: int, b: int) -> int:
    """``a - b`` as a signed distance in (-2**31, 2**31]."""
    d = (a - b) & MASK
    return d - 0x100000000 if d > HALF else d


def seq_lt(a: int, b: int) -> bool:
    return 0 < ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    return 0 < ((a - b) & MASK) < HALF


def seq_ge(a: int, b: int) -> bool:
    return ((a - b) & MASK) < HALF


def seq_in(x: int, lo: int, hi: int) -> bool:
    """``lo <= x < hi`` in sequence space (an empty range when ``lo == hi``)."""
    return ((x - lo) & MASK) < ((hi - lo) & MASK)
