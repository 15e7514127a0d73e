"""TCP and UDP over IPv6 between two in-memory stacks: the same layers as over IPv4, one instance per
family, checksums over the IPv6 pseudo-header (judged by dpkt), an MSS of MTU - 60, port unreachable
as ECONNREFUSED, and the services on both families."""

from __future__ import annotations

import errno
import random

import dpkt
import pytest

from pystack.apps.stream_server import EchoSession, StreamServer
from pystack.apps.udp_echo import UdpEcho
from pystack.tcp.state import State
from pystack.wire import icmpv6, ipv6
from pystack.wire import tcp as tcp_wire

from stack.conftest import connected, exchange_and_close, transfer

from .stack_pair import A6, B6, B_MAC, frame_to, ipv6_packets, make_pair6


def _dpkt_checksum_verifies(packet: ipv6.Ipv6Packet) -> bool:
    """dpkt recomputes the upper layer's checksum over its own pseudo-header when the field is zero:
    pystack's must be the same number."""
    ip = dpkt.ip6.IP6(bytes(packet.datagram))
    upper = ip.data
    ours = upper.sum
    upper.sum = 0
    again = dpkt.ip6.IP6(bytes(ip))
    return again.data.sum == ours


def test_tcp_over_ipv6_moves_bytes_both_ways_and_closes() -> None:
    a, b, wire = make_pair6()
    client, server = connected(a, b, wire, ipv6=True)
    exchange_and_close(client, server, wire)
    tcp_packets = [p for p in ipv6_packets(wire) if p.next_header == ipv6.NH_TCP]
    assert len(tcp_packets) > 200 and all(_dpkt_checksum_verifies(p) for p in tcp_packets[:50])
    assert max(len(p.datagram) for p in tcp_packets) <= 1500
    for stack in (a, b):
        assert stack.counters["drop.internal_error"] == 0 and stack.counters["drop.tcp.bad_checksum"] == 0


def test_the_syn_announces_an_mss_of_mtu_minus_60() -> None:
    a, b, wire = make_pair6()
    start = len(wire.log)
    connected(a, b, wire, ipv6=True)
    syn = next(p for p in ipv6_packets(wire, start, sender=0) if p.next_header == ipv6.NH_TCP)
    assert tcp_wire.parse(syn.payload, syn.src, syn.dst).mss == 1500 - 60


def test_tcp_to_a_closed_port_over_ipv6_is_refused() -> None:
    a, _b, wire = make_pair6()
    client = a.tcp6.connect(A6, B6, 81, wire.clock.now)
    wire.run(until=lambda: client.error is not None)
    assert client.error == 111  # ECONNREFUSED, from the RST


def test_udp_echo_over_ipv6_and_its_checksums() -> None:
    a, b, wire = make_pair6()
    UdpEcho(b)
    endpoint = a.udp6.bind(0, 5000)
    start = len(wire.log)
    for size in (1, 1000, 3000):
        payload = random.Random(size).randbytes(size)
        endpoint.sendto(payload, (B6, 7), wire.clock.now)
        wire.run(until=lambda: bool(endpoint.queue))
        assert endpoint.recvfrom() == (payload, (B6, 7))
    udp = [p for p in ipv6_packets(wire, start) if p.next_header == ipv6.NH_UDP]
    assert len(udp) == 4 and all(_dpkt_checksum_verifies(p) for p in udp)  # 3000 bytes went in fragments
    assert b.counters["udp.echoed"] == 3


def test_udp_to_a_closed_port_over_ipv6_reports_connection_refused() -> None:
    """B answers with ICMPv6 port unreachable (RFC 4443 3.1, code 4); A's connected socket hears it as
    ECONNREFUSED, as the kernel's does."""
    a, b, wire = make_pair6()
    endpoint = a.udp6.bind(0, 5000)
    endpoint.connect((B6, 9))
    start = len(wire.log)
    endpoint.sendto(b"anyone?", None, wire.clock.now)
    wire.run(duration=1)
    errors = [p for p in ipv6_packets(wire, start, sender=1) if p.next_header == ipv6.NH_ICMPV6 and p.payload[0] < 128]
    assert [(p.payload[0], p.payload[1]) for p in errors] == [(icmpv6.TYPE_DEST_UNREACHABLE,
                                                                icmpv6.CODE_PORT_UNREACHABLE)]
    with pytest.raises(OSError) as info:
        endpoint.recvfrom()
    assert info.value.errno == 111


def test_udp_over_ipv6_carries_65527_bytes_and_refuses_one_more() -> None:
    """IPv6's Payload Length counts the UDP header and data, not the IPv6 header (RFC 8200 3): a datagram
    of 65535 - 8 bytes goes, in fragments, and comes back whole from the echo; one byte more is EMSGSIZE,
    as the kernel's sendto says."""
    a, b, wire = make_pair6()
    UdpEcho(b)
    endpoint = a.udp6.bind(0, 5000)
    payload = random.Random(4).randbytes(65527)
    assert endpoint.sendto(payload, (B6, 7), wire.clock.now) == 65527
    wire.run(until=lambda: bool(endpoint.queue))
    assert endpoint.recvfrom() == (payload, (B6, 7))
    with pytest.raises(OSError) as info:
        endpoint.sendto(payload + b"x", (B6, 7), wire.clock.now)
    assert info.value.errno == errno.EMSGSIZE
    with pytest.raises(OSError) as info:  # IPv4's limit is its own: 65,507 (the IPv4 header counts)
        a.udp.bind(0, 5000).sendto(payload[:65508], (0xC0000201, 7), wire.clock.now)
    assert info.value.errno == errno.EMSGSIZE


def test_the_echo_service_listens_on_both_families() -> None:
    a, b, wire = make_pair6()
    StreamServer(b, 7, EchoSession)
    client = a.tcp6.connect(A6, B6, 7, wire.clock.now)
    wire.run(until=lambda: client.state == State.ESTABLISHED)
    client.send(b"over ipv6", wire.clock.now)
    wire.run(until=lambda: client.recv_available >= 9)
    assert client.recv(100, wire.clock.now) == b"over ipv6"


def test_packet_too_big_shrinks_tcp_segments_to_the_path_mtu() -> None:
    """RFC 8201 with TCP: the quoted segment's connection sends no segment larger than the path allows."""
    a, b, wire = make_pair6()
    client, server = connected(a, b, wire, ipv6=True)
    data = random.Random(3).randbytes(50_000)
    assert transfer(client, server, wire, data) == data
    segment = next(p for p in ipv6_packets(wire, sender=0) if p.next_header == ipv6.NH_TCP and len(p.datagram) == 1500)
    message = icmpv6.build_error(icmpv6.TYPE_PACKET_TOO_BIG, 0, 1280, segment.datagram, B6, A6)
    a.receive_frame(frame_to(a, ipv6.build(B6, A6, ipv6.NH_ICMPV6, message), B_MAC), wire.clock.now)
    start = len(wire.log)
    assert transfer(client, server, wire, data) == data
    assert max(len(p.datagram) for p in ipv6_packets(wire, start, sender=0)) <= 1280
    assert a.counters["ipv6.path_mtu_lowered"] == 1
