"""Hostile IPv6 input against a whole stack: floods of router advertisements and neighbour solicitations
stay within the tables' bounds, and random packets are dropped and counted, never raised; the stack
still answers a ping afterwards."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.config import StackConfig
from pystack.ip6.addresses import State
from pystack.ip6.config import IID_STABLE, Ipv6Config
from pystack.link.memory import FakeClock, MemoryWire
from pystack.stack import Stack
from pystack.wire import ethernet, icmpv6, ipv6
from pystack.wire.icmpv6 import PrefixInfo

from .stack_pair import A6, A_MAC, frame_to, usable

SMALL = Ipv6Config(max_addresses=6, max_default_routers=3, max_onlink_prefixes=4, max_dns_servers=2,
                   neighbour_cache_size=32, neighbour_pending_addresses=8)
PEER = ipv6.addr_to_int("2001:db8::a")


def _up(config: Ipv6Config = SMALL) -> tuple[Stack, MemoryWire]:
    clock = FakeClock()
    stack = Stack(A_MAC, StackConfig(ipv6=config), rng=random.Random(5))
    stack.start_ipv6(clock.now)
    stack.add_address6(A6, 64, clock.now)
    wire = MemoryWire(stack, clock=clock)
    wire.run(duration=5)
    return stack, wire


def _still_answers(stack: Stack, wire: MemoryWire) -> bool:
    request = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x5151_0001, b"still there?", PEER, A6)
    stack.nd.neighbours.learn(PEER, b"\x02\x00\x00\x00\x00\x0a", wire.clock.now)
    stack.receive_frame(frame_to(stack, ipv6.build(PEER, A6, ipv6.NH_ICMPV6, request)), wire.clock.now)
    return any(f[12:14] == b"\x86\xdd" and f[54] == icmpv6.TYPE_ECHO_REPLY for f in stack.frames_to_send())


def test_a_flood_of_advertisements_stays_within_every_bound() -> None:
    """1000 routers each advertising its own prefixes, DNS server and MTU: the router, prefix, DNS and
    address tables stop at their bounds (RFC 4861 6.3.4 lets a host bound them) and count the rest."""
    stack, wire = _up()
    rng = random.Random(9)
    for i in range(1000):
        router = ipv6.addr_to_int("fe80::") | rng.getrandbits(64)
        prefixes = b"".join(icmpv6.prefix_option(PrefixInfo(
            ipv6.addr_to_int("2001:db8::") | (i * 4 + j) << 64, 64, True, True, 3600, 1800)) for j in range(4))
        mac = b"\x02" + rng.randbytes(5)
        options = (icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, mac) + icmpv6.mtu_option(1280 + i % 200)
                   + icmpv6.rdnss_option(600, [router + 1]) + prefixes)
        ra = icmpv6.build_ra(router, options=options)
        stack.receive_frame(ethernet.build(ipv6.multicast_mac(ipv6.ALL_NODES), mac, ethernet.ETHERTYPE_IPV6,
                                           ipv6.build(router, ipv6.ALL_NODES, ipv6.NH_ICMPV6, ra, hop_limit=255)),
                            wire.clock.now)
        stack.frames_to_send()
    nd = stack.nd
    assert len(nd.routers.routers) == SMALL.max_default_routers
    assert len(nd.routers.prefixes) == SMALL.max_onlink_prefixes
    assert len(nd.routers.dns_servers) == SMALL.max_dns_servers
    assert len(stack.addresses6) == SMALL.max_addresses
    assert len(nd.neighbours) <= SMALL.neighbour_cache_size
    assert stack.counters["drop.ipv6.address_table_full"] > 0 and stack.counters["drop.ndisc.router_list_full"] > 0
    wire.run(duration=5)
    assert stack.counters["drop.internal_error"] == 0 and A6 in usable(stack)
    assert _still_answers(stack, wire)


def test_a_flood_of_solicitations_from_random_sources_stays_within_the_neighbour_cache() -> None:
    stack, wire = _up()
    rng = random.Random(4)
    answered = 0
    for _ in range(2000):
        src = ipv6.addr_to_int("2001:db8::") | rng.getrandbits(64)
        mac = b"\x02" + rng.randbytes(5)
        ns = icmpv6.build_ns(src, ipv6.solicited_node(A6), A6, source_lladdr=mac)
        stack.receive_frame(ethernet.build(ipv6.multicast_mac(ipv6.solicited_node(A6)), mac, ethernet.ETHERTYPE_IPV6,
                                           ipv6.build(src, ipv6.solicited_node(A6), ipv6.NH_ICMPV6, ns, hop_limit=255)),
                            wire.clock.now)
        answered += len(stack.frames_to_send())
    assert answered == 2000  # each one answered with an advertisement (RFC 4861 7.2.4)
    assert len(stack.nd.neighbours) == SMALL.neighbour_cache_size
    assert stack.counters["ndisc.entry_evicted"] >= 2000 - SMALL.neighbour_cache_size  # the least recently used
    assert _still_answers(stack, wire)


def test_solicitations_for_addresses_not_ours_are_dropped_and_counted() -> None:
    stack, wire = _up()
    rng = random.Random(6)
    for _ in range(500):
        target = ipv6.addr_to_int("2001:db8::") | rng.getrandbits(64)
        group = ipv6.solicited_node(A6)  # sent where we listen, for someone else
        ns = icmpv6.build_ns(PEER, group, target, source_lladdr=b"\x02\x00\x00\x00\x00\x0a")
        stack.receive_frame(frame_to(stack, ipv6.build(PEER, group, ipv6.NH_ICMPV6, ns, hop_limit=255)),
                            wire.clock.now)
    assert stack.counters["drop.ndisc.ns_not_for_us"] == 500 and stack.frames_to_send() == []


@pytest.fixture(scope="module")
def up() -> tuple[Stack, MemoryWire]:
    """One stack for every example: what a packet leaves behind must not break the next."""
    return _up(Ipv6Config())


@settings(max_examples=300, deadline=None)
@given(next_header=st.sampled_from([0, 6, 17, 43, 44, 58, 59, 60, 135, 255]), body=st.binary(max_size=200),
       hop_limit=st.sampled_from([1, 64, 255]), to_group=st.booleans())
def test_random_packets_are_dropped_or_answered_never_raised(up: tuple[Stack, MemoryWire], next_header: int,
                                                             body: bytes, hop_limit: int, to_group: bool) -> None:
    stack, wire = up
    dst = ipv6.ALL_NODES if to_group else A6
    stack.receive_frame(frame_to(stack, ipv6.build(PEER, dst, next_header, body, hop_limit=hop_limit)),
                        wire.clock.now)
    stack.frames_to_send()
    assert stack.counters["drop.internal_error"] == 0


def test_the_groups_joined_stay_within_the_address_bound() -> None:
    """Groups have no table of their own to bound: one solicited-node group per address DAD has not
    refused, and all-nodes (RFC 4862 5.4.2, RFC 3810 6), so max_addresses + 1 bounds them. Held there
    through advertisements of many prefixes, addresses another node claims during DAD, and addresses that
    expire and are replaced. Stable identifiers (RFC 7217), so that each address has a group of its own
    (EUI-64 ones all share the MAC's)."""
    stack, wire = _up(dataclasses.replace(SMALL, iid_mode=IID_STABLE, stable_secret=b"sixteen byte key"))
    rng = random.Random(8)
    router = ipv6.addr_to_int("fe80::1")
    seen_full = most = 0
    for round_ in range(12):
        prefixes = b"".join(icmpv6.prefix_option(PrefixInfo(
            ipv6.addr_to_int("2001:db8::") | (round_ * 8 + j + 1) << 64, 64, True, True, 30, 20)) for j in range(8))
        lladdr = icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, b"\x02\0\0\0\0\x01")
        ra = icmpv6.build_ra(router, options=lladdr + prefixes)
        stack.receive_frame(frame_to(stack, ipv6.build(router, ipv6.ALL_NODES, ipv6.NH_ICMPV6, ra, hop_limit=255)),
                            wire.clock.now)
        tentative = [a.address for a in stack.addresses6 if a.state is State.TENTATIVE]
        for address in rng.sample(tentative, len(tentative) // 2):  # another node has them: DAD refuses them
            na = icmpv6.build_na(PEER, ipv6.ALL_NODES, address, override=True, target_lladdr=b"\x02\0\0\0\0\x0a")
            stack.receive_frame(frame_to(stack, ipv6.build(PEER, ipv6.ALL_NODES, ipv6.NH_ICMPV6, na, hop_limit=255)),
                                wire.clock.now)
        groups = set(stack.nd.mld.groups)
        expected = {ipv6.ALL_NODES} | {ipv6.solicited_node(a.address) for a in stack.addresses6
                                       if a.state is not State.DUPLICATE}
        assert groups == expected and len(groups) <= SMALL.max_addresses + 1
        most = max(most, len(groups))
        assert {m for m in stack.multicast_macs if m[:2] == b"\x33\x33"} == {ipv6.multicast_mac(g) for g in groups}
        seen_full += len(stack.addresses6) == SMALL.max_addresses
        wire.run(duration=31)  # past the valid lifetime: the addresses go, and their groups
    assert seen_full >= 10 and most >= SMALL.max_addresses - 1 and stack.counters["drop.ipv6.address_table_full"] > 0
    assert stack.counters["ipv6.dad_duplicate"] > 0 and stack.counters["ipv6.address_expired"] > 0
    assert set(stack.nd.mld.groups) == {ipv6.ALL_NODES} | {ipv6.solicited_node(a) for a in usable(stack)}
    assert _still_answers(stack, wire)


@pytest.mark.parametrize("headers,answered", [(3, True), (4, False)])
def test_the_extension_header_bound_is_the_configs(headers: int, answered: bool) -> None:
    """Ipv6Config.max_extension_headers at its bound: a ping behind that many destination options headers
    is answered, one behind one more is dropped and counted (RFC 8504 5.3 lets a host bound them)."""
    stack, wire = _up(Ipv6Config(max_extension_headers=3))
    stack.nd.neighbours.learn(PEER, b"\x02\x00\x00\x00\x00\x0a", wire.clock.now)
    chain = b"".join(ipv6.options_header(ipv6.NH_DEST_OPTS if i < headers - 1 else ipv6.NH_ICMPV6)
                     for i in range(headers))
    echo = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x0303_0001, b"behind a chain", PEER, A6)
    stack.receive_frame(frame_to(stack, ipv6.build(PEER, A6, ipv6.NH_DEST_OPTS, chain + echo)), wire.clock.now)
    replies = [f for f in stack.frames_to_send() if f[12:14] == b"\x86\xdd" and f[54] == icmpv6.TYPE_ECHO_REPLY]
    assert bool(replies) is answered
    assert stack.counters["drop.ipv6.chain_too_long"] == (0 if answered else 1)


@pytest.mark.parametrize("options,answered", [(2, True), (3, False)])
def test_the_options_per_header_bound_is_the_configs(options: int, answered: bool) -> None:
    """Ipv6Config.max_options_per_header at its bound: options to skip (type 0x1E, RFC 8200 4.2) up to
    the bound are skipped and the ping answered; one more drops the packet, counted."""
    stack, wire = _up(Ipv6Config(max_options_per_header=2))
    stack.nd.neighbours.learn(PEER, b"\x02\x00\x00\x00\x00\x0a", wire.clock.now)
    header = ipv6.options_header(ipv6.NH_ICMPV6, [(0x1E, b"\xaa")] * options)
    echo = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x0202_0001, b"behind options", PEER, A6)
    stack.receive_frame(frame_to(stack, ipv6.build(PEER, A6, ipv6.NH_DEST_OPTS, header + echo)), wire.clock.now)
    replies = [f for f in stack.frames_to_send() if f[12:14] == b"\x86\xdd" and f[54] == icmpv6.TYPE_ECHO_REPLY]
    assert bool(replies) is answered
    assert stack.counters["drop.ipv6.too_many_options"] == (0 if answered else 1)


def test_nd_options_skipped_for_their_length_or_for_repeating_are_counted() -> None:
    """RFC 4861 4.6: the advertisement is used, its malformed options skipped -- and counted, as every bad
    input is: a link-layer address of 14 bytes, a second MTU option, an RDNSS option without a server."""
    stack, wire = _up()
    router = ipv6.addr_to_int("fe80::1")
    bad = (bytes((icmpv6.OPT_SOURCE_LLADDR, 2)) + bytes(14) + icmpv6.mtu_option(1400) + icmpv6.mtu_option(1300)
           + bytes((icmpv6.OPT_RDNSS, 1)) + bytes(6))
    prefix = icmpv6.prefix_option(PrefixInfo(ipv6.addr_to_int("2001:db8:5::"), 64, True, False, 3600, 1800))
    ra = icmpv6.build_ra(router, options=bad + prefix)
    stack.receive_frame(frame_to(stack, ipv6.build(router, ipv6.ALL_NODES, ipv6.NH_ICMPV6, ra, hop_limit=255)),
                        wire.clock.now)
    assert router in stack.nd.routers.routers and stack.nd.mtu == 1400  # the first MTU option, as Linux keeps
    assert stack.counters["drop.ndisc.invalid_option"] == 3
