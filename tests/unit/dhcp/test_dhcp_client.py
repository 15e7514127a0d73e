"""The DHCP client state machine (RFC 2131) against a scripted server, with a fake clock."""

from __future__ import annotations

import math

import pytest

from pystack.dhcp import Bound, Declined, DhcpConfig, Failed, LeaseLost, ProbeAddress, State
from pystack.wire import dhcp

from .fake_server import CLIENT_MAC, DNS1, OFFERED, OTHER_SERVER, SERVER, FakeServer
from .harness import START, Harness

BROADCAST = 0xFFFFFFFF


def _bound(h: Harness) -> Harness:
    h.run(until=lambda: h.client.state is State.BOUND)
    assert h.client.state is State.BOUND
    return h


# ---------------------------------------------------------------------- acquiring a lease


def test_discover_offer_request_ack_probe_bound() -> None:
    h = Harness(FakeServer(t1=1000, t2=2000))
    h.run(until=lambda: h.client.state is State.BOUND)
    kinds = [m.message_type for _t, _d, m in h.messages()]
    assert kinds == [dhcp.DISCOVER, dhcp.REQUEST]

    _t, d_dgram, discover = h.messages(dhcp.DISCOVER)[0]
    assert (d_dgram.src, d_dgram.dst) == (0, BROADCAST)
    assert discover.op == dhcp.OP_REQUEST and discover.chaddr == CLIENT_MAC
    assert discover.flags & dhcp.FLAG_BROADCAST  # we cannot receive unicast before we have an address
    assert discover.ciaddr == 0
    assert discover.client_id == b"\x01" + CLIENT_MAC
    assert set(discover.parameter_list) >= {dhcp.OPT_SUBNET_MASK, dhcp.OPT_ROUTER, dhcp.OPT_DNS,
                                            dhcp.OPT_DOMAIN, dhcp.OPT_LEASE_TIME}
    assert discover.requested_ip is None and discover.server_id is None

    _t, r_dgram, request = h.messages(dhcp.REQUEST)[0]
    assert (r_dgram.src, r_dgram.dst) == (0, BROADCAST)
    assert request.xid == discover.xid  # RFC 2131 4.4.1: the REQUEST answers that OFFER
    assert request.flags & dhcp.FLAG_BROADCAST and request.ciaddr == 0
    assert (request.requested_ip, request.server_id) == (OFFERED, SERVER)

    assert h.event_list() == [ProbeAddress(OFFERED), Bound(OFFERED, 24, SERVER, (DNS1,), "example.test",
                                                           3600.0, 1000.0, 2000.0, SERVER)]
    lease = h.client.lease
    assert lease is not None and lease.start == START  # the lease runs from when the REQUEST went out
    assert h.client.get_timer() == START + 1000  # next: RENEW at T1
    assert h.counters["dhcp.leases_bound"] == 1 and h.counters.total_drops() == 0


def test_default_t1_and_t2_are_half_and_seven_eighths_of_the_lease() -> None:
    h = _bound(Harness(FakeServer(lease=800)))
    bound = h.event_list(Bound)[0]
    assert (bound.lease, bound.t1, bound.t2) == (800.0, 400.0, 700.0)


@pytest.mark.parametrize("t1,t2", [(3000, 2000), (100, 4000), (0, 1000), (1800, 3600)])
def test_inconsistent_t1_t2_fall_back_to_defaults(t1: int, t2: int) -> None:
    h = _bound(Harness(FakeServer(lease=3600, t1=t1, t2=t2)))
    bound = h.event_list(Bound)[0]
    assert 0 < bound.t1 < bound.t2 < bound.lease
    assert bound.t2 == (t2 if 0 < t2 < 3600 else 3150.0)


def test_infinite_lease_sets_no_timer() -> None:
    h = _bound(Harness(FakeServer(lease=dhcp.INFINITE_LEASE)))
    bound = h.event_list(Bound)[0]
    assert bound.lease == bound.t1 == bound.t2 == math.inf
    assert h.client.get_timer() is None


def test_missing_mask_falls_back_to_the_address_class() -> None:
    h = _bound(Harness(FakeServer(mask=None)))
    assert h.event_list(Bound)[0].prefix == 24  # 192.0.2.100 is a class C address


def test_without_probing_the_ack_binds_at_once() -> None:
    h = _bound(Harness(FakeServer(), DhcpConfig(arp_probe=False)))
    assert [type(e) for e in h.event_list()] == [Bound]


def test_requested_address_is_asked_for_in_discover() -> None:
    h = Harness(FakeServer(), requested_address=0xC0000277)
    h.run(until=lambda: h.client.state is State.BOUND)
    assert h.messages(dhcp.DISCOVER)[0][2].requested_ip == 0xC0000277


def test_hostname_and_max_message_size_are_sent() -> None:
    h = Harness(None, DhcpConfig(hostname="pystack"))
    h.run()
    discover = h.messages(dhcp.DISCOVER)[0][2]
    assert discover.options[dhcp.OPT_HOSTNAME] == b"pystack"
    assert int.from_bytes(discover.options[dhcp.OPT_MAX_MESSAGE_SIZE], "big") == 1472


# ---------------------------------------------------------------------- retransmission and giving up


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_discover_backoff_is_4_8_16_32_64_64_with_jitter(seed: int) -> None:
    h = Harness(None, DhcpConfig(acquire_timeout=None), seed=seed)
    h.run(duration=400)
    sends = h.messages(dhcp.DISCOVER)
    times = [t for t, _d, _m in sends]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert times[0] == START
    expected = [4, 8, 16, 32, 64, 64, 64]
    assert len(gaps) >= len(expected)
    for gap, base in zip(gaps, expected):
        assert base - 1 <= gap <= base + 1, (gaps, expected)
    assert len({round(g - b, 6) for g, b in zip(gaps, expected)}) > 1  # randomised, not a fixed offset
    assert len({m.xid for _t, _d, m in sends}) == 1  # retransmissions keep the xid
    secs = [m.secs for _t, _d, m in sends]
    assert secs[0] == 0 and secs == sorted(secs) and secs[-1] == int(times[-1] - START)


def test_gives_up_after_the_acquire_timeout_with_a_clear_error() -> None:
    h = Harness(None, DhcpConfig(acquire_timeout=30))
    h.run(duration=100)
    failed = h.event_list(Failed)
    assert len(failed) == 1
    assert "no DHCP server answered" in failed[0].reason and "DHCPDISCOVER" in failed[0].reason
    assert h.client.state is State.FAILED and h.client.get_timer() is None
    assert all(t <= START + 30 for t, _ in h.sent)
    assert [t for t, e in h.events if isinstance(e, Failed)] == [START + 30]
    # It can be started again, with a fresh tally.
    before = len(h.messages(dhcp.DISCOVER))
    h.client.start(h.now)
    h.run(duration=0)
    assert h.client.state is State.SELECTING
    assert [t for t, _d, _m in h.messages(dhcp.DISCOVER)[before:]] == [h.now]


def test_unanswered_requests_go_back_to_discover() -> None:
    server = FakeServer(ignore_requests=True)
    h = Harness(server, DhcpConfig(acquire_timeout=None, request_retries=4))
    h.run(until=lambda: len(h.messages(dhcp.DISCOVER)) == 2)
    first_xid = h.messages(dhcp.DISCOVER)[0][2].xid
    requests = [r for r in h.messages(dhcp.REQUEST) if r[2].xid == first_xid]
    assert len(requests) == 4
    times = [t for t, _d, _m in requests]
    for gap, base in zip([b - a for a, b in zip(times, times[1:])], [4, 8, 16]):
        assert base - 1 <= gap <= base + 1
    second_discover = h.messages(dhcp.DISCOVER)[1]
    assert second_discover[2].xid != requests[0][2].xid
    assert 31 <= second_discover[0] - times[-1] <= 33
    assert h.counters["dhcp.request_timeouts"] == 1


def test_failure_after_offers_says_what_happened() -> None:
    h = Harness(FakeServer(nak_requests=True), DhcpConfig(acquire_timeout=20))
    h.link_down = False
    # Every REQUEST is NAKed: the client restarts at once each time; let it go three rounds then cut the link.
    h.run(until=lambda: len(h.messages(dhcp.DISCOVER)) >= 3)
    h.link_down = True
    h.run(duration=60)
    reason = h.event_list(Failed)[0].reason
    assert "3 DHCPOFFER received" in reason and "3 DHCPNAK" in reason


# ---------------------------------------------------------------------- NAK and decline


def test_nak_while_requesting_restarts_with_a_new_xid_then_backs_off() -> None:
    server = FakeServer(nak_requests=True)
    h = Harness(server, DhcpConfig(acquire_timeout=None))
    h.run(until=lambda: len(h.messages(dhcp.DISCOVER)) == 4)
    times = [t for t, _d, _m in h.messages(dhcp.DISCOVER)]
    assert times[1] == times[0]  # the first NAK restarts at once
    assert 3 <= times[2] - times[1] <= 5 and 7 <= times[3] - times[2] <= 9  # then the backoff paces us
    assert len({m.xid for _t, _d, m in h.messages(dhcp.DISCOVER)}) == 4
    assert h.event_list(Bound) == [] and h.counters["dhcp.naks_received"] == 4  # each DISCOVER met a NAK


def test_nak_from_a_server_we_did_not_select_is_ignored() -> None:
    server = FakeServer(ignore_requests=True)
    h = Harness(server)
    h.run(until=lambda: h.client.state is State.REQUESTING)
    request = h.messages(dhcp.REQUEST)[0][2]
    h.deliver(FakeServer(server_id=OTHER_SERVER).reply(request, dhcp.NAK))
    assert h.client.state is State.REQUESTING
    assert h.counters["drop.dhcp.wrong_server"] == 1
    h.deliver(server.reply(request, dhcp.ACK))
    assert h.client.state is State.BOUND


def test_conflict_found_by_the_probe_declines_and_waits_ten_seconds() -> None:
    server = FakeServer()
    h = Harness(server)
    h.conflicts.add(OFFERED)
    h.run(until=lambda: bool(h.event_list(Declined)))
    assert h.event_list(Declined) == [Declined(OFFERED, SERVER)]
    t_decline, d_dgram, decline = h.messages(dhcp.DECLINE)[0]
    assert (d_dgram.src, d_dgram.dst) == (0, BROADCAST)
    assert decline.ciaddr == 0 and decline.requested_ip == OFFERED and decline.server_id == SERVER
    assert dhcp.OPT_PARAMETER_LIST not in decline.options  # RFC 2131 table 5: MUST NOT
    assert h.client.state is State.INIT and h.event_list(Bound) == []
    # The next attempt waits RFC 2131's ten seconds; this time the server offers a free address.
    h.conflicts.clear()
    server.address = OFFERED + 1
    h.run(until=lambda: h.client.state is State.BOUND)
    discovers = h.messages(dhcp.DISCOVER)
    assert len(discovers) == 2 and discovers[1][0] == t_decline + 10
    assert h.event_list(Bound)[0].address == OFFERED + 1


def test_probe_result_that_never_comes_times_out_into_bound() -> None:
    h = Harness(FakeServer())
    h.answer_probes = False
    h.run(until=lambda: h.client.state is State.BOUND)
    probe_at = [t for t, e in h.events if isinstance(e, ProbeAddress)][0]
    bound_at = [t for t, e in h.events if isinstance(e, Bound)][0]
    assert bound_at - probe_at == DhcpConfig().probe_result_timeout
    assert h.counters["dhcp.probe_result_timeouts"] == 1


def test_stray_probe_results_are_counted_and_ignored() -> None:
    h = Harness(FakeServer())
    h.answer_probes = False
    h.run(until=lambda: h.client.state is State.PROBING)
    h.client.probe_result(OFFERED + 5, True, h.now)  # not the address being probed
    assert h.client.state is State.PROBING
    h.client.probe_result(OFFERED, False, h.now)
    h.pump()
    h.client.probe_result(OFFERED, True, h.now)  # too late: already bound
    assert h.client.state is State.BOUND and h.client.datagrams_to_send() == []
    assert h.counters["drop.dhcp.stray_probe_result"] == 2


# ---------------------------------------------------------------------- renew, rebind, expiry


def test_renew_at_t1_is_unicast_and_extends_the_lease() -> None:
    server = FakeServer(lease=3600)
    h = _bound(Harness(server))
    h.run(until=lambda: bool(h.messages(dhcp.REQUEST)[1:]) and h.client.state is State.BOUND)
    t, dgram, renew = h.messages(dhcp.REQUEST)[1]
    assert t == START + 1800
    assert (dgram.src, dgram.dst) == (OFFERED, SERVER)
    assert renew.ciaddr == OFFERED and not renew.flags & dhcp.FLAG_BROADCAST
    assert renew.requested_ip is None and renew.server_id is None  # RFC 2131 table 5, RENEWING
    assert renew.xid != h.messages(dhcp.REQUEST)[0][2].xid
    assert h.event_list(Bound)[-1] == Bound(OFFERED, 24, SERVER, (DNS1,), "example.test", 3600.0, 1800.0,
                                            3150.0, SERVER, renewed=True)
    assert h.event_list(ProbeAddress) == [ProbeAddress(OFFERED)]  # a renewal does not probe again
    assert h.client.get_timer() == START + 1800 + 1800
    assert h.counters["dhcp.leases_renewed"] == 1


def test_renew_retransmits_at_half_the_time_to_t2_then_rebinds_then_expires() -> None:
    server = FakeServer(lease=3600)
    h = _bound(Harness(server, DhcpConfig(renew_min_interval=60)))
    server.ignore_requests = True
    server.ignore_discovers = True
    h.run(duration=3600 + 1)
    renewals = [(t, d) for t, d, m in h.messages(dhcp.REQUEST) if m.ciaddr]
    renew = [t - START for t, d in renewals if d.dst == SERVER]
    rebind = [t - START for t, d in renewals if d.dst == BROADCAST]
    # RENEWING: T1 = 1800, T2 = 3150; wait half the time left to T2, at least 60 s, never past T2:
    # +1350/2, +675/2, +337.5/2, +168.75/2, then 84.375/2 < 60 so +60, then T2 is nearer than 60 s.
    assert renew == [1800, 2475, 2812.5, 2981.25, 3065.625, 3125.625]
    # REBINDING from T2 = 3150 towards expiry at 3600: +450/2, +225/2, then 60, then expiry is nearer.
    assert rebind == [3150, 3375, 3487.5, 3547.5]
    assert all(d.src == OFFERED for _t, d in renewals)
    lost = [(t, e) for t, e in h.events if isinstance(e, LeaseLost)]
    assert lost == [(START + 3600, LeaseLost(OFFERED, "expired"))]
    # Back to INIT at once, asking for the old address again.
    t, dgram, discover = h.messages(dhcp.DISCOVER)[1]
    assert t == START + 3600 and dgram.src == 0 and discover.requested_ip == OFFERED
    assert h.client.state is State.SELECTING and h.client.lease is None


def test_rebind_accepts_any_server() -> None:
    server = FakeServer(lease=3600)
    h = _bound(Harness(server))
    server.ignore_requests = True
    h.run(until=lambda: h.client.state is State.REBINDING)
    other = FakeServer(server_id=OTHER_SERVER, lease=7200)
    rebind = h.messages(dhcp.REQUEST)[-1][2]
    h.deliver(other.reply(rebind, dhcp.ACK))
    bound = h.event_list(Bound)[-1]
    assert h.client.state is State.BOUND and bound.renewed and bound.server == OTHER_SERVER
    assert bound.lease == 7200.0
    assert h.client.lease is not None and h.client.lease.expires_at == START + 3150 + 7200


def test_renew_ack_from_another_server_is_dropped() -> None:
    server = FakeServer()
    h = _bound(Harness(server))
    server.ignore_requests = True
    h.run(until=lambda: h.client.state is State.RENEWING)
    renew = h.messages(dhcp.REQUEST)[-1][2]
    h.deliver(FakeServer(server_id=OTHER_SERVER).reply(renew, dhcp.ACK))
    assert h.client.state is State.RENEWING and h.counters["drop.dhcp.wrong_server"] == 1


def test_nak_while_renewing_drops_the_address_at_once() -> None:
    server = FakeServer()
    h = _bound(Harness(server))
    server.nak_requests = True
    server.ignore_discovers = True
    h.run(until=lambda: bool(h.event_list(LeaseLost)))
    assert h.event_list(LeaseLost) == [LeaseLost(OFFERED, "nak")]
    assert h.client.state is State.SELECTING and h.client.lease is None
    assert h.messages(dhcp.DISCOVER)[-1][0] == h.now


def test_renewal_that_changes_the_address_loses_the_old_and_probes_the_new() -> None:
    server = FakeServer()
    h = _bound(Harness(server))
    server.address = OFFERED + 7
    h.run(until=lambda: len(h.event_list(Bound)) == 2)
    events = h.event_list()
    assert events[2:] == [LeaseLost(OFFERED, "address_changed"), ProbeAddress(OFFERED + 7),
                          Bound(OFFERED + 7, 24, SERVER, (DNS1,), "example.test", 3600.0, 1800.0, 3150.0, SERVER)]


def test_release_on_shutdown() -> None:
    h = _bound(Harness(FakeServer()))
    h.client.release(h.now)
    h.pump()
    _t, dgram, release = h.messages(dhcp.RELEASE)[0]
    assert (dgram.src, dgram.dst) == (OFFERED, SERVER)  # RFC 2131 4.4.6: unicast to the server
    assert release.ciaddr == OFFERED and release.server_id == SERVER and release.requested_ip is None
    assert h.event_list(LeaseLost) == [LeaseLost(OFFERED, "released")]
    assert h.client.state is State.STOPPED and h.client.get_timer() is None
    h.client.release(h.now)  # a second release sends nothing
    assert h.client.datagrams_to_send() == []


def test_release_before_bound_just_stops() -> None:
    h = Harness(None)
    h.run(duration=1)
    h.client.release(h.now)
    assert h.client.datagrams_to_send() == [] and h.client.events() == []
    assert h.client.state is State.STOPPED


# ---------------------------------------------------------------------- replies that are not for us


def _in_selecting() -> tuple[Harness, dhcp.DhcpMessage, FakeServer]:
    server = FakeServer(ignore_discovers=True)
    h = Harness(server)
    h.run(duration=1)
    assert h.client.state is State.SELECTING
    return h, h.messages(dhcp.DISCOVER)[0][2], server


@pytest.mark.parametrize("overrides,reason", [
    ({"xid": 1}, "dhcp.wrong_xid"),
    ({"chaddr": bytes.fromhex("02000000abcd")}, "dhcp.wrong_chaddr"),
    ({"op": dhcp.OP_REQUEST}, "dhcp.not_a_reply"),
    ({"yiaddr": 0}, "dhcp.bad_offered_address"),
    ({"yiaddr": 0x7F000001}, "dhcp.bad_offered_address"),
    ({"yiaddr": 0xE0000001}, "dhcp.bad_offered_address"),
    ({"yiaddr": BROADCAST}, "dhcp.bad_offered_address"),
])
def test_foreign_or_bogus_offers_are_dropped_and_counted(overrides: dict, reason: str) -> None:
    h, discover, server = _in_selecting()
    h.deliver(server.reply(discover, dhcp.OFFER, **overrides))
    assert h.counters.drops() == {reason: 1}
    assert h.client.state is State.SELECTING and h.messages(dhcp.REQUEST) == []


def test_offer_with_wrong_client_id_or_without_server_id_or_type_is_dropped() -> None:
    h, discover, server = _in_selecting()
    offer = dhcp.parse(server.reply(discover, dhcp.OFFER))
    cases = {
        "dhcp.wrong_client_id": {**offer.options, dhcp.OPT_CLIENT_ID: b"\x01" + bytes(6)},
        "dhcp.no_server_id": {k: v for k, v in offer.options.items() if k != dhcp.OPT_SERVER_ID},
        "dhcp.no_message_type": {k: v for k, v in offer.options.items() if k != dhcp.OPT_MESSAGE_TYPE},
    }
    for reason, options in cases.items():
        offer.options = options
        h.deliver(dhcp.build(offer))
        assert h.counters[f"drop.{reason}"] == 1, reason
    assert h.client.state is State.SELECTING


def test_ack_while_selecting_is_unexpected() -> None:
    h, discover, server = _in_selecting()
    h.deliver(server.reply(discover, dhcp.ACK))
    assert h.counters.drops() == {"dhcp.unexpected_message": 1}


@pytest.mark.parametrize("mask,reason", [(0xFF00FF00, "dhcp.bad_subnet_mask"), (0, "dhcp.bad_subnet_mask")])
def test_ack_with_a_bad_mask_is_dropped(mask: int, reason: str) -> None:
    h = Harness(FakeServer(mask=mask))
    h.run(duration=1)
    assert h.counters[f"drop.{reason}"] == 1 and h.client.state is State.REQUESTING


def test_ack_without_lease_time_is_dropped() -> None:
    server = FakeServer(ignore_requests=True)
    h = Harness(server)
    h.run(until=lambda: h.client.state is State.REQUESTING)
    request = h.messages(dhcp.REQUEST)[0][2]
    ack = dhcp.parse(server.reply(request, dhcp.ACK))
    del ack.options[dhcp.OPT_LEASE_TIME]
    h.deliver(dhcp.build(ack))
    assert h.counters.drops() == {"dhcp.no_lease_time": 1} and h.client.state is State.REQUESTING


def test_duplicate_ack_after_bound_is_dropped() -> None:
    server = FakeServer()
    h = _bound(Harness(server))
    request = h.messages(dhcp.REQUEST)[0][2]
    h.deliver(server.reply(request, dhcp.ACK))
    assert h.counters.drops() == {"dhcp.not_expecting": 1}
    assert len(h.event_list(Bound)) == 1
