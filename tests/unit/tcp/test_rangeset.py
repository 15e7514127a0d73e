"""RangeSet against a plain set of integers: every operation agrees with the model, and the ranges stay
sorted, disjoint and non-touching with ``size`` equal to what they hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pystack.tcp.rangeset import RangeSet

ranges = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)), max_size=30)


def _build(pieces: list[tuple[int, int]]) -> tuple[RangeSet, set[int]]:
    rs, model = RangeSet(), set()
    for lo, n in pieces:
        new = set(range(lo, lo + n)) - model
        assert rs.add(lo, lo + n) == len(new)  # add says how much it added
        model |= new
    return rs, model


def _check_shape(rs: RangeSet, model: set[int]) -> None:
    prev = -1
    held = set()
    for lo, hi in rs:
        assert prev < lo < hi  # sorted, disjoint, and a gap between neighbours (touching ones merge)
        prev = hi
        held.update(range(lo, hi))
    assert held == model and rs.size == len(model)


@given(pieces=ranges)
def test_add_merges_to_the_model(pieces: list[tuple[int, int]]) -> None:
    rs, model = _build(pieces)
    _check_shape(rs, model)


@given(pieces=ranges, lo=st.integers(0, 260), n=st.integers(0, 60))
def test_queries_agree_with_the_model(pieces: list[tuple[int, int]], lo: int, n: int) -> None:
    rs, model = _build(pieces)
    hi = lo + n
    window = set(range(lo, hi))
    assert rs.covered(lo, hi) == len(window & model)
    if n:  # a run of integers all held lies in one range: ranges never touch
        assert rs.covers(lo, hi) == window.issubset(model)
    gap = rs.gap(lo, hi)
    missing = sorted(window - model)
    if not missing:
        assert gap is None
    else:
        start = missing[0]
        end = start
        while end < hi and end not in model:
            end += 1
        assert gap == (start, end)


@given(pieces=ranges, n=st.integers(0, 260))
def test_shift_renumbers_and_drops_what_falls_below(pieces: list[tuple[int, int]], n: int) -> None:
    rs, model = _build(pieces)
    rs.shift(n)
    _check_shape(rs, {x - n for x in model if x >= n})


def test_popleft_and_clear_keep_the_size() -> None:
    rs = RangeSet()
    rs.add(10, 20)
    rs.add(30, 35)
    assert rs.popleft() == (10, 20) and rs.size == 5 and list(rs) == [(30, 35)]
    rs.clear()
    assert not rs and rs.size == 0
