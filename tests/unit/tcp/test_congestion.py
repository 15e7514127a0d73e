"""The congestion controllers on their own, driven by an ACK clock: a full window acknowledged per round
trip, one segment per ACK (RFC 9438 for CUBIC, RFC 5681 for NewReno)."""

from __future__ import annotations

import pytest

from pystack.tcp.congestion import ALGORITHMS, Cubic, NewReno

MSS = 1000


def _round_trips(cc, rtt: float, rounds: int, start: float = 0.0) -> list[float]:
    """cwnd (segments) after each of ``rounds`` round trips in congestion avoidance, from ``start``."""
    now = start
    seen = []
    for _ in range(rounds):
        segments = cc.cwnd // MSS
        for i in range(segments):
            cc.on_ack(MSS, cc.cwnd, now + rtt * i / segments, rtt)
        now += rtt
        seen.append(cc.cwnd / MSS)
    return seen


def _after_loss(cc, w_max: int, now: float = 0.0):
    cc.cwnd = w_max * MSS
    cc.ssthresh = 0  # congestion avoidance
    cc.on_enter_recovery(w_max * MSS, now)
    cc.cwnd = cc.ssthresh  # as SACK recovery leaves it
    return cc


def test_cubic_returns_to_w_max_after_k_seconds_concave_then_convex() -> None:
    """W(t) = C (t - K)^3 + W_max (RFC 9438 4.2): from 0.7 W_max back to W_max in K seconds, slowing
    down on the way (concave), flat near W_max, then speeding up beyond it (convex)."""
    rtt = 0.1
    cc = _after_loss(Cubic(MSS, 10), w_max=200)
    assert cc.cwnd == 140 * MSS and cc.ssthresh == 140 * MSS
    k = ((200 - 140) / Cubic.C) ** (1 / 3)  # 5.3 s
    rounds = int(2 * k / rtt)
    w = _round_trips(cc, rtt, rounds)
    at_k = w[int(k / rtt) - 1]
    assert 195 <= at_k <= 205  # back at W_max after K
    early = w[9] - w[0]  # growth over the first second
    plateau = w[int(k / rtt) + 4] - w[int(k / rtt) - 6]  # over the second around K
    late = w[-1] - w[-11]  # over the last second
    assert early > 3 * plateau and late > 3 * plateau
    assert all(b >= a for a, b in zip(w, w[1:]))  # never shrinks without a loss


def test_cubic_is_reno_friendly_on_short_paths() -> None:
    """With a 1 ms round trip the cubic grows slower than Reno would: CUBIC then follows its estimate of
    Reno's window (RFC 9438 4.3): 0.53 segment per round trip up to W_max, one per round trip beyond."""
    cc = _after_loss(Cubic(MSS, 10), w_max=40)
    w = _round_trips(cc, 0.001, 100)
    to_w_max = (40 - 28) / Cubic.ALPHA  # 22.7 round trips
    expected = 28 + 12 + (100 - to_w_max)  # about 117; the cubic alone would be near 40 after 0.1 s
    assert expected - 5 <= w[-1] <= expected + 2


def test_cubic_fast_convergence_lowers_w_max_when_losses_come_earlier() -> None:
    """RFC 9438 4.7: a loss below the last W_max gives way to newer flows by remembering less."""
    cc = _after_loss(Cubic(MSS, 10), w_max=100)
    assert cc._w_max == 100
    _round_trips(cc, 0.1, 5)
    below = cc.cwnd / MSS
    assert below < 100
    cc.on_enter_recovery(cc.cwnd, 10.0)
    assert cc._w_max == pytest.approx(below * (1 + Cubic.BETA) / 2)


def test_cubic_slow_starts_like_newreno_below_ssthresh() -> None:
    cubic, reno = Cubic(MSS, 10), NewReno(MSS, 10)
    for cc in (cubic, reno):
        for i in range(10):
            cc.on_ack(MSS, cc.cwnd, i * 0.001, 0.01)
    assert cubic.cwnd == reno.cwnd == 20 * MSS


def test_newreno_adds_one_segment_per_round_trip() -> None:
    cc = _after_loss(NewReno(MSS, 10), w_max=40)
    w = _round_trips(cc, 0.1, 10)
    assert w[-1] == 20 + 10  # ssthresh = half of 40, then one per window acknowledged


def test_every_named_algorithm_builds() -> None:
    for name, make in ALGORITHMS.items():
        cc = make(MSS, 10)
        assert cc.cwnd == 10 * MSS, name
