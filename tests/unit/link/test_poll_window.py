"""PollWindow: how long the loop polls before it sleeps, fixed (--busy-poll USEC) or learnt from the gaps
between bursts of frames (--busy-poll auto, after Linux's haltpoll cpuidle governor)."""

from __future__ import annotations

import pytest

from pystack.config import RuntimeConfig
from pystack.runtime import PollWindow

LIMIT = 200e-6
START = RuntimeConfig().poll_grow_start


def test_adaptive_window_starts_closed():
    assert PollWindow(LIMIT, adaptive=True, grow_start=START).window == 0.0


def test_a_gap_within_the_limit_opens_the_window_then_doubles_it_up_to_the_limit():
    w = PollWindow(LIMIT, adaptive=True, grow_start=START)
    seen = []
    for _ in range(5):
        w.after_gap(LIMIT)  # each gap longer than the window, within the limit: polling would have caught it
        seen.append(w.window)
    assert seen == [START, 2 * START, LIMIT, LIMIT, LIMIT]


def test_a_gap_the_window_caught_keeps_it():
    w = PollWindow(LIMIT, adaptive=True, grow_start=START)
    w.after_gap(START)
    w.after_gap(1.5 * START)
    assert w.window == 2 * START
    w.after_gap(1.9 * START)
    assert w.window == 2 * START


def test_gaps_longer_than_the_limit_halve_the_window_and_close_it_below_the_start():
    w = PollWindow(LIMIT, adaptive=True, grow_start=START)
    for _ in range(3):
        w.after_gap(LIMIT)
    assert w.window == LIMIT
    seen = []
    for _ in range(3):
        w.after_gap(0.002)  # ping's pace: 2 ms between frames
        seen.append(w.window)
    assert seen == [LIMIT / 2, LIMIT / 4, 0.0]  # 200 -> 100 -> 50 us, then below the 50 us start: closed


def test_slow_traffic_never_opens_the_window():
    w = PollWindow(LIMIT, adaptive=True, grow_start=START)
    for _ in range(100):
        w.after_gap(0.002)
    assert w.window == 0.0


@pytest.mark.parametrize("gap", [0.0, 1e-6, LIMIT, 1.0])
def test_a_fixed_window_ignores_the_gaps(gap):
    w = PollWindow(LIMIT, adaptive=False, grow_start=START)
    w.after_gap(gap)
    assert w.window == LIMIT


def test_no_polling_at_all_when_the_limit_is_zero():
    w = PollWindow(0.0, adaptive=True, grow_start=START)
    for gap in (0.0, 1e-6, 1.0):
        w.after_gap(gap)
    assert w.window == 0.0
