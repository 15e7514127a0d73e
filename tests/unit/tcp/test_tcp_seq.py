"""Sequence arithmetic with wraparound, the ISN generator, the RTO estimator and the reassembly queue."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pystack.tcp.isn import IsnGenerator
from pystack.tcp.reassembly import Reassembly
from pystack.tcp.rtt import RttEstimator
from pystack.tcp.seq import seq_add, seq_diff, seq_ge, seq_gt, seq_in, seq_le, seq_lt

u32 = st.integers(0, 2**32 - 1)


@given(a=u32, d=st.integers(1, 2**31 - 1))
def test_order_across_wrap(a: int, d: int) -> None:
    b = seq_add(a, d)
    assert seq_lt(a, b) and seq_le(a, b) and seq_gt(b, a) and seq_ge(b, a)
    assert not seq_lt(b, a) and not seq_gt(a, b)
    assert seq_diff(b, a) == d and seq_diff(a, b) == -d


@given(a=u32)
def test_equal_is_le_not_lt(a: int) -> None:
    assert seq_le(a, a) and seq_ge(a, a) and not seq_lt(a, a) and not seq_gt(a, a)


def test_wrap_examples() -> None:
    assert seq_lt(0xFFFFFFF0, 0x10)
    assert seq_add(0xFFFFFFFF, 2) == 1
    assert seq_in(0x5, 0xFFFFFFF0, 0x10) and not seq_in(0x10, 0xFFFFFFF0, 0x10)
    assert not seq_in(7, 7, 7)


def test_isn_is_keyed_per_tuple_and_ticks_every_4us() -> None:
    gen = IsnGenerator(b"k" * 16)
    a = gen(1, 2, 3, 4, 10.0)
    assert gen(1, 2, 3, 4, 10.0 + 4e-6 * 1000) == (a + 1000) & 0xFFFFFFFF  # RFC 6528: M ticks per 4 us
    assert gen(1, 2, 3, 5, 10.0) != a
    assert IsnGenerator(b"x" * 16)(1, 2, 3, 4, 10.0) != a


def test_ts_offset_is_keyed_per_host_pair_and_its_memory_is_bounded() -> None:
    gen = IsnGenerator(b"k" * 16, max_pairs=8)
    first = gen.ts_offset(1, 2)
    assert gen.ts_offset(1, 2) == first == IsnGenerator(b"k" * 16).ts_offset(1, 2)  # remembered = recomputed
    assert gen.ts_offset(1, 3) != first and IsnGenerator(b"x" * 16).ts_offset(1, 2) != first
    for remote in range(3 * 8):
        gen.ts_offset(1, remote)
    assert 0 < len(gen._ts_offsets) <= 8
    assert gen.ts_offset(1, 2) == first


def test_rto_follows_rfc6298() -> None:
    est = RttEstimator(initial=1.0, minimum=0.2, maximum=60.0)
    assert est.rto == 1.0  # 2.1
    est.sample(0.5)  # 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR
    assert (est.srtt, est.rttvar, est.rto) == (0.5, 0.25, 1.5)
    est.sample(0.1)  # 2.3
    rttvar = 0.75 * 0.25 + 0.25 * abs(0.5 - 0.1)
    srtt = 0.875 * 0.5 + 0.125 * 0.1
    assert abs(est.rttvar - rttvar) < 1e-12 and abs(est.srtt - srtt) < 1e-12
    assert abs(est.rto - (srtt + 4 * rttvar)) < 1e-12
    est.backoff()
    assert abs(est.rto - 2 * (srtt + 4 * rttvar)) < 1e-12  # 5.5
    for _ in range(10):
        est.backoff()
    assert est.rto == 60.0  # bounded
    est.sample(srtt)  # a valid sample ends the backoff (RFC 6298 5.7 with Karn)
    assert est.rto < 2.0
    fresh = RttEstimator(initial=1.0, minimum=0.2, maximum=60.0)
    fresh.sample(0.001)
    assert fresh.rto == 0.2  # 2.4 lower bound (Linux's 200 ms here)


@given(
    pieces=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 60)), max_size=40),
    seed=st.integers(0, 1000),
)
def test_reassembly_merges_to_the_stream(pieces: list[tuple[int, int]], seed: int) -> None:
    stream = random.Random(seed).randbytes(400)
    q = Reassembly(limit=1000)
    have = set()
    for start, length in pieces:
        q.add(start + 10, stream[start + 10:start + 10 + length])
        have.update(range(start + 10, min(start + 10 + length, 400)))
    # blocks are sorted, disjoint, non-adjacent and hold the right bytes
    prev_end = -1
    covered = set()
    assert len(q.held) == len(q.blocks)
    for (s, e), d in zip(q.held, q.blocks):
        assert s > prev_end and e == s + len(d)
        assert bytes(d) == stream[s:e]
        prev_end = e
        covered.update(range(s, e))
    assert covered == have
    assert q.held.size == len(have)


def test_reassembly_pop_and_limit() -> None:
    q = Reassembly(limit=2)
    assert q.add(10, b"cd") and q.add(20, b"x")
    assert not q.add(30, b"y")  # a third block would exceed the limit
    assert q.add(12, b"ef")  # merging does not need a new block
    assert q.pop_ready(9) is None
    assert bytes(q.pop_ready(11)) == b"def"
    assert q.ranges(4) == [(20, 21)]
    assert q.pop_ready(25) is None and not q  # a block entirely behind is discarded


def test_sack_ranges_latest_first() -> None:
    q = Reassembly(limit=10)
    q.add(100, b"a")
    q.add(300, b"b")
    q.add(200, b"c")
    assert q.ranges(3) == [(200, 201), (300, 301), (100, 101)]
    assert q.ranges(2) == [(200, 201), (300, 301)]
