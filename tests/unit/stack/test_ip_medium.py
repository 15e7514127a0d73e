"""Two stacks on the IP medium (what a TUN carries): bare IPv4 packets on the wire, no Ethernet header and
no ARP, and ping, UDP and TCP between them over the same IPv4 code as on Ethernet. dpkt is the oracle
that reads what they put on the wire."""

from __future__ import annotations

import random

import dpkt
import pytest

from pystack.config import StackConfig
from pystack.link.memory import FakeClock, MemoryWire
from pystack.medium import Medium
from pystack.stack import Stack
from pystack.wire import ethernet, icmp, ipv4
from pystack.wire import tcp as tcp_wire
from pystack.wire.gso import GsoFrame, segment

from .conftest import A_IP, A_MAC, B_IP, B_MAC, connected, exchange_and_close, make_pair, transfer

FAR_IP = ipv4.addr_to_int("198.51.100.7")


def make_ip_pair(seed: int = 0, **config: object) -> tuple[Stack, Stack, MemoryWire]:
    """A (192.0.2.2/24, gateway B) and B (192.0.2.1/24) on the IP medium."""
    clock = FakeClock()
    a = Stack(A_MAC, StackConfig(medium=Medium.IP, **config), rng=random.Random(seed))  # type: ignore[arg-type]
    b = Stack(B_MAC, StackConfig(medium=Medium.IP, **config), rng=random.Random(seed + 1))  # type: ignore[arg-type]
    a.configure(A_IP, 24, B_IP, clock.now)
    b.configure(B_IP, 24, None, clock.now)
    return a, b, MemoryWire(a, b, clock=clock)


def _ping(a: Stack, wire: MemoryWire, dst: int, size: int, seq: int = 1) -> list[tuple[int, int, bytes]]:
    replies: list[tuple[int, int, bytes]] = []
    a.echo_reply_handler = lambda src, rest, payload, now: replies.append((src, rest, payload))
    payload = bytes(i & 0xFF for i in range(size))
    a.send_ip(dst, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x4242_0000 | seq, payload), wire.clock.now)
    wire.run(until=lambda: bool(replies))
    return replies


def _packets(wire: MemoryWire) -> list[dpkt.ip.IP]:
    """Every packet on the wire as dpkt reads it: each one a whole IPv4 datagram, checksum right."""
    out = []
    for _t, _sender, packet in wire.log:
        ip = dpkt.ip.IP(packet)
        assert ip.v == 4 and ip.len == len(packet)
        assert dpkt.in_cksum(packet[:ip.hl * 4]) == 0
        out.append(ip)
    return out


@pytest.mark.parametrize("size", [0, 56, 1472, 4000])
def test_ping_on_the_ip_medium_is_bare_ipv4_without_arp(size: int) -> None:
    a, b, wire = make_ip_pair()
    assert _ping(a, wire, B_IP, size) == [(B_IP, 0x4242_0001, bytes(i & 0xFF for i in range(size)))]
    packets = _packets(wire)
    assert {p.p for p in packets} == {dpkt.ip.IP_PROTO_ICMP}
    assert max(len(p) for p in packets) <= a.config.mtu  # fragmented to the MTU, not past it
    for stack in (a, b):
        assert not [k for k in stack.counters if k.startswith("arp.")]
        assert stack.counters.total_drops() == 0 and not stack.arp.entries and not stack.arp.pending
    assert b.counters["icmp.echo_replies_sent"] == 1


def test_an_off_link_destination_goes_out_at_once_with_no_next_hop_to_resolve() -> None:
    a, _b, wire = make_ip_pair()
    a.send_ip(FAR_IP, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 1, b"x"), wire.clock.now)
    out = a.frames_to_send()
    assert len(out) == 1 and dpkt.ip.IP(out[0]).dst == FAR_IP.to_bytes(4, "big")


def test_without_a_gateway_an_off_link_destination_is_the_peers_to_route() -> None:
    """Point-to-point: what is not on-link goes to the peer all the same (Ethernet says ENETUNREACH)."""
    a, _b, wire = make_ip_pair()
    a.gateway = None
    endpoint = a.udp.bind(0, 5000)
    endpoint.sendto(b"far", (FAR_IP, 9), wire.clock.now)
    out = a.frames_to_send()
    assert len(out) == 1 and dpkt.ip.IP(out[0]).dst == FAR_IP.to_bytes(4, "big")
    ea, _eb, ewire = make_pair()
    ea.gateway = None
    with pytest.raises(OSError) as info:
        ea.udp.bind(0, 5000).sendto(b"far", (FAR_IP, 9), ewire.clock.now)
    assert info.value.errno == 101  # ENETUNREACH


def test_tcp_on_the_ip_medium_moves_bytes_both_ways_and_closes() -> None:
    a, b, wire = make_ip_pair()
    client, server = connected(a, b, wire)
    exchange_and_close(client, server, wire)
    segments = [p for p in _packets(wire) if p.p == dpkt.ip.IP_PROTO_TCP]
    assert len(segments) == len(wire.log) and max(len(p) for p in segments) == a.config.mtu
    # The checksum over the pseudo-header of each segment, as dpkt computes it, is right.
    for p in segments:
        sent = p.data.sum
        p.data.sum = 0
        p.sum = 0
        assert dpkt.ip.IP(bytes(p)).data.sum == sent
    assert a.counters.total_drops() == 0 and b.counters.total_drops() == 0


def test_segmentation_offload_on_the_ip_medium_sends_super_packets_cut_into_wire_packets() -> None:
    a, b, wire = make_ip_pair()
    b.enable_segmentation_offload()
    client, server = connected(a, b, wire)
    data = random.Random(2).randbytes(200_000)
    assert transfer(server, client, wire, data) == data
    supers = [p for _t, s, p in wire.log if s == 1 and type(p) is GsoFrame]
    assert supers and max(len(p) for p in supers) > b.config.mtu
    for packet in supers:
        assert dpkt.ip.IP(packet).len == len(packet)  # a bare IPv4 header leads it
        for piece in segment(packet, packet.gso_size, 0):
            ip = dpkt.ip.IP(piece)
            assert len(piece) == ip.len <= b.config.mtu and ip.df
            tcp_wire.parse(memoryview(piece)[ip.hl * 4:], int.from_bytes(ip.src, "big"),
                           int.from_bytes(ip.dst, "big"))  # its checksum verifies
    assert b.counters["gso_frames_out"] == len(supers) and a.counters.total_drops() == 0


def test_udp_on_the_ip_medium_and_port_unreachable() -> None:
    a, b, wire = make_ip_pair()
    server = b.udp.bind(B_IP, 5353)
    client = a.udp.bind(0, 5000)
    client.sendto(b"question", (B_IP, 5353), wire.clock.now)
    wire.run(duration=0.1)
    data, (src, port) = server.recvfrom()
    assert (data, src, port) == (b"question", A_IP, 5000)
    client.connect((B_IP, 5354))  # a connected socket hears of ICMP errors, as Linux's does
    client.sendto(b"nobody", None, wire.clock.now)
    wire.run(duration=0.1)
    with pytest.raises(OSError) as info:
        client.recvfrom()
    assert info.value.errno == 111  # ECONNREFUSED: B's ICMP port unreachable came back over the IP medium


def test_the_ip_medium_carries_the_ethernet_mediums_datagrams_without_their_frame_header() -> None:
    """The same ping from the same seeds: on Ethernet, after ARP, the datagrams are the IP medium's packets
    inside Ethernet headers (one IPv4 code path for both media)."""
    a, b, wire = make_ip_pair(seed=7)
    _ping(a, wire, B_IP, 2000)
    ea, eb, ewire = make_pair(seed=7)
    ewire.log.clear()
    _ping(ea, ewire, B_IP, 2000)
    framed = [f[14:] for _t, _s, f in ewire.log if f[12:14] == ethernet.ETHERTYPE_IPV4.to_bytes(2, "big")]
    assert framed == [p for _t, _s, p in wire.log]


@pytest.mark.parametrize("packet, reason", [
    (b"", "ip_link.empty"),
    (bytes([0x60]) + bytes(39), "ip_link.ipv6_unsupported"),
    (bytes([0x75]) + bytes(39), "ip_link.bad_version"),
    (bytes([0x45]) + bytes(9), "ipv4.truncated"),
    (ethernet.build(A_MAC, B_MAC, ethernet.ETHERTYPE_IPV4, bytes(46)), "ip_link.bad_version"),
])
def test_what_is_not_an_ipv4_packet_is_dropped_and_counted(packet: bytes, reason: str) -> None:
    a, _b, _wire = make_ip_pair()
    a.receive_frame(packet, 1000.0)
    assert a.counters.drops() == {reason: 1} and not a.frames_to_send()


def test_the_ethernet_medium_keeps_its_fast_ways_in_and_the_ip_medium_the_layered_one() -> None:
    ethernet_stack = Stack(A_MAC, StackConfig(fast_paths=True))
    ip_stack = Stack(A_MAC, StackConfig(fast_paths=True, medium=Medium.IP))
    assert ethernet_stack.receive_frame == ethernet_stack._receive_frame
    assert ethernet_stack.answer_echo == ethernet_stack._icmp.answer_echo
    assert ethernet_stack.tcp.segment_path is not None
    assert ip_stack.receive_frame == ip_stack._receive_packet
    assert ip_stack.tcp.segment_path is None
