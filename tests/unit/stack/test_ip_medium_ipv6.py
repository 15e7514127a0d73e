"""IPv6 on the IP medium (what a TUN carries), as Linux runs it on a TUN (point-to-point, IFF_NOARP): bare
IPv6 packets on the wire, no neighbour discovery and no DAD, a link-local address from a stable opaque
identifier (RFC 7217, no MAC to build an EUI-64 from), and ping, UDP and TCP between two stacks over the
same IPv6 code as on Ethernet. dpkt reads what they put on the wire."""

from __future__ import annotations

import random

import dpkt
import pytest

from pystack.config import StackConfig
from pystack.ip6.addresses import Origin, State, eui64_iid
from pystack.ip6.config import IID_STABLE, Ipv6Config
from pystack.link.memory import FakeClock, MemoryWire
from pystack.medium import Medium
from pystack.stack import Stack
from pystack.wire import icmpv6, ipv6
from pystack.wire import tcp as tcp_wire
from pystack.wire.gso import GsoFrame, segment

from .conftest import A_MAC, B_MAC, exchange_and_close, transfer

A6 = ipv6.addr_to_int("2001:db8::2")
B6 = ipv6.addr_to_int("2001:db8::1")
FAR6 = ipv6.addr_to_int("2001:db8:5::7")
LINK_LOCAL = ipv6.addr_to_int("fe80::")
PEERS_GROUPS = {"ipv6.group_not_joined": 2}
"""What each drops of the other's start: its two MLD reports (to ff02::16), which on a point-to-point link
reach the peer whatever their group (on Ethernet its MAC filter keeps them out)."""


def drops(stack: Stack) -> dict[str, int]:
    return {k: v for k, v in stack.counters.drops().items() if k not in PEERS_GROUPS}


def make_ip_pair6(seed: int = 0, **config: object) -> tuple[Stack, Stack, MemoryWire]:
    """A (2001:db8::2/64) and B (2001:db8::1/64) on the IP medium with IPv6 up, their addresses set."""
    clock = FakeClock()
    stacks = []
    for mac, address, offset in ((A_MAC, A6, 0), (B_MAC, B6, 1)):
        stack = Stack(mac, StackConfig(medium=Medium.IP, **config), rng=random.Random(seed + offset))  # type: ignore[arg-type]
        stack.start_ipv6(clock.now)
        stack.add_address6(address, 64, clock.now)
        stacks.append(stack)
    a, b = stacks
    return a, b, MemoryWire(a, b, clock=clock)


def link_local(stack: Stack) -> int:
    (entry,) = [e for e in stack.addresses6 if e.origin is Origin.LINK_LOCAL]
    return entry.address


def packets6(wire: MemoryWire) -> list[dpkt.ip6.IP6]:
    """Every packet on the wire as dpkt reads it: each a whole, bare IPv6 packet."""
    out = []
    for _t, _sender, packet in wire.log:
        assert packet[0] >> 4 == 6, bytes(packet[:4]).hex()
        ip = dpkt.ip6.IP6(bytes(packet))
        assert 40 + ip.plen == len(packet)
        out.append(ip)
    return out


def icmpv6_types(wire: MemoryWire) -> list[int]:
    types = []
    for _t, _sender, packet in wire.log:
        pkt = ipv6.parse(bytes(packet))
        chain = ipv6.walk(pkt)
        if chain.protocol == ipv6.NH_ICMPV6:
            types.append(pkt.datagram[chain.offset])
    return types


def ping6(a: Stack, wire: MemoryWire, dst: int, size: int) -> list[tuple[int, bytes]]:
    replies: list[tuple[int, bytes]] = []
    a.echo6_reply_handler = lambda src, rest, payload, now: replies.append((src, payload))
    src = a.source_for6(dst)
    assert src is not None
    payload = bytes(i & 0xFF for i in range(size))
    a.send_ip6(dst, ipv6.NH_ICMPV6, icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x4242_0001, payload, src, dst),
               wire.clock.now)
    wire.run(until=lambda: bool(replies), limit=5)
    return replies


def test_addresses_are_usable_at_once_with_no_dad_and_no_neighbour_discovery() -> None:
    """Linux skips DAD on an IFF_NOARP device (addrconf_dad_begin) and resolves no neighbour there."""
    a, b, wire = make_ip_pair6()
    for stack in (a, b):
        assert {e.state for e in stack.addresses6} == {State.PREFERRED}  # before any time passed
    wire.run(duration=5)
    types = icmpv6_types(wire)
    assert icmpv6.TYPE_NEIGHBOUR_SOLICITATION not in types and icmpv6.TYPE_NEIGHBOUR_ADVERTISEMENT not in types
    assert all(s.counters["ndisc.dad_probes_sent"] == 0 and not s.nd.neighbours.entries for s in (a, b))


def test_the_link_local_identifier_is_stable_and_opaque_not_from_a_mac() -> None:
    """RFC 7217 with a random secret, as Linux's IN6_ADDR_GEN_MODE_RANDOM for a TUN: not the EUI-64 of
    the MAC the stack was given; the same seed gives the same address, another seed another."""
    a, _b, _wire = make_ip_pair6(seed=0)
    again, _, _ = make_ip_pair6(seed=0)
    other, _, _ = make_ip_pair6(seed=5)
    assert link_local(a) >> 64 == LINK_LOCAL >> 64
    assert link_local(a) & (1 << 64) - 1 != eui64_iid(A_MAC)
    assert link_local(a) == link_local(again) != link_local(other)


def test_a_configured_stable_secret_gives_its_rfc_7217_identifier() -> None:
    config = Ipv6Config(iid_mode=IID_STABLE, stable_secret=bytes(range(16)))
    a, _b, _wire = make_ip_pair6(seed=0, ipv6=config)
    again, _, _ = make_ip_pair6(seed=9, ipv6=config)
    assert link_local(a) == link_local(again)


@pytest.mark.parametrize("size", [56, 1452, 4000])
def test_ping6_on_the_ip_medium_is_bare_ipv6(size: int) -> None:
    a, b, wire = make_ip_pair6()
    assert ping6(a, wire, B6, size) == [(B6, bytes(i & 0xFF for i in range(size)))]
    assert ping6(a, wire, link_local(b), size)[0][0] == link_local(b)
    assert max(len(p) for p in packets6(wire)) <= a.config.mtu  # fragmented to the MTU, not past it
    assert b.counters["icmpv6.echo_replies_sent"] == 2 and not drops(a) and not drops(b)


def test_router_solicitations_carry_no_link_layer_address() -> None:
    """RFC 4861 4.1: the option is there "on link layers that have addresses"; a TUN has none."""
    a, _b, wire = make_ip_pair6()
    wire.run(duration=10)
    solicitations = [p for p in packets6(wire) if p.nxt == 58 and p.data.type == icmpv6.TYPE_ROUTER_SOLICITATION]
    assert solicitations
    assert all(len(p.data) == 8 for p in solicitations)  # the header and reserved field, no option


def test_without_a_router_an_off_link_destination_is_the_peers_to_route() -> None:
    """Point-to-point: what no prefix or router claims goes to the peer (Ethernet says ENETUNREACH)."""
    a, _b, wire = make_ip_pair6()
    a.frames_to_send()  # its MLD reports
    a.udp6.bind(0, 5000).sendto(b"far", (FAR6, 9), wire.clock.now)
    (out,) = a.frames_to_send()
    assert dpkt.ip6.IP6(bytes(out)).dst == FAR6.to_bytes(16, "big")


def test_tcp_over_ipv6_on_the_ip_medium_moves_bytes_both_ways_and_closes() -> None:
    a, b, wire = make_ip_pair6()
    listener = b.tcp6.listen(0, 80, 8)
    client = a.tcp6.connect(A6, B6, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    server = listener.accept()
    exchange_and_close(client, server, wire)
    segments = [p for p in packets6(wire) if p.nxt == 6]
    assert max(len(p) for p in segments) == a.config.mtu
    assert not drops(a) and not drops(b)


def test_segmentation_offload_over_ipv6_on_the_ip_medium_sends_super_packets() -> None:
    a, b, wire = make_ip_pair6()
    b.enable_segmentation_offload()
    listener = b.tcp6.listen(0, 80, 8)
    client = a.tcp6.connect(A6, B6, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    server = listener.accept()
    data = random.Random(2).randbytes(200_000)
    assert transfer(server, client, wire, data) == data
    supers = [p for _t, s, p in wire.log if s == 1 and type(p) is GsoFrame]
    assert supers and max(len(p) for p in supers) > b.config.mtu
    for packet in supers:
        assert 40 + dpkt.ip6.IP6(bytes(packet)).plen == len(packet)  # a bare IPv6 header leads it
        for piece in segment(packet, packet.gso_size, 0):
            ip = dpkt.ip6.IP6(piece)
            assert len(piece) == 40 + ip.plen <= b.config.mtu
            tcp_wire.parse(memoryview(piece)[40:], int.from_bytes(ip.src, "big"),
                           int.from_bytes(ip.dst, "big"))  # its checksum over the IPv6 pseudo-header verifies
    assert b.counters["gso_frames_out"] == len(supers) and not drops(a)


def test_udp_over_ipv6_on_the_ip_medium_and_port_unreachable() -> None:
    a, b, wire = make_ip_pair6()
    server = b.udp6.bind(B6, 5353)
    client = a.udp6.bind(0, 5000)
    client.sendto(b"question", (B6, 5353), wire.clock.now)
    wire.run(duration=0.1)
    data, (src, port) = server.recvfrom()
    assert (data, src, port) == (b"question", A6, 5000)
    client.connect((B6, 5354))
    client.sendto(b"nobody", None, wire.clock.now)
    wire.run(duration=0.1)
    with pytest.raises(OSError) as info:
        client.recvfrom()
    assert info.value.errno == 111  # ECONNREFUSED: B's ICMPv6 port unreachable came back


def test_with_ipv6_off_an_ipv6_packet_is_dropped_and_counted() -> None:
    stack = Stack(A_MAC, StackConfig(medium=Medium.IP))
    stack.receive_frame(bytes([0x60]) + bytes(39), 1000.0)
    assert stack.counters.drops() == {"ip_link.ipv6_unsupported": 1}
