"""The neighbour cache (RFC 4861 7.2, 7.3 and appendix C) with a fake clock: resolution and its
failure, every reachability state, the advertisement rules, router flags, and each bound."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.counters import Counters
from pystack.ip6.config import Ipv6Config
from pystack.ip6.neighbours import NeighbourCache, Release, RouterLost, Solicit, State, Unreachable

N = 0x20010DB8 << 96 | 1
MAC = bytes.fromhex("02000000000b")
MAC2 = bytes.fromhex("02000000000c")


def cache(now: float = 0.0, **kw: object) -> tuple[NeighbourCache, Counters]:
    """A cache whose ReachableTime is exactly BaseReachableTime (the random factor drawn is 1.0)."""
    counters = Counters()
    return NeighbourCache(Ipv6Config(**kw), counters, now, rng=lambda: 0.5), counters  # type: ignore[arg-type]


def reachable(c: NeighbourCache, target: int = N, lladdr: bytes = MAC, now: float = 0.0) -> None:
    c.resolve(target, b"first", now)
    c.on_advertisement(target, lladdr, now, solicited=True, override=True, router=False)
    entry = c.lookup(target)
    assert entry is not None and entry.state is State.REACHABLE


def state(c: NeighbourCache, target: int = N) -> State | None:
    entry = c.lookup(target)
    return entry.state if entry else None


# --- resolution (7.2.2) ----------------------------------------------------------------------------------


def test_resolution_solicits_by_multicast_and_queues_until_the_answer() -> None:
    c, _ = cache()
    assert c.resolve(N, b"p1", 0.0) == (None, [Solicit(N, None)])
    assert c.resolve(N, b"p2", 0.1) == (None, [])  # already asked: just queued
    assert state(c) is State.INCOMPLETE and c.next_deadline() == 1.0
    actions = c.on_advertisement(N, MAC, 0.2, solicited=True, override=True, router=False)
    assert actions == [Release(N, MAC, [b"p1", b"p2"])]
    assert state(c) is State.REACHABLE and c.next_deadline() is None
    assert c.resolve(N, b"p3", 0.3) == (MAC, [])


def test_unanswered_resolution_fails_after_three_solicitations_one_second_apart() -> None:
    c, counters = cache()
    c.resolve(N, b"p1", 0.0)
    c.resolve(N, b"p2", 0.5)
    assert c.poll(0.99) == []
    assert c.poll(1.0) == [Solicit(N, None)]
    assert c.next_deadline() == 2.0 and c.poll(2.0) == [Solicit(N, None)]
    assert c.poll(2.5) == []
    assert c.poll(3.0) == [Unreachable(N, [b"p1", b"p2"])]  # each earns an address unreachable
    assert state(c) is None and c.next_deadline() is None and counters["ndisc.resolution_failed"] == 1


def test_advertisement_without_a_link_layer_address_does_not_resolve() -> None:
    c, _ = cache()
    c.resolve(N, b"p1", 0.0)
    assert c.on_advertisement(N, None, 0.1, solicited=True, override=True, router=False) == []
    assert state(c) is State.INCOMPLETE


def test_unsolicited_advertisement_resolves_to_stale() -> None:
    c, _ = cache()
    c.resolve(N, b"p1", 0.0)
    assert c.on_advertisement(N, MAC, 0.1, solicited=False, override=True, router=False) == [Release(N, MAC, [b"p1"])]
    assert state(c) is State.STALE


def test_advertisement_for_an_unknown_target_creates_nothing() -> None:
    c, _ = cache()
    assert c.on_advertisement(N, MAC, 0.0, solicited=False, override=True, router=True) == []
    assert len(c) == 0


def test_solicitation_from_the_neighbour_resolves_a_pending_entry() -> None:
    # Appendix C: INCOMPLETE + an NS carrying the source link-layer address -> STALE, queue sent.
    c, _ = cache()
    c.resolve(N, b"p1", 0.0)
    assert c.learn(N, MAC, 0.1) == [Release(N, MAC, [b"p1"])]
    assert state(c) is State.STALE and c.next_deadline() is None


# --- reachability (7.3) ------------------------------------------------------------------------------------


def test_reachable_turns_stale_then_delay_then_probe_then_is_deleted() -> None:
    c, counters = cache()
    reachable(c, now=0.0)
    assert c.resolve(N, b"p", 29.9) == (MAC, []) and state(c) is State.REACHABLE
    # After ReachableTime (30 s with the factor fixed at 1) the next use finds it STALE and starts DELAY.
    assert c.resolve(N, b"p", 30.0) == (MAC, []) and state(c) is State.DELAY
    assert c.next_deadline() == 35.0 and c.poll(34.9) == []
    assert c.poll(35.0) == [Solicit(N, MAC)] and state(c) is State.PROBE  # unicast, to the cached address
    assert c.resolve(N, b"p", 35.5) == (MAC, [])  # PROBE still sends with the cached address
    assert c.poll(36.0) == [Solicit(N, MAC)]
    assert c.poll(37.0) == [Solicit(N, MAC)]
    assert c.poll(38.0) == [] and state(c) is None and counters["ndisc.neighbour_unreachable"] == 1


def test_solicited_advertisement_in_probe_makes_it_reachable_again() -> None:
    c, _ = cache()
    reachable(c)
    c.resolve(N, b"p", 30.0)
    c.poll(35.0)
    assert c.on_advertisement(N, MAC, 35.2, solicited=True, override=False, router=False) == []
    assert state(c) is State.REACHABLE and c.next_deadline() is None
    assert c.lookup(N).deadline == 65.2  # type: ignore[union-attr]


def test_upper_layer_confirmation_in_delay_avoids_the_probe() -> None:
    c, _ = cache()
    reachable(c)
    c.resolve(N, b"p", 31.0)
    c.confirm(N, 32.0)
    assert state(c) is State.REACHABLE and c.poll(40.0) == []


def test_confirmation_of_an_unresolved_entry_changes_nothing() -> None:
    c, _ = cache()
    c.resolve(N, b"p", 0.0)
    c.confirm(N, 0.5)
    assert state(c) is State.INCOMPLETE


def test_stale_entry_unused_stays_stale_without_timers() -> None:
    c, _ = cache()
    c.learn(N, MAC, 0.0)
    assert state(c) is State.STALE and c.next_deadline() is None and c.poll(1e6) == []


# --- learning from solicitations, RAs, redirects (7.2.3, 6.3.4, 8.3) ----------------------------------------


def test_learn_creates_stale_updates_a_changed_address_and_keeps_a_same_one() -> None:
    c, _ = cache()
    c.learn(N, MAC, 0.0)
    assert state(c) is State.STALE
    reachable(c, lladdr=MAC, now=1.0)
    c.learn(N, MAC, 2.0)
    assert state(c) is State.REACHABLE  # same address: no change
    c.learn(N, MAC2, 3.0)
    entry = c.lookup(N)
    assert entry is not None and entry.state is State.STALE and entry.lladdr == MAC2


def test_learn_in_delay_with_a_new_address_is_stale_and_stops_the_timer() -> None:
    c, _ = cache()
    reachable(c)
    c.resolve(N, b"p", 30.0)
    c.learn(N, MAC2, 31.0)
    assert state(c) is State.STALE and c.next_deadline() is None


# --- the advertisement's override and solicited flags (7.2.5) ---------------------------------------------


def test_no_override_with_a_new_address_makes_reachable_stale_but_keeps_the_address() -> None:
    c, _ = cache()
    reachable(c)
    assert c.on_advertisement(N, MAC2, 1.0, solicited=True, override=False, router=False) == []
    entry = c.lookup(N)
    assert entry is not None and entry.state is State.STALE and entry.lladdr == MAC


def test_no_override_with_a_new_address_is_ignored_when_not_reachable() -> None:
    c, _ = cache()
    c.learn(N, MAC, 0.0)
    c.resolve(N, b"p", 0.5)  # DELAY
    c.on_advertisement(N, MAC2, 1.0, solicited=True, override=False, router=False)
    entry = c.lookup(N)
    assert entry is not None and entry.state is State.DELAY and entry.lladdr == MAC


def test_override_installs_the_new_address() -> None:
    c, _ = cache()
    reachable(c)
    c.on_advertisement(N, MAC2, 1.0, solicited=False, override=True, router=False)
    entry = c.lookup(N)
    assert entry is not None and entry.state is State.STALE and entry.lladdr == MAC2
    c.on_advertisement(N, MAC2, 2.0, solicited=True, override=True, router=False)
    assert state(c) is State.REACHABLE


def test_unsolicited_advertisement_with_the_same_address_changes_no_state() -> None:
    c, _ = cache()
    c.learn(N, MAC, 0.0)
    c.on_advertisement(N, MAC, 1.0, solicited=False, override=True, router=False)
    assert state(c) is State.STALE


def test_router_that_stops_being_one_is_reported() -> None:
    c, _ = cache()
    c.learn(N, MAC, 0.0, router=True)
    assert c.lookup(N).is_router  # type: ignore[union-attr]
    assert c.on_advertisement(N, MAC, 1.0, solicited=False, override=False, router=True) == []
    assert c.on_advertisement(N, MAC, 2.0, solicited=False, override=False, router=False) == [RouterLost(N)]
    assert not c.lookup(N).is_router  # type: ignore[union-attr]


def test_ra_without_a_link_layer_address_marks_a_known_neighbour_a_router() -> None:
    c, _ = cache()
    c.learn(N, None, 0.0, router=True)
    assert len(c) == 0
    c.learn(N, MAC, 0.0)
    c.learn(N, None, 1.0, router=True)
    assert c.lookup(N).is_router  # type: ignore[union-attr]


# --- parameters from router advertisements (6.3.4) ---------------------------------------------------------


def test_advertised_timers_change_retransmission_and_reachable_time() -> None:
    draws = iter([0.5, 0.0, 1.0])
    c = NeighbourCache(Ipv6Config(), Counters(), 0.0, rng=lambda: next(draws))
    assert c.reachable_time == 30.0
    c.set_timers(0.0, base_reachable_time=10.0, retrans_timer=0.25)
    assert c.reachable_time == 5.0 and c.retrans_timer == 0.25  # factor 0.5
    c.set_timers(0.0, base_reachable_time=10.0)  # unchanged: no new draw
    assert c.reachable_time == 5.0
    c.resolve(N, b"p", 1.0)
    assert c.next_deadline() == 1.25
    c.set_timers(0.0, base_reachable_time=20.0)
    assert c.reachable_time == 30.0  # factor 1.5


def test_reachable_time_is_drawn_again_every_two_hours() -> None:
    draws = iter([0.5, 1.0])
    c = NeighbourCache(Ipv6Config(), Counters(), 0.0, rng=lambda: next(draws))
    reachable(c, now=7199.0)
    assert c.lookup(N).deadline == 7229.0  # type: ignore[union-attr]
    c.confirm(N, 7200.0)
    assert c.lookup(N).deadline == 7200.0 + 45.0  # type: ignore[union-attr]


# --- bounds ------------------------------------------------------------------------------------------------


def test_cache_at_its_bound_evicts_the_least_recently_used_resolved_entry() -> None:
    c, counters = cache(neighbour_cache_size=4, neighbour_pending_addresses=2)
    c.resolve(N + 100, b"p", 0.0)  # INCOMPLETE: never evicted
    for i in range(3):
        c.learn(N + i, MAC, float(i))
    c.resolve(N + 0, b"p", 5.0)  # used: now the most recent
    c.learn(N + 3, MAC, 6.0)
    assert len(c) == 4 and state(c, N + 1) is None and counters["ndisc.entry_evicted"] == 1
    assert state(c, N + 100) is State.INCOMPLETE and state(c, N + 0) is State.DELAY


def test_lladdr_as_is_answers_only_where_sending_moves_no_state_and_keeps_the_lru_order() -> None:
    """The fast paths' lookup: the address resolve would give, in REACHABLE (within its time), DELAY and PROBE;
    None where resolve has work (INCOMPLETE, STALE, REACHABLE past its time), and no state moved by it."""
    c, _ = cache(neighbour_cache_size=3, neighbour_pending_addresses=1)
    assert c.lladdr_as_is(N, 0.0) is None and len(c) == 0  # unknown: nothing made
    c.resolve(N, b"p", 0.0)
    assert c.lladdr_as_is(N, 0.1) is None and state(c) is State.INCOMPLETE
    c.on_advertisement(N, MAC, 0.2, solicited=True, override=True, router=False)
    assert c.lladdr_as_is(N, 29.9) == MAC and state(c) is State.REACHABLE
    assert c.lladdr_as_is(N, 30.2) is None and state(c) is State.REACHABLE  # past its time: resolve's to move
    c.resolve(N, b"p", 30.2)
    assert c.lladdr_as_is(N, 30.3) == MAC and state(c) is State.DELAY
    c.poll(35.2)
    assert c.lladdr_as_is(N, 35.3) == MAC and state(c) is State.PROBE
    c.learn(N + 1, MAC2, 36.0)
    assert c.lladdr_as_is(N + 1, 36.0) is None and state(c, N + 1) is State.STALE
    c.learn(N + 2, MAC2, 36.0)
    assert c.lladdr_as_is(N, 36.5) == MAC  # N is the most recently used again: N + 1 goes first
    c.learn(N + 3, MAC2, 37.0)
    assert state(c, N + 1) is None and state(c, N) is State.PROBE


def test_addresses_being_resolved_are_bounded() -> None:
    c, counters = cache(neighbour_pending_addresses=2)
    assert c.resolve(N, b"p", 0.0)[1] and c.resolve(N + 1, b"p", 0.0)[1]
    assert c.resolve(N + 2, b"p", 0.0) == (None, [])
    assert counters["drop.ndisc.pending_table_full"] == 1 and state(c, N + 2) is None
    c.poll(1.0)
    c.poll(2.0)
    c.poll(3.0)  # both fail, freeing their places
    assert c.resolve(N + 2, b"p", 3.0)[1] == [Solicit(N + 2, None)]


def test_queue_per_address_is_bounded_and_the_oldest_packets_make_room() -> None:
    c, counters = cache(neighbour_pending_bytes=3000)
    for i in range(4):
        c.resolve(N, bytes([i]) * 1000, 0.0)
    c.resolve(N, bytes(3001), 0.0)  # larger than the whole queue: dropped itself
    (release,) = c.learn(N, MAC, 1.0)
    assert isinstance(release, Release) and [p[0] for p in release.packets] == [1, 2, 3]
    assert counters["drop.ndisc.pending_queue_full"] == 2


def test_a_flood_of_solicitations_from_random_sources_stays_within_the_bound() -> None:
    c, _ = cache(neighbour_cache_size=64, neighbour_pending_addresses=8)
    c.resolve(N, b"waiting", 0.0)
    rng = random.Random(1)
    for i in range(10000):
        c.learn(rng.getrandbits(128), MAC, i * 0.001)
    assert len(c) == 64 and state(c) is State.INCOMPLETE
    assert c.learn(N, MAC, 11.0) == [Release(N, MAC, [b"waiting"])]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["resolve", "learn", "na", "confirm", "poll", "forget"]),
                          st.integers(0, 5), st.booleans(), st.booleans(), st.floats(0, 10)), max_size=80))
def test_random_events_keep_the_books_straight(ops: list[tuple[str, int, bool, bool, float]]) -> None:
    c, _ = cache(neighbour_cache_size=4, neighbour_pending_addresses=2, neighbour_pending_bytes=30)
    now = 0.0
    for op, i, flag1, flag2, dt in ops:
        now += dt
        target, mac = N + i, MAC if flag1 else MAC2
        if op == "resolve":
            c.resolve(target, b"0123456789", now)
        elif op == "learn":
            c.learn(target, mac, now, router=flag2)
        elif op == "na":
            c.on_advertisement(target, mac if flag2 else None, now, solicited=flag1, override=flag2, router=flag1)
        elif op == "confirm":
            c.confirm(target, now)
        elif op == "forget":
            c.forget(target)
        else:
            c.poll(now)
        assert len(c) <= 4
        states = [e.state for e in c.entries.values()]
        assert c.incomplete == states.count(State.INCOMPLETE) <= 2
        assert c.timed == {t for t, e in c.entries.items() if e.state in (State.INCOMPLETE, State.DELAY, State.PROBE)}
        assert all(e.queued_bytes == sum(map(len, e.queue)) <= 30 for e in c.entries.values())
        assert all(e.lladdr is not None for e in c.entries.values() if e.state is not State.INCOMPLETE)
