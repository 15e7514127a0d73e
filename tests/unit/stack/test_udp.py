"""UDP between two in-memory stacks: delivery, port unreachable, ICMP errors to connected sockets."""

from __future__ import annotations

import errno

import dpkt
import pytest

from pystack.apps.udp_echo import UdpEcho
from pystack.config import StackConfig
from pystack.wire import ipv4

from .conftest import A_IP, B_IP, make_pair


def test_datagram_is_delivered_with_its_source(pair):
    a, b, wire = pair
    server = b.udp.bind(0, 4000)
    client = a.udp.bind(0, 0)
    client.sendto(b"hello", (B_IP, 4000), wire.clock.now)
    wire.run()
    assert server.recvfrom() == (b"hello", (A_IP, client.port))


def test_large_datagram_fragments_and_arrives_whole(pair):
    a, b, wire = pair
    server = b.udp.bind(0, 4000)
    data = bytes(range(256)) * 255 + b"xyz"  # 65283 bytes
    a.udp.bind(0, 0).sendto(data, (B_IP, 4000), wire.clock.now)
    wire.run()
    assert server.recvfrom()[0] == data


def test_closed_port_answers_port_unreachable_and_connected_socket_sees_econnrefused(pair):
    a, b, wire = pair
    client = a.udp.bind(0, 0)
    client.connect((B_IP, 9999))
    client.sendto(b"anyone?", None, wire.clock.now)
    wire.run()
    assert b.counters["icmp.errors_sent"] == 1
    with pytest.raises(OSError) as info:
        client.recvfrom()
    assert info.value.errno == errno.ECONNREFUSED
    assert client.recvfrom() is None  # reported once, like SO_ERROR


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "last-first"])
def test_a_fragmented_datagram_to_a_closed_port_is_answered_port_unreachable(reverse):
    """The reassembled datagram, not the fragment that completed it, is what the error is about (Linux's
    ip_frag_reasm: offset 0, the whole length): RFC 1122 3.2.2 forbids an error about a non-first
    fragment, so judging the last fragment answered nothing. The quote shows the whole datagram."""
    a, b, wire = make_pair()
    held: list[bytes] = []

    def last_first(sender: int, frame: bytes) -> list[bytes]:
        """Hold A's three fragments and hand them on in reverse order."""
        if sender != 0 or frame[12:14] != b"\x08\x00" or not int.from_bytes(frame[20:22], "big") & 0x3FFF:
            return [frame]
        held.append(frame)
        return held[::-1] if len(held) == 3 else []

    wire.fault = last_first if reverse else None
    client = a.udp.bind(0, 0)
    client.connect((B_IP, 9999))
    client.sendto(bytes(3000), None, wire.clock.now)  # three fragments at MTU 1500
    wire.run()
    assert len(held) == (3 if reverse else 0)
    assert b.counters["ipv4.reassembled"] == 1
    assert b.counters["icmp.errors_sent"] == 1
    with pytest.raises(OSError) as info:
        client.recvfrom()
    assert info.value.errno == errno.ECONNREFUSED
    [error] = [dpkt.ethernet.Ethernet(f).data for _t, i, f in wire.log
               if f[12:14] == b"\x08\x00" and f[23] == ipv4.PROTO_ICMP]
    quoted = dpkt.ip.IP(bytes(error.data.unreach)[4:32] + bytes(520))
    assert (quoted.len, quoted.offset, quoted.mf) == (20 + 8 + 3000, 0, 0)


@pytest.mark.parametrize("size", [7, 1000])
def test_port_unreachable_quotes_up_to_548_bytes_of_the_datagram(pair, size):
    """RFC 1812 4.3.2.3, as Linux's __icmp_send: the error is held to 576 bytes, its quote filling the rest."""
    a, b, wire = pair
    payload = bytes(range(256)) * 12
    client = a.udp.bind(0, 0)
    client.sendto(payload[:size], (B_IP, 9999), wire.clock.now)
    wire.run()
    [error] = [dpkt.ethernet.Ethernet(f).data for _t, i, f in wire.log
               if f[12:14] == b"\x08\x00" and f[23] == ipv4.PROTO_ICMP]
    assert error.len == min(20 + 8 + 28 + size, 576)
    quoted = bytes(error.data.unreach)[4:]  # after the unused word
    assert len(quoted) == min(28 + size, 548)
    assert quoted[28:] == payload[:size][:520]
    assert int.from_bytes(quoted[2:4], "big") == 28 + size  # the quoted header's total length, untouched


def test_unconnected_socket_does_not_hear_icmp_errors(pair):
    a, b, wire = pair
    client = a.udp.bind(0, 0)
    client.sendto(b"anyone?", (B_IP, 9999), wire.clock.now)
    wire.run()
    assert client.recvfrom() is None


LINUX = [
    ((3, 0), errno.ENETUNREACH, False),  # net unreachable
    ((3, 1), errno.EHOSTUNREACH, False),  # host unreachable (also what ARP giving up says)
    ((3, 2), errno.ENOPROTOOPT, True),  # protocol unreachable
    ((3, 3), errno.ECONNREFUSED, True),  # port unreachable
    ((3, 4), errno.EMSGSIZE, True),  # fragmentation needed: hard while DF is set (IP_PMTUDISC_WANT)
    ((3, 9), errno.ENETUNREACH, True),  # network administratively prohibited
    ((3, 10), errno.EHOSTUNREACH, True),  # host administratively prohibited
    ((3, 13), errno.EHOSTUNREACH, True),  # communication administratively prohibited
    ((3, 16), errno.EHOSTUNREACH, False),  # past Linux's table
    ((11, 0), errno.EHOSTUNREACH, False),  # time exceeded
    ((12, 0), errno.EPROTO, True),  # parameter problem
]
"""(type, code), the errno, and whether Linux's connected UDP socket without IP_RECVERR hears it
(__udp4_lib_err; nftables rejects on a kernel showed codes 0-3, 9, 10 and 13 so,
tests/integration/test_udp_icmp_errors.py)."""


@pytest.mark.parametrize("recverr", [True, False], ids=["recverr", "plain"])
@pytest.mark.parametrize("type_code, expected, fatal", LINUX, ids=[f"{t}/{c}" for (t, c), _e, _f in LINUX])
def test_a_connected_socket_hears_the_icmp_errors_linux_lets_through(pair, type_code, expected, fatal, recverr):
    a, _b, wire = pair
    client = a.udp.bind(0, 5000)
    client.recverr = recverr
    client.connect((B_IP, 9))
    quoted = (5000).to_bytes(2, "big") + (9).to_bytes(2, "big") + bytes(4)  # the UDP header it is about
    a.udp.icmp_error(*type_code, A_IP, B_IP, quoted, wire.clock.now)
    if not (fatal or recverr):
        assert client.recvfrom() is None
        return
    with pytest.raises(OSError) as info:
        client.recvfrom()
    assert info.value.errno == expected


def test_icmp_errors_are_rate_limited_per_destination(pair):
    a, b, wire = pair
    client = a.udp.bind(0, 0)
    for _ in range(20):
        client.sendto(b"x", (B_IP, 9999), wire.clock.now)
    wire.run()
    assert b.counters["icmp.errors_sent"] == b.config.icmp_ratelimit_burst
    assert b.counters["icmp.errors_ratelimited"] == 20 - b.config.icmp_ratelimit_burst


def test_echo_service_returns_each_datagram(pair):
    a, b, wire = pair
    UdpEcho(b)
    client = a.udp.bind(0, 0)
    for i in range(5):
        client.sendto(b"ping %d" % i, (B_IP, 7), wire.clock.now)
    wire.run()
    got = []
    while (d := client.recvfrom()) is not None:
        got.append(d)
    assert got == [(b"ping %d" % i, (B_IP, 7)) for i in range(5)]


def test_receive_queue_is_bounded():
    a, b, wire = make_pair(StackConfig(udp_recv_queue=3))
    server = b.udp.bind(0, 4000)
    client = a.udp.bind(0, 0)
    for i in range(5):
        client.sendto(b"%d" % i, (B_IP, 4000), wire.clock.now)
    wire.run()
    assert len(server.queue) == 3
    assert b.counters["drop.udp.receive_queue_full"] == 2


def test_port_in_use_is_refused(pair):
    a, _b, _wire = pair
    a.udp.bind(0, 4000)
    with pytest.raises(OSError) as info:
        a.udp.bind(0, 4000)
    assert info.value.errno == errno.EADDRINUSE


def test_oversized_datagram_is_emsgsize(pair):
    a, _b, wire = pair
    with pytest.raises(OSError) as info:
        a.udp.bind(0, 0).sendto(b"x" * 65508, (B_IP, 9), wire.clock.now)
    assert info.value.errno == errno.EMSGSIZE


def test_loopback_to_own_address(pair):
    a, _b, wire = pair
    server = a.udp.bind(0, 4000)
    a.udp.bind(0, 0).sendto(b"self", (A_IP, 4000), wire.clock.now)
    assert server.recvfrom()[0] == b"self"
    assert a.frames_to_send() == []


def test_no_route_without_gateway(pair):
    _a, b, wire = pair
    with pytest.raises(OSError) as info:
        b.udp.bind(0, 0).sendto(b"x", (ipv4.addr_to_int("198.51.100.1"), 9), wire.clock.now)
    assert info.value.errno == errno.ENETUNREACH
