"""The Happy Eyeballs schedule (RFC 8305) with a fake clock: which address is tried when, who wins, and
what is cancelled."""

from __future__ import annotations

import pytest

from pystack.tools.happy_eyeballs import (
    IPV4, IPV6, CancelAttempt, Candidate, Config, HappyEyeballs, StartAttempt,
)

V6 = [0x20010DB8_0001_0000_0000_0000_0000_0080 + i for i in range(3)]
V4 = [0xC6336450 + i for i in range(3)]  # 198.51.100.80 ...


def six(i: int) -> Candidate:
    return Candidate(IPV6, V6[i])


def four(i: int) -> Candidate:
    return Candidate(IPV4, V4[i])


def started(actions: list) -> list[Candidate]:
    assert all(isinstance(a, StartAttempt) for a in actions), actions
    return [a.candidate for a in actions]


def run_until(he: HappyEyeballs, t: float, until: float) -> tuple[float, list[tuple[float, Candidate]]]:
    """Poll at every deadline the schedule names (as the session's loop does) up to ``until``."""
    seen = []
    while True:
        seen += [(t, c) for c in started(he.poll(t))]
        d = he.next_deadline()
        if d is None or d > until:
            return t, seen
        t = max(t, d)


# ---------------------------------------------------------------------- section 4: the order


def test_families_interleave_ipv6_first() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV4, V4, 0.0)
    he.answer(IPV6, V6, 0.0)
    assert he.order() == [six(0), four(0), six(1), four(1), six(2), four(2)]


def test_first_address_family_count_takes_more_of_the_first_family() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0, Config(first_family_count=2))
    he.answer(IPV6, V6, 0.0)
    he.answer(IPV4, V4[:2], 0.0)
    assert he.order() == [six(0), six(1), four(0), six(2), four(1)]


def test_an_unusable_family_goes_last() -> None:
    """RFC 6724 rule 1: no IPv6 source address (or route) puts IPv6 after IPv4, still interleaved."""
    he = HappyEyeballs([IPV6, IPV4], 0.0, usable=lambda family: family == IPV4)
    he.answer(IPV6, V6[:2], 0.0)
    he.answer(IPV4, V4[:2], 0.0)
    assert he.order() == [four(0), six(0), four(1), six(1)]


def test_one_family_alone_keeps_the_answer_order() -> None:
    he = HappyEyeballs([IPV4], 0.0)
    he.answer(IPV4, [V4[2], V4[0]], 0.0)
    assert he.order() == [four(2), four(0)]


# ---------------------------------------------------------------------- section 3: the answers


def test_a_positive_aaaa_answer_starts_at_once() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    assert he.poll(0.0) == [] and he.next_deadline() is None  # nothing known, nothing to wait for
    he.answer(IPV6, V6[:1], 0.010)
    assert he.poll(0.010) == [StartAttempt(six(0), "first")]


def test_an_a_answer_first_waits_the_resolution_delay_for_aaaa() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV4, V4[:1], 0.010)
    deadline = he.next_deadline()
    assert he.poll(0.010) == [] and deadline == pytest.approx(0.060)
    assert he.poll(0.059) == []
    assert started(he.poll(deadline)) == [four(0)]


def test_aaaa_within_the_resolution_delay_goes_first() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV4, V4[:1], 0.010)
    he.answer(IPV6, V6[:1], 0.030)
    assert started(he.poll(0.030)) == [six(0)]


def test_a_negative_aaaa_answer_lets_ipv4_go_without_waiting() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV6, [], 0.005)
    he.answer(IPV4, V4[:1], 0.010)
    assert started(he.poll(0.010)) == [four(0)]


def test_aaaa_after_the_delay_joins_the_list_still_to_try() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV4, V4[:2], 0.0)
    assert started(he.poll(0.050)) == [four(0)]
    he.answer(IPV6, V6[:1], 0.100)
    # Sorted in: IPv6 goes before the IPv4 address not tried yet, once the attempt delay is over.
    assert he.poll(0.299) == [] and he.next_deadline() == pytest.approx(0.300)
    assert he.poll(0.300) == [StartAttempt(six(0), "delay")]
    assert started(he.poll(0.550)) == [four(1)]


# ---------------------------------------------------------------------- section 5: the attempts


def test_attempts_are_250_ms_apart_while_none_connects() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV6, V6[:2], 0.0)
    he.answer(IPV4, V4[:2], 0.0)
    _t, seen = run_until(he, 0.0, 5.0)
    assert seen == [(0.0, six(0)), (0.25, four(0)), (0.5, six(1)), (0.75, four(1))]
    assert he.in_flight == [six(0), four(0), six(1), four(1)]  # a new attempt leaves the others running
    assert not he.exhausted and he.next_deadline() is None


def test_a_failed_attempt_starts_the_next_at_once() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV6, V6[:1], 0.0)
    he.answer(IPV4, V4[:1], 0.0)
    assert started(he.poll(0.0)) == [six(0)]
    he.failed(six(0), "network unreachable", 0.020)
    assert he.next_deadline() == pytest.approx(0.020)
    assert he.poll(0.020) == [StartAttempt(four(0), "failed")]
    assert he.failures == [(six(0), "network unreachable")]


def test_the_first_to_connect_wins_and_the_rest_are_cancelled() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV6, V6[:2], 0.0)
    he.answer(IPV4, V4[:2], 0.0)
    run_until(he, 0.0, 0.5)  # three attempts in flight: v6, v4, v6
    assert he.in_flight == [six(0), four(0), six(1)]
    cancel = he.connected(four(0), 0.6)
    assert cancel == [CancelAttempt(six(0)), CancelAttempt(six(1))]
    assert he.winner == four(0) and he.in_flight == []
    # Nothing more is started, and a late success of a cancelled attempt changes nothing.
    assert he.poll(10.0) == [] and he.next_deadline() is None
    assert he.connected(six(0), 0.7) == [] and he.winner == four(0)


def test_everything_failing_exhausts_the_schedule() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV6, V6[:1], 0.0)
    he.answer(IPV4, V4[:1], 0.0)
    he.poll(0.0)
    he.failed(six(0), "refused", 0.01)
    he.poll(0.01)
    assert not he.exhausted
    he.failed(four(0), "refused", 0.02)
    assert he.exhausted and he.winner is None
    assert [c for c, _ in he.failures] == [six(0), four(0)]


def test_an_answer_still_awaited_keeps_the_schedule_open() -> None:
    """IPv4's only address failed, but the AAAA answer may still bring one."""
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV4, V4[:1], 0.0)
    he.poll(0.05)
    he.failed(four(0), "refused", 0.06)
    assert not he.exhausted and he.poll(0.06) == []
    he.answer(IPV6, V6[:1], 0.2)
    assert he.poll(0.2) == [StartAttempt(six(0), "failed")]


def test_no_address_at_all_is_exhausted_once_every_answer_is_in() -> None:
    he = HappyEyeballs([IPV6, IPV4], 0.0)
    he.answer(IPV6, [], 0.0)
    assert not he.exhausted
    he.answer(IPV4, [], 0.0)
    assert he.exhausted and he.poll(0.0) == []


def test_forced_family_ignores_the_other_answer() -> None:
    he = HappyEyeballs([IPV6], 0.0)
    he.answer(IPV4, V4[:1], 0.0)  # never asked for: not a candidate
    he.answer(IPV6, V6[:1], 0.0)
    assert he.order() == [six(0)]


def test_duplicate_addresses_are_tried_once() -> None:
    he = HappyEyeballs([IPV4], 0.0)
    he.answer(IPV4, [V4[0], V4[0]], 0.0)
    assert he.order() == [four(0)]


@pytest.mark.parametrize("delay", [0.05, 2.5])
def test_the_attempt_delay_is_bounded(delay: float) -> None:
    with pytest.raises(ValueError, match="RFC 8305"):
        Config(attempt_delay=delay)
