"""MLDv1 compatibility (RFC 3810 8.2.1 and 9.12, RFC 2710): a host that hears an MLDv1 query answers in
MLDv1 until the Older Version Querier Present Timeout passes, as Linux's net/ipv6/mcast.c does. The query
fed in is one a Linux bridge sent as MLDv1 querier (``mcast_querier 1 mcast_mld_version 1``); the reports
and the Done are checked byte for byte against a Linux host's (``force_mld_version=1``)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from pystack.link.memory import MemoryWire
from pystack.stack import Stack
from pystack.wire import icmpv6, ipv6
from pystack.wire.errors import WireError

from .stack_pair import A6, A_LL, frame_to, make_pair6

BRIDGE_V1_QUERY = bytes.fromhex(
    "6000000000200001fe80000000000000000000000000000bff0200000000000000000000000000013a0005020000000082007c35"
    "03e8000000000000000000000000000000000000")
"""A Linux 6.18 bridge's MLDv1 general query from fe80::b: 24 bytes, Maximum Response Delay 1000 ms."""
LINUX_V1_REPORT = bytes.fromhex(
    "6000000000200001fe80000000000000000000fffe00000aff0200000000000000000000000012343a0005020000010083005cb4"
    "00000000ff020000000000000000000000001234")
"""Linux (force_mld_version=1) at fe80::ff:fe00:a joining ff02::1234: an MLDv1 Report to the group."""
LINUX_V1_DONE = bytes.fromhex(
    "6000000000200001fe80000000000000000000fffe00000aff0200000000000000000000000000023a0005020000010084006de6"
    "00000000ff020000000000000000000000001234")
"""...and leaving it: MLDv1 Done to all routers, ff02::2."""

LINUX_HOST = ipv6.addr_to_int("fe80::ff:fe00:a")
QUERIER = ipv6.addr_to_int("fe80::b")
OTHER_HOST = ipv6.addr_to_int("fe80::99")
A_GROUP = ipv6.solicited_node(A6)  # ff02::1:ff00:2, shared by A's link-local address
NEW = ipv6.addr_to_int("2001:db8::77")
NEW_GROUP = ipv6.solicited_node(NEW)
PRESENT_TIMEOUT = 2 * 125 + 10
"""RFC 3810 9.12 with the default Robustness, Query Interval and Query Response Interval: 260 s."""


class Sent(NamedTuple):
    time: float
    type: int
    dst: int
    group: int
    """The group of an MLDv1 message; the first record's of an MLDv2 report (0 if it has none)."""


def mld_sent(wire: MemoryWire, since: int) -> list[Sent]:
    """A's MLD messages on the wire since log index ``since``, checked as MLD must be (hop limit 1, Router
    Alert, from A's link-local address)."""
    out = []
    for t, who, frame in wire.log[since:]:
        if who != 0 or frame[12:14] != b"\x86\xdd":
            continue
        pkt = ipv6.parse(bytes(frame[14:]))
        chain = ipv6.walk(pkt)
        if chain.protocol != ipv6.NH_ICMPV6:
            continue
        msg = icmpv6.parse(pkt.datagram[chain.offset:], pkt.src, pkt.dst)
        if msg.type not in (icmpv6.TYPE_MLDV1_REPORT, icmpv6.TYPE_MLDV1_DONE, icmpv6.TYPE_MLD_REPORT):
            continue
        assert (pkt.hop_limit, chain.router_alert, pkt.src) == (1, ipv6.ROUTER_ALERT_MLD, A_LL)
        assert frame[0:6] == ipv6.multicast_mac(pkt.dst)
        if msg.type == icmpv6.TYPE_MLD_REPORT:
            records = icmpv6.parse_mld_report(msg, src=pkt.src, hop_limit=1, router_alert=True)
            group = records[0].group if records else 0
        else:
            assert len(msg.body) == 16 and msg.rest == 0  # 24 bytes, Maximum Response Delay 0
            group = int.from_bytes(msg.body[:16], "big")
        out.append(Sent(t, msg.type, pkt.dst, group))
    return out


def v2_query(max_response_delay: int = 1000, **kw: int) -> bytes:
    return icmpv6.mld_packet(QUERIER, ipv6.ALL_NODES, icmpv6.build_mld_query(
        QUERIER, ipv6.ALL_NODES, max_response_delay=max_response_delay, **kw))


def v1_query(max_response_delay: int = 1000) -> bytes:
    message = icmpv6.build(icmpv6.TYPE_MLD_QUERY, 0, max_response_delay << 16, bytes(16), QUERIER, ipv6.ALL_NODES)
    return icmpv6.mld_packet(QUERIER, ipv6.ALL_NODES, message)


def v1_report_from_another_host(group: int) -> bytes:
    _dst, message = icmpv6.build_mldv1(icmpv6.TYPE_MLDV1_REPORT, OTHER_HOST, group)
    return icmpv6.mld_packet(OTHER_HOST, group, message)


def deliver(a: Stack, wire: MemoryWire, packet: bytes) -> int:
    """Hand ``packet`` to A now; the wire log's index from which A's answers follow."""
    since = len(wire.log)
    a.receive_frame(frame_to(a, packet), wire.clock.now)
    return since


@pytest.fixture
def pair6() -> tuple[Stack, Stack, MemoryWire]:
    return make_pair6()


# --- the wire: MLDv1 as Linux writes it -------------------------------------------------------------------


def test_mldv1_report_and_done_are_the_linux_hosts_packets() -> None:
    group = ipv6.addr_to_int("ff02::1234")
    for mtype, kernel in ((icmpv6.TYPE_MLDV1_REPORT, LINUX_V1_REPORT), (icmpv6.TYPE_MLDV1_DONE, LINUX_V1_DONE)):
        dst, message = icmpv6.build_mldv1(mtype, LINUX_HOST, group)
        assert icmpv6.mld_packet(LINUX_HOST, dst, message) == kernel


def test_the_bridges_24_byte_query_parses_as_mldv1() -> None:
    pkt = ipv6.parse(BRIDGE_V1_QUERY)
    chain = ipv6.walk(pkt)
    query = icmpv6.parse_mld_query(icmpv6.parse(pkt.datagram[chain.offset:], pkt.src, pkt.dst), src=pkt.src,
                                   hop_limit=pkt.hop_limit, router_alert=chain.router_alert == ipv6.ROUTER_ALERT_MLD)
    assert (query.version, query.max_response_delay, query.group) == (1, 1000, 0)


def test_another_hosts_v1_report_is_validated() -> None:
    pkt = ipv6.parse(LINUX_V1_REPORT)
    msg = icmpv6.parse(pkt.datagram[48:], pkt.src, pkt.dst)
    assert icmpv6.parse_mldv1_report(msg, src=pkt.src, hop_limit=1, router_alert=True) == ipv6.addr_to_int("ff02::1234")
    cases = {
        "mld.bad_hop_limit": dict(src=pkt.src, hop_limit=2, router_alert=True),
        "mld.no_router_alert": dict(src=pkt.src, hop_limit=1, router_alert=False),
        "mld.source_not_link_local": dict(src=A6, hop_limit=1, router_alert=True),
    }
    for reason, kw in cases.items():
        with pytest.raises(WireError, match=reason):
            icmpv6.parse_mldv1_report(msg, **kw)  # type: ignore[arg-type]
    short = icmpv6.parse(icmpv6.build(131, 0, 0, bytes(8), LINUX_HOST, ipv6.ALL_NODES), LINUX_HOST, ipv6.ALL_NODES)
    with pytest.raises(WireError, match="mld.truncated"):
        icmpv6.parse_mldv1_report(short, src=LINUX_HOST, hop_limit=1, router_alert=True)
    unicast = icmpv6.parse(icmpv6.build(131, 0, 0, A6.to_bytes(16, "big"), LINUX_HOST, ipv6.ALL_NODES),
                           LINUX_HOST, ipv6.ALL_NODES)
    with pytest.raises(WireError, match="mld.bad_group"):
        icmpv6.parse_mldv1_report(unicast, src=LINUX_HOST, hop_limit=1, router_alert=True)


# --- the host in MLDv1 compatibility mode ----------------------------------------------------------------


def test_the_bridges_v1_query_is_answered_with_one_v1_report_per_group_within_its_delay(pair6) -> None:
    a, _b, wire = pair6
    start = wire.clock.now
    since = deliver(a, wire, BRIDGE_V1_QUERY)
    wire.run(duration=5)
    (report,) = mld_sent(wire, since)
    assert (report.type, report.dst, report.group) == (icmpv6.TYPE_MLDV1_REPORT, A_GROUP, A_GROUP)
    assert report.time <= start + 1.0  # RFC 2710 4: a random delay within the Maximum Response Delay
    assert a.counters["mld.v1_mode_entered"] == 1 and a.nd.mld.in_v1_mode(wire.clock.now)


def test_a_group_joined_in_v1_mode_is_reported_in_v1_at_once_and_once_more_within_10_s(pair6) -> None:
    a, _b, wire = pair6
    deliver(a, wire, v1_query())
    wire.run(duration=2)
    since = len(wire.log)
    start = wire.clock.now
    a.add_address6(NEW, 64, start)
    wire.run(duration=15)
    reports = [s for s in mld_sent(wire, since) if s.group == NEW_GROUP]
    assert [(s.type, s.dst) for s in reports] == [(icmpv6.TYPE_MLDV1_REPORT, NEW_GROUP)] * 2
    assert reports[0].time == start and reports[1].time <= start + 10.0  # RFC 2710 4 and 7.10
    assert all(s.type != icmpv6.TYPE_MLD_REPORT for s in mld_sent(wire, since))


def test_leaving_a_group_in_v1_mode_says_done_to_all_routers(pair6) -> None:
    a, _b, wire = pair6
    deliver(a, wire, v1_query())
    a.add_address6(NEW, 64, wire.clock.now)
    wire.run(duration=15)
    since = len(wire.log)
    a.remove_address6(NEW, wire.clock.now)
    wire.run(duration=5)
    assert [(s.type, s.dst, s.group) for s in mld_sent(wire, since)] == [
        (icmpv6.TYPE_MLDV1_DONE, ipv6.ALL_ROUTERS, NEW_GROUP)]


def test_another_listeners_v1_report_suppresses_ours_and_our_done(pair6) -> None:
    """RFC 2710 4: a Report heard for a group whose answer is pending cancels ours; a host that did not
    send the last Report for a group leaves it without a Done."""
    a, _b, wire = pair6
    since = deliver(a, wire, v1_query(max_response_delay=10000))
    deliver(a, wire, v1_report_from_another_host(A_GROUP))
    wire.run(duration=12)
    assert mld_sent(wire, since) == [] and a.counters["mld.v1_reports_suppressed"] == 1
    a.add_address6(NEW, 64, wire.clock.now)  # our Report at once; then the other host reports it too
    deliver(a, wire, v1_report_from_another_host(NEW_GROUP))
    wire.run(duration=12)
    since = len(wire.log)
    a.remove_address6(NEW, wire.clock.now)
    wire.run(duration=5)
    assert mld_sent(wire, since) == []


def test_in_v2_mode_another_hosts_v1_report_suppresses_nothing(pair6) -> None:
    a, _b, wire = pair6
    since = deliver(a, wire, v2_query(max_response_delay=5000))
    deliver(a, wire, v1_report_from_another_host(A_GROUP))
    wire.run(duration=6)
    assert [(s.type, s.group) for s in mld_sent(wire, since)] == [(icmpv6.TYPE_MLD_REPORT, A_GROUP)]
    assert a.counters["mld.v1_reports_suppressed"] == 0 and a.counters["mld.reports_heard"] == 1


def test_pending_v2_state_change_reports_are_dropped_when_a_v1_querier_appears(pair6) -> None:
    a, _b, wire = pair6
    since = len(wire.log)
    a.add_address6(NEW, 64, wire.clock.now)  # a State Change Report now, its repetition within 1 s
    deliver(a, wire, v1_query(max_response_delay=3000))
    wire.run(duration=5)
    types = [s.type for s in mld_sent(wire, since) if s.group == NEW_GROUP]
    assert types == [icmpv6.TYPE_MLD_REPORT, icmpv6.TYPE_MLDV1_REPORT]


def answers_to(a: Stack, wire: MemoryWire, query: bytes, wait: float = 2.0) -> set[int]:
    """The MLD message types A answers ``query`` with in ``wait`` seconds (past its Maximum Response Delay)."""
    since = deliver(a, wire, query)
    wire.run(duration=wait)
    return {s.type for s in mld_sent(wire, since)}


V1 = {icmpv6.TYPE_MLDV1_REPORT}
V2 = {icmpv6.TYPE_MLD_REPORT}


def test_v1_mode_ends_after_the_older_version_querier_present_timeout(pair6) -> None:
    a, _b, wire = pair6
    start = wire.clock.now
    assert answers_to(a, wire, v1_query()) == V1
    wire.run(duration=start + PRESENT_TIMEOUT - 3 - wire.clock.now)
    assert answers_to(a, wire, v2_query()) == V1  # a v2 query in v1 mode: answered in v1, not prolonging it
    wire.run(duration=start + PRESENT_TIMEOUT + 1 - wire.clock.now)
    assert not a.nd.mld.in_v1_mode(wire.clock.now) and a.counters["mld.v1_mode_left"] == 1
    assert answers_to(a, wire, v2_query()) == V2
    since = len(wire.log)
    a.add_address6(NEW, 64, wire.clock.now)
    wire.run(duration=3)
    assert {s.type for s in mld_sent(wire, since)} == V2


def test_each_v1_query_restarts_the_timeout(pair6) -> None:
    a, _b, wire = pair6
    answers_to(a, wire, v1_query())
    wire.run(duration=200)
    refreshed = wire.clock.now
    answers_to(a, wire, v1_query())
    wire.run(duration=refreshed + PRESENT_TIMEOUT - 3 - wire.clock.now)
    assert answers_to(a, wire, v2_query()) == V1


def test_the_timeout_follows_the_variables_of_the_last_v2_query(pair6) -> None:
    """RFC 3810 9.12 with the querier's Robustness 3, Query Interval 20 s and Query Response Interval
    5 s (9.1-9.3): 65 s."""
    a, _b, wire = pair6
    assert answers_to(a, wire, v2_query(max_response_delay=5000, robustness=3, query_interval=20), wait=6) == V2
    start = wire.clock.now
    answers_to(a, wire, v1_query())
    wire.run(duration=start + 63 - wire.clock.now)
    assert answers_to(a, wire, v2_query()) == V1
    wire.run(duration=start + 66 - wire.clock.now)
    assert answers_to(a, wire, v2_query()) == V2
