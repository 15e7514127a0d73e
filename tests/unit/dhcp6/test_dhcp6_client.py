"""The DHCPv6 client (RFC 8415) with a fake clock and a fake server: stateful leases, renewal, rebinding,
expiry, Decline, stateless Information-Request, retransmission (section 15) and replies dropped."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.counters import Counters
from pystack.dhcp6 import (
    Advertised, Declined, Dhcp6Client, Dhcp6Config, Informed, Leased, LeaseEnded, Mode, Released, Retransmission,
    State,
)
from pystack.wire import dhcp6
from pystack.wire.dhcp6 import Status

from .fake_server import DNS, LEASED, OTHER_DUID, SERVER_DUID, answer, sent

MAC = bytes.fromhex("020000000002")


def _client(seed: int = 1, **config: object) -> Dhcp6Client:
    return Dhcp6Client(MAC, random.Random(seed), Dhcp6Config(**config), Counters())  # type: ignore[arg-type]


def _run_until_sent(client: Dhcp6Client, now: float) -> tuple[bytes, float]:
    """Advance the fake clock to the client's timers until it sends; the payload and the time."""
    for _ in range(100):
        out = client.datagrams_to_send()
        if out:
            return out[-1].payload, now
        deadline = client.get_timer()
        assert deadline is not None, "the client waits for nothing"
        now = max(now, deadline)
        client.handle_timer(now)
    raise AssertionError("nothing sent")


def _bound(client: Dhcp6Client, **reply: object) -> tuple[float, list[object]]:
    """Solicit, Advertise (preference 255), Request, Reply: the time and the events."""
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    client.receive(answer(solicit, dhcp6.ADVERTISE, preference=255), now)
    request = client.datagrams_to_send()[-1].payload
    client.receive(answer(request, **reply), now)  # type: ignore[arg-type]
    return now, client.events()


def test_solicit_goes_after_a_random_delay_with_our_duid_an_ia_na_and_the_options_we_want() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 100.0)
    assert client.datagrams_to_send() == []
    deadline = client.get_timer()
    assert deadline is not None and 100.0 <= deadline <= 101.0  # SOL_MAX_DELAY (18.2.1)
    payload, _ = _run_until_sent(client, 100.0)
    msg = sent(payload)
    assert msg.msg_type == dhcp6.SOLICIT and msg.client_id == dhcp6.duid_ll(MAC) and msg.elapsed == 0
    assert msg.ia_na and msg.ia_na[0].addresses == ()
    assert {dhcp6.OPT_DNS_SERVERS, dhcp6.OPT_DOMAIN_LIST, dhcp6.OPT_SOL_MAX_RT} <= set(msg.oro)
    assert msg.server_id is None


def test_solicit_retransmissions_double_from_irt_to_sol_max_rt_with_rand() -> None:
    """Section 15: RT = IRT + RAND*IRT (above IRT for the first Solicit), then 2RT + RAND*RT, capped near MRT."""
    client = _client(solicit=dhcp6_retransmission(1.0, 8.0))
    client.start(Mode.STATEFUL, 0.0)
    _, now = _run_until_sent(client, 0.0)
    gaps = []
    for _ in range(6):
        deadline = client.get_timer()
        assert deadline is not None
        gaps.append(deadline - now)
        now = deadline
        client.handle_timer(now)
        assert sent(client.datagrams_to_send()[-1].payload).msg_type == dhcp6.SOLICIT
    assert 1.0 < gaps[0] <= 1.1
    for before, after in zip(gaps, gaps[1:]):
        assert after <= 8.0 * 1.1 + 1e-9
        if before < 3.5:
            assert 1.9 * before <= after <= 2.1 * before
    assert gaps[-1] >= 8.0 * 0.9


def dhcp6_retransmission(irt: float, mrt: float = 0.0, mrc: int = 0, mrd: float = 0.0) -> Retransmission:
    return Retransmission(irt, mrt, mrc, mrd)


def test_elapsed_time_counts_hundredths_since_the_first_solicit() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    first, start = _run_until_sent(client, 0.0)
    again, now = _run_until_sent(client, start)
    assert sent(again).elapsed == int((now - start) * 100) and sent(again).xid == sent(first).xid


def test_the_best_advertisement_of_the_first_timeout_wins() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    client.receive(answer(solicit, dhcp6.ADVERTISE, server_id=OTHER_DUID, preference=1, addresses=(LEASED + 1,)), now)
    client.receive(answer(solicit, dhcp6.ADVERTISE, preference=7), now)
    assert client.datagrams_to_send() == []  # the first timeout is still running
    deadline = client.get_timer()
    assert deadline is not None
    client.handle_timer(deadline)
    request = sent(client.datagrams_to_send()[-1].payload)
    assert request.msg_type == dhcp6.REQUEST and request.server_id == SERVER_DUID
    assert request.ia_na[0].addresses[0].address == LEASED
    assert request.xid != sent(solicit).xid
    assert [type(e) for e in client.events()] == [Advertised, Advertised]


def test_preference_255_is_requested_at_once() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    client.receive(answer(solicit, dhcp6.ADVERTISE, preference=255), now)
    assert sent(client.datagrams_to_send()[-1].payload).msg_type == dhcp6.REQUEST
    assert client.state is State.REQUESTING


def test_a_reply_leases_the_address_with_its_lifetimes_and_dns_servers() -> None:
    client = _client()
    now, events = _bound(client)
    leased = [e for e in events if isinstance(e, Leased)]
    assert leased == [Leased(LEASED, 3600.0, 7200.0, 1800.0, 2880.0, SERVER_DUID, False)]
    informed = [e for e in events if isinstance(e, Informed)]
    assert informed == [Informed((DNS,), ("example.test",), math.inf, SERVER_DUID)]
    assert client.state is State.BOUND and client.get_timer() == now + 1800.0
    assert client.counters["dhcp6.leases_bound"] == 1


@pytest.mark.parametrize(("change", "reason"), [
    ({"xid": 0}, "dhcp6.wrong_xid"),
    ({"server_id": OTHER_DUID}, "dhcp6.wrong_server"),
    ({"client_id": OTHER_DUID}, "dhcp6.wrong_client_id"),
])
def test_replies_not_for_this_exchange_are_dropped_and_counted(change: dict[str, object], reason: str) -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    client.receive(answer(solicit, dhcp6.ADVERTISE, preference=255), now)
    request = client.datagrams_to_send()[-1].payload
    if change.get("xid") == 0 and sent(request).xid == 0:
        change = {"xid": 1}
    client.receive(answer(request, **change), now)  # type: ignore[arg-type]
    assert client.counters["drop." + reason] == 1
    assert client.state is State.REQUESTING and not [e for e in client.events() if isinstance(e, Leased)]


def test_a_reply_without_server_id_and_junk_are_dropped() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    msg = sent(answer(solicit, dhcp6.ADVERTISE))
    msg.server_id = None
    client.receive(dhcp6.build(msg), now)
    client.receive(b"\x02\x00", now)
    client.receive(dhcp6.build(dhcp6.Dhcp6Message(dhcp6.RECONFIGURE, 1)), now)
    client.receive(answer(solicit, dhcp6.REPLY), now)  # a Reply while soliciting
    assert client.counters.drops() == {"dhcp6.no_server_id": 1, "dhcp6.truncated": 1,
                                       "dhcp6.reconfigure_ignored": 1, "dhcp6.unexpected_message": 1}
    assert client.state is State.SOLICITING


def test_an_advertise_without_addresses_is_ignored_but_its_sol_max_rt_is_kept() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    client.receive(answer(solicit, dhcp6.ADVERTISE, ia_status=Status(dhcp6.NO_ADDRS_AVAIL), addresses=(),
                          sol_max_rt=120, preference=255), now)
    assert client.counters["drop.dhcp6.advertise_without_address"] == 1 and client.state is State.SOLICITING
    assert client._sol_max_rt == 120.0


def test_renew_at_t1_goes_to_the_server_and_rebind_at_t2_to_any() -> None:
    client = _client()
    now, _ = _bound(client)
    renew, at = _run_until_sent(client, now)
    assert at == now + 1800.0
    msg = sent(renew)
    assert msg.msg_type == dhcp6.RENEW and msg.server_id == SERVER_DUID
    assert [a.address for a in msg.ia_na[0].addresses] == [LEASED]
    renews = 1
    while True:
        payload, at = _run_until_sent(client, at)
        if sent(payload).msg_type != dhcp6.RENEW:
            break
        renews += 1
    assert sent(payload).msg_type == dhcp6.REBIND and at == pytest.approx(now + 2880.0)
    assert 1 < renews < 10  # REN_TIMEOUT 10 s doubling to REN_MAX_RT 600 s within T2 - T1 = 1080 s


def test_rebind_is_sent_without_server_id_and_a_reply_from_another_server_renews() -> None:
    client = _client()
    now, _ = _bound(client, t1=100, t2=200)
    out = []
    at = now
    while client.state is not State.REBINDING:
        deadline = client.get_timer()
        assert deadline is not None
        at = deadline
        client.handle_timer(at)
        out += client.datagrams_to_send()
    rebind = out[-1].payload
    assert sent(rebind).msg_type == dhcp6.REBIND and sent(rebind).server_id is None
    client.events()
    client.receive(answer(rebind, server_id=OTHER_DUID, valid=9000, preferred=8000, t1=0, t2=0), at)
    (leased,) = [e for e in client.events() if isinstance(e, Leased)]
    assert leased.renewed and leased.valid == 9000.0 and leased.server_id == OTHER_DUID
    assert (leased.t1, leased.t2) == (pytest.approx(4000.0), pytest.approx(6400.0))  # section 21.4: 0.5 and 0.8 of the preferred lifetime
    assert client.state is State.BOUND


def test_the_lease_ends_when_rebinding_gets_no_answer_and_solicit_starts_again() -> None:
    client = _client()
    now, _ = _bound(client, t1=100, t2=200, valid=300, preferred=250)
    at = now
    ended: list[LeaseEnded] = []
    while not ended:
        deadline = client.get_timer()
        assert deadline is not None and deadline <= now + 300.0
        at = deadline
        client.handle_timer(at)
        client.datagrams_to_send()
        ended = [e for e in client.events() if isinstance(e, LeaseEnded)]
    assert ended == [LeaseEnded(LEASED, "expired")] and at == pytest.approx(now + 300.0)
    assert client.state is State.SOLICITING and client.lease is None
    payload, _ = _run_until_sent(client, at)
    assert sent(payload).msg_type == dhcp6.SOLICIT


def test_no_addrs_avail_in_the_reply_solicits_again_after_a_wait() -> None:
    client = _client()
    now, events = _bound(client, ia_status=Status(dhcp6.NO_ADDRS_AVAIL, "none left"), addresses=())
    assert not [e for e in events if isinstance(e, Leased)]
    assert client.state is State.SOLICITING and client.counters["dhcp6.status_noaddrsavail"] == 1
    deadline = client.get_timer()
    assert deadline is not None and deadline >= now + 1.8  # the wait doubles with each failure


def test_a_request_never_answered_gives_up_after_req_max_rc_and_solicits_again() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    client.receive(answer(solicit, dhcp6.ADVERTISE, preference=255), now)
    requests = len(client.datagrams_to_send())
    while client.state is State.REQUESTING:
        deadline = client.get_timer()
        assert deadline is not None
        now = deadline
        client.handle_timer(now)
        requests += sum(1 for d in client.datagrams_to_send() if d.message == "Request")
    assert requests == 10 and client.counters["dhcp6.request_gave_up"] == 1  # REQ_MAX_RC
    assert client.state is State.SOLICITING


def test_a_duplicate_address_is_declined_and_a_new_lease_solicited() -> None:
    client = _client()
    now, _ = _bound(client)
    client.address_duplicate(LEASED, now)
    assert client.events() == [Declined(LEASED)]
    decline = sent(client.datagrams_to_send()[-1].payload)
    assert decline.msg_type == dhcp6.DECLINE and decline.server_id == SERVER_DUID
    assert [a.address for a in decline.ia_na[0].addresses] == [LEASED]
    client.receive(answer(dhcp6.build(decline), addresses=()), now)
    assert client.state is State.SOLICITING and client.counters["dhcp6.declines_sent"] == 1


def test_a_duplicate_report_for_an_address_we_do_not_hold_is_counted() -> None:
    client = _client()
    now, _ = _bound(client)
    client.address_duplicate(LEASED + 5, now)
    assert client.counters["drop.dhcp6.stray_duplicate"] == 1 and client.state is State.BOUND


def test_a_renew_answered_no_binding_requests_again() -> None:
    client = _client()
    now, _ = _bound(client)
    renew, at = _run_until_sent(client, now)
    client.receive(answer(renew, ia_status=Status(dhcp6.NO_BINDING), addresses=()), at)
    assert client.state is State.REQUESTING
    assert sent(client.datagrams_to_send()[-1].payload).msg_type == dhcp6.REQUEST


def test_an_address_withdrawn_with_valid_lifetime_zero_ends() -> None:
    client = _client()
    now, _ = _bound(client)
    renew, at = _run_until_sent(client, now)
    client.events()
    client.receive(answer(renew, valid=0, preferred=0), at)
    assert LeaseEnded(LEASED, "withdrawn") in client.events()
    assert client.lease is None and client.state is State.SOLICITING


def test_release_gives_the_addresses_up_at_once_and_waits_for_the_reply() -> None:
    """Section 18.2.7: the addresses stop being used when the Release is sent; then the client waits."""
    client = _client()
    now, _ = _bound(client)
    client.release(now)
    assert client.events() == [LeaseEnded(LEASED, "released")] and client.lease is None
    release = sent(client.datagrams_to_send()[-1].payload)
    assert release.msg_type == dhcp6.RELEASE and release.server_id == SERVER_DUID
    assert [a.address for a in release.ia_na[0].addresses] == [LEASED] and not release.oro
    assert client.state is State.RELEASING and client.releasing
    deadline = client.get_timer()
    assert deadline is not None and now + 0.9 <= deadline <= now + 1.1  # REL_TIMEOUT with RAND


def test_an_unanswered_release_is_sent_rel_max_rc_times_with_doubling_timeouts_then_given_up() -> None:
    """Section 15 with REL_TIMEOUT 1 s and REL_MAX_RC 4 (section 7.6): Release at 0, ~1, ~3, ~7 s, the
    same transaction throughout, and the exchange ends at the fourth timeout with no Reply."""
    client = _client()
    now, _ = _bound(client)
    client.release(now)
    first = sent(client.datagrams_to_send()[-1].payload)
    client.events()
    times, gaps = [now], []
    while client.releasing:
        deadline = client.get_timer()
        assert deadline is not None and len(gaps) < 10
        gaps.append(deadline - now)
        now = deadline
        client.handle_timer(now)
        for dgram in client.datagrams_to_send():
            msg = sent(dgram.payload)
            assert msg.msg_type == dhcp6.RELEASE and msg.xid == first.xid
            assert abs(msg.elapsed - (now - times[0]) * 100) <= 1  # section 21.9: since the first
            times.append(now)
    assert len(times) == 4 and len(gaps) == 4
    assert 0.9 <= gaps[0] <= 1.1
    for before, after in zip(gaps, gaps[1:]):
        assert 1.8 * before <= after <= 2.2 * before
    assert client.events() == [Released((LEASED,), None)]
    assert client.state is State.STOPPED and client.get_timer() is None
    assert client.counters["dhcp6.release_sent"] == 4 and client.counters["dhcp6.release_gave_up"] == 1
    assert client.counters["dhcp6.releases_unanswered"] == 1


@pytest.mark.parametrize("status", [None, Status(dhcp6.SUCCESS, "released"), Status(dhcp6.NO_BINDING, "gone")])
def test_a_reply_of_any_status_ends_the_release(status: Status | None) -> None:
    """Section 18.2.10.2: the Release is done whatever the Reply's status (Success, NoBinding ...)."""
    client = _client()
    now, _ = _bound(client)
    client.release(now)
    release = client.datagrams_to_send()[-1].payload
    client.events()
    client.receive(answer(release, ia_status=status), now + 0.2)
    name = status.name if status is not None else "Success"
    assert client.events() == [Released((LEASED,), name)]
    assert client.state is State.STOPPED and client.get_timer() is None and not client.releasing
    assert client.counters["dhcp6.releases_acknowledged"] == 1 and client.counters["dhcp6.release_sent"] == 1


def test_a_reply_for_another_transaction_or_server_does_not_end_the_release() -> None:
    client = _client()
    now, _ = _bound(client)
    client.release(now)
    release = client.datagrams_to_send()[-1].payload
    client.events()
    client.receive(answer(release, xid=(sent(release).xid + 1) & 0xFFFFFF), now + 0.1)
    client.receive(answer(release, server_id=OTHER_DUID), now + 0.1)
    assert client.releasing and client.events() == []
    assert client.counters["drop.dhcp6.wrong_xid"] == 1 and client.counters["drop.dhcp6.wrong_server"] == 1
    client.receive(answer(release), now + 0.2)
    assert client.events() == [Released((LEASED,), "Success")]


def test_a_release_of_one_attempt_gives_up_at_the_first_timeout_without_retransmitting() -> None:
    """What an owner on its way out asks: the Reply or the first REL_TIMEOUT, whichever comes first."""
    client = _client()
    now, _ = _bound(client)
    client.release(now, attempts=1)
    client.datagrams_to_send()
    client.events()
    deadline = client.get_timer()
    assert deadline is not None and deadline <= now + 1.1
    client.handle_timer(deadline)
    assert client.datagrams_to_send() == [] and client.events() == [Released((LEASED,), None)]
    assert client.state is State.STOPPED and client.get_timer() is None


def test_release_with_nothing_leased_sends_nothing_and_stops() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    client.release(0.0)
    assert client.datagrams_to_send() == [] and client.events() == []
    assert client.state is State.STOPPED and client.get_timer() is None


def test_information_request_learns_the_dns_servers_and_asks_again_after_the_refresh_time() -> None:
    client = _client()
    client.start(Mode.STATELESS, 0.0)
    payload, now = _run_until_sent(client, 0.0)
    msg = sent(payload)
    assert msg.msg_type == dhcp6.INFORMATION_REQUEST and not msg.ia_na and msg.server_id is None
    assert {dhcp6.OPT_DNS_SERVERS, dhcp6.OPT_INFORMATION_REFRESH_TIME} <= set(msg.oro)
    client.receive(answer(payload, refresh=1200), now)
    assert client.events() == [Informed((DNS,), ("example.test",), 1200.0, SERVER_DUID)]
    assert client.state is State.INFORMED and client.get_timer() == now + 1200.0
    again, at = _run_until_sent(client, now)
    assert sent(again).msg_type == dhcp6.INFORMATION_REQUEST and at == now + 1200.0


@pytest.mark.parametrize(("refresh", "expected"), [(None, 86400.0), (5, 600.0), (dhcp6.INFINITY, None)])
def test_the_information_refresh_time_has_a_default_and_a_minimum(refresh: int | None, expected: float | None) -> None:
    client = _client()
    client.start(Mode.STATELESS, 0.0)
    payload, now = _run_until_sent(client, 0.0)
    client.receive(answer(payload, refresh=refresh), now)
    assert client.get_timer() == (None if expected is None else now + expected)


def test_dns_servers_are_bounded() -> None:
    client = _client(max_dns_servers=2)
    client.start(Mode.STATELESS, 0.0)
    payload, now = _run_until_sent(client, 0.0)
    client.receive(answer(payload, dns=tuple(DNS + i for i in range(5))), now)
    (informed,) = client.events()
    assert isinstance(informed, Informed) and informed.dns_servers == (DNS, DNS + 1)
    assert client.counters["drop.dhcp6.too_many_dns_servers"] == 1


def test_the_m_flag_after_the_o_flag_switches_to_stateful() -> None:
    client = _client()
    client.start(Mode.STATELESS, 0.0)
    _run_until_sent(client, 0.0)
    client.start(Mode.STATEFUL, 1.0)
    payload, _ = _run_until_sent(client, 1.0)
    assert sent(payload).msg_type == dhcp6.SOLICIT
    client.start(Mode.STATEFUL, 2.0)  # a second RA changes nothing
    assert client.state is State.SOLICITING


def test_a_lease_with_t1_above_t2_is_discarded() -> None:
    client = _client()
    _, events = _bound(client, t1=300, t2=200)
    assert client.counters["drop.dhcp6.bad_t1_t2"] == 1 and client.state is State.REQUESTING
    assert not [e for e in events if isinstance(e, Leased)]


def test_addresses_beyond_the_bound_are_dropped() -> None:
    client = _client(max_addresses=2)
    _, events = _bound(client, addresses=(LEASED, LEASED + 1, LEASED + 2))
    assert [e.address for e in events if isinstance(e, Leased)] == [LEASED, LEASED + 1]
    assert client.counters["drop.dhcp6.too_many_leased_addresses"] == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=6), st.integers(0, 3))
def test_junk_replies_are_dropped_and_counted_in_every_state(junk: list[bytes], steps: int) -> None:
    """Whatever arrives, the client never raises (no internal error) and every datagram it does not use is
    counted as a drop; a valid exchange still completes afterwards."""
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    if steps >= 1:
        client.receive(answer(solicit, dhcp6.ADVERTISE, preference=255), now)
    for payload in junk:
        for prefix in (b"", solicit[:4], bytes([dhcp6.REPLY]) + solicit[1:4], bytes([dhcp6.ADVERTISE]) + solicit[1:4]):
            before, state = dict(client.counters), client.state
            client.receive(prefix + payload, now)
            assert client.counters["drop.internal_error"] == 0
            assert dict(client.counters) != before or client.state is not state  # never silently ignored
    client.datagrams_to_send()
    if client.state is State.SOLICITING:
        solicit, now = _run_until_sent(client, now)
        client.receive(answer(solicit, dhcp6.ADVERTISE, preference=255), now)
    if client.state is State.REQUESTING:
        request, now = _run_until_sent(client, now)
        client.receive(answer(request), now)
    assert client.state is State.BOUND


def test_an_advertise_after_the_first_timeout_is_requested_at_once() -> None:
    client = _client()
    client.start(Mode.STATEFUL, 0.0)
    solicit, now = _run_until_sent(client, 0.0)
    again, now = _run_until_sent(client, now)  # the first timeout passed with no Advertise
    client.receive(answer(again, dhcp6.ADVERTISE, preference=0), now)
    assert client.state is State.REQUESTING
    assert sent(client.datagrams_to_send()[-1].payload).msg_type == dhcp6.REQUEST


def test_unspec_fail_to_a_request_solicits_again_but_a_renew_keeps_trying() -> None:
    client = _client()
    _now, _ = _bound(client, status=Status(dhcp6.UNSPEC_FAIL, "busy"))
    assert client.state is State.SOLICITING and client.counters["dhcp6.status_unspecfail"] == 1
    client = _client()
    now, _ = _bound(client)
    renew, at = _run_until_sent(client, now)
    client.receive(answer(renew, status=Status(dhcp6.UNSPEC_FAIL)), at)
    assert client.state is State.RENEWING and client.lease is not None
    again, _ = _run_until_sent(client, at)
    assert sent(again).msg_type == dhcp6.RENEW
