"""The fast paths change nothing but speed: twins made from the same seed, one with
``StackConfig.fast_paths`` on and one with it off, put out the same frames and count the same, frame by
frame over one corpus of mutated frames, and over whole transfers on a lossy wire.

The corpus starts from one frame of each kind a fast path takes or turns away (an echo request, a SYN,
a data segment and a pure ACK of an established connection, UDP, a fragment, ARP), flips bytes in it,
cuts it anywhere and makes its checksums valid again or not.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.apps.udp_echo import UdpEcho
from pystack.config import StackConfig
from pystack.iface.ethernet import EthernetLink
from pystack.iface.icmp import Icmpv4
from pystack.iface.icmpv6 import Icmpv6
from pystack.iface.ipv6 import Ipv6
from pystack.iface.tcp import TcpGlue
from pystack.iface.tcp6 import Tcp6Glue
from pystack.ip.tcp_path import TcpPath, TcpPath6
from pystack.stack import Stack
from pystack.tcp.config import TcpConfig
from pystack.tcp.connection import Connection
from pystack.wire import arp, ethernet, icmp, icmpv6, ipv4, ipv6

from ip6.stack_pair import A6, A_LL, B6, B_LL, make_pair6

from .conftest import A_IP, A_MAC, B_IP, B_MAC, C_IP, make_pair
from .twins import calls, mutated, outcome, twin_configs

_TCP = dataclasses.replace(TcpConfig(), isn_secret=b"k" * 16)


def _scenario(config: StackConfig):
    """(a, b, wire): B serves UDP echo on 7 and TCP on 80; A's connection to B has moved data both ways."""
    a, b, wire = make_pair(dataclasses.replace(config, tcp=_TCP))
    client = _serve_and_exchange(b, wire, b.tcp, a.tcp.connect(A_IP, B_IP, 80, wire.clock.now, local_port=40000))
    wire.run(duration=1.0)
    return a, b, wire, client


def _serve_and_exchange(b: Stack, wire, tcp_b, client: Connection) -> Connection:
    """B serves UDP echo on 7 and TCP on 80 (``tcp_b``, either family); ``client``, A's connection to it,
    moves data both ways and reads what came."""
    UdpEcho(b)
    listener = tcp_b.listen(0, 80, 8)
    wire.run(until=lambda: listener.readable)
    server = listener.accept()
    client.send(bytes(range(256)) * 20, wire.clock.now)
    server.send(b"reply" * 300, wire.clock.now)
    wire.run(duration=1.0)
    server.recv(1 << 20, wire.clock.now)
    client.recv(1 << 20, wire.clock.now)
    return client


def _corpus(a: Stack, client: Connection, now: float) -> dict[str, bytes]:
    """One frame of each kind, as A sends them (taken from A's queue: B has not seen them)."""
    def sent(action) -> bytes:
        action()
        return a.frames_to_send()[0]

    udp = a.udp.bind(0, 5000)
    data = sent(lambda: client.send(b"more data", now))
    return {
        "echo request": sent(lambda: a.send_ip(B_IP, ipv4.PROTO_ICMP,
                                               icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x77770001, bytes(40)), now)),
        "syn": sent(lambda: a.tcp.connect(A_IP, B_IP, 80, now, local_port=40001)),
        "data segment": data,
        "pure ack": _pure_ack(data, 4),
        "udp": sent(lambda: udp.sendto(b"echo me", (B_IP, 7), now)),
        "first fragment": sent(lambda: udp.sendto(bytes(2000), (B_IP, 7), now)),
        "arp request": ethernet.build(ethernet.BROADCAST, A_MAC, ethernet.ETHERTYPE_ARP,
                                      arp.build(arp.OP_REQUEST, A_MAC, A_IP, bytes(6), B_IP)),
    }


def _pure_ack(data_segment: bytes, version: int) -> bytes:
    """The segment (IP ``version`` 4 or 6, with no options or extension headers) without its payload and PSH:
    what A's ACK of new data looks like. IPv4's Total Length counts its own header; IPv6's Payload Length
    counts only what follows the fixed header."""
    tcp_at, length_at = (34, 16) if version == 4 else (54, 18)
    header_end = tcp_at + (data_segment[tcp_at + 12] >> 4) * 4
    frame = bytearray(data_segment[:header_end])
    frame[length_at:length_at + 2] = (header_end - (14 if version == 4 else tcp_at)).to_bytes(2, "big")
    frame[tcp_at + 13] &= ~0x08
    return mutated(bytes(frame), [], len(frame), refix=True)


def _twins(version: int):
    """The fast and the layered B after the same scenario over IP ``version``, the corpus, and the time."""
    scenario, corpus_of = (_scenario, _corpus) if version == 4 else (_scenario6, _corpus6)
    fast, layered = twin_configs()
    a, fast_b, wire, client = scenario(fast)
    a2, layered_b, wire2, client2 = scenario(layered)
    assert [f for _t, _s, f in wire.log] == [f for _t, _s, f in wire2.log]
    corpus = corpus_of(a, client, wire.clock.now)
    assert corpus == corpus_of(a2, client2, wire2.clock.now)
    return fast_b, layered_b, corpus, wire.clock.now


KINDS = ["echo request", "syn", "data segment", "pure ack", "udp", "first fragment", "arp request"]


def _address_at(offset: int, address: int) -> list[tuple[int, int]]:
    return [(offset + i, b) for i, b in enumerate(address.to_bytes(4, "big"))]


# Changes where the fast paths decide, each tried alone on every frame: MACs, EtherType, version and header
# length, lengths, flags and fragment offset, protocol, ICMP type and code, and addresses that are martian,
# broadcast or not ours (IPv4 source and destination at 26 and 30; ARP's sender and target IP at 28 and 38).
FIELD_CHANGES = (
    [[(0, 0xFF)], [(0, 0x01)], [(5, 0x99)], [(6, 0x01)], [(6, 0xFF)], [(12, 0x86), (13, 0xDD)], [(13, 0x06)],
     [(14, 0x44)], [(14, 0x46)], [(14, 0x55)], [(16, 0x00), (17, 0x13)], [(17, 0xFF)], [(16, 0xFF)],
     [(20, 0x80)], [(20, 0x20)], [(20, 0x40)], [(20, 0x00)], [(21, 0x01)], [(23, 0x01)], [(23, 0x06)],
     [(23, 0x11)], [(23, 0x02)], [(34, 0x00)], [(34, 0x03)], [(35, 0x01)]]
    + [_address_at(offset, address) for offset in (26, 30, 28, 38)
       for address in (0x7F000001, 0xE0000001, 0xEFFFFFFF, 0xFFFFFFFF, 0, 0xC00002FF, A_IP, B_IP, C_IP)])
_BYTE = st.integers(0, 255)


@pytest.fixture(scope="module")
def twins():
    return _twins(4)


def test_every_frame_of_the_corpus_gets_the_same_answer_either_way(twins):
    fast_b, layered_b, corpus, now = twins
    assert sorted(corpus) == sorted(KINDS)
    with calls(Icmpv4.answer_echo, TcpGlue.receive_direct, EthernetLink.receive) as seen:
        for frame in corpus.values():
            assert outcome(fast_b, frame, now) == outcome(layered_b, frame, now)
    # The fast twin answered the echo and took the SYN, the segment and the ACK directly; the layered twin
    # received every frame the layered way.
    assert seen["TcpGlue.receive_direct"] == 3 and seen["EthernetLink.receive"] == 2 * len(corpus) - 4


def _same_answer_to_each_change(twins, kind: str, field_changes: list) -> None:
    """Every change of ``field_changes`` in the frame ``kind`` of the corpus, with the checksums refixed or
    not, gets the same answer from both twins."""
    fast_b, layered_b, corpus, now = twins
    base = corpus[kind]
    for change in field_changes:
        for refix in (True, False):
            frame = mutated(base, [c for c in change if c[0] < len(base)], len(base), refix)
            assert outcome(fast_b, frame, now) == outcome(layered_b, frame, now), (change, refix)
    assert fast_b.counters == layered_b.counters and fast_b.counters["drop.internal_error"] == 0


def _same_answer_to_mutations(twins, kind: str, field_changes: list, header_bytes: int) -> None:
    """Up to three changes at once in the frame ``kind`` (of ``field_changes``, of a byte among the first
    ``header_bytes`` or of any byte), and cuts anywhere, get the same answer from both twins."""
    fast_b, layered_b, corpus, now = twins
    base = corpus[kind]

    header_byte = st.tuples(st.integers(0, header_bytes - 1), _BYTE).map(lambda change: [change])
    any_byte = st.tuples(st.integers(0, len(base) - 1), _BYTE).map(lambda change: [change])
    changes = st.lists(st.one_of(st.sampled_from(field_changes), header_byte, any_byte), min_size=1, max_size=3)

    @given(changes.map(lambda changes: [c for change in changes for c in change if c[0] < len(base)]),
           st.one_of(st.just(len(base)), st.integers(0, len(base))), st.booleans())
    @settings(max_examples=300, deadline=None, database=None)
    def check(changes, cut, refix):
        frame = mutated(base, changes, cut, refix)
        assert outcome(fast_b, frame, now) == outcome(layered_b, frame, now)
        assert fast_b.counters["drop.internal_error"] == 0

    check()
    assert fast_b.counters == layered_b.counters


@pytest.mark.parametrize("kind", KINDS)
def test_each_field_change_gets_the_same_answer_either_way(twins, kind):
    """Every change of FIELD_CHANGES in every frame of the corpus, with the IPv4 checksum refixed or not."""
    _same_answer_to_each_change(twins, kind, FIELD_CHANGES)


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_frames_get_the_same_answer_either_way(twins, kind):
    """Up to three changes at once, of fields or of any of the first 64 bytes or of any byte, and cuts anywhere."""
    _same_answer_to_mutations(twins, kind, FIELD_CHANGES, 64)


def _transfer(config: StackConfig, loss: float, seed: int, version: int) -> tuple[list[bytes], dict, dict]:
    """100 kB each way in turn, then both ways at once, over IP ``version`` on a wire that loses frames (never
    one shorter than ``keep_below``: the pure ACKs): every frame on the wire, and both stacks' counters."""
    drops = random.Random(seed)
    keep_below = 100 if version == 4 else 120
    # A 16 KiB receive buffer: the window, not cwnd, paces the sender, so window updates matter.
    config = dataclasses.replace(config, tcp=dataclasses.replace(_TCP, recv_buffer=16 * 1024))
    make, (a_ip, b_ip) = (make_pair, (A_IP, B_IP)) if version == 4 else (make_pair6, (A6, B6))
    a, b, wire = make(config, seed=seed, latency=0.001,
                      fault=lambda _i, frame: [] if drops.random() < loss and len(frame) > keep_below else [frame])
    tcp_a, tcp_b = (a.tcp, b.tcp) if version == 4 else (a.tcp6, b.tcp6)
    listener = tcp_b.listen(0, 80, 4)
    client = tcp_a.connect(a_ip, b_ip, 80, wire.clock.now, local_port=40000)
    wire.run(until=lambda: listener.pending > 0)
    server = listener.accept()
    _exchange(wire, client, server)
    return [frame for _t, _i, frame in wire.log], dict(a.counters), dict(b.counters)


def _exchange(wire, client: Connection, server: Connection) -> None:
    """100 kB from client to server, then back, then both ways at once, read by a slow reader."""
    data = bytes(i * 31 & 0xFF for i in range(100_000))
    # One way, the other way, then both at once (segments that carry data and acknowledge data).
    for senders in ((client,), (server,), (client, server)):
        got = {client: bytearray(), server: bytearray()}
        sent = {client: 0, server: 0}
        for _ in range(20_000):
            for conn in (client, server):
                if conn in senders and sent[conn] < len(data) and conn.send_space:
                    sent[conn] += conn.send(data[sent[conn]:sent[conn] + 30_000], wire.clock.now)
                if conn.recv_available:
                    got[conn] += conn.recv(1 << 13, wire.clock.now)  # a slow reader: the windows move
            peers = [client if conn is server else server for conn in senders]
            if all(len(got[peer]) == len(data) for peer in peers):
                break
            wire.run(duration=0.002)
        for conn in senders:
            assert got[server if conn is client else client] == data


@pytest.mark.parametrize("loss, seed", [(0.0, 1), (0.02, 2), (0.05, 3)])
def test_transfers_put_the_same_frames_on_the_wire_either_way(loss: float, seed: int) -> None:
    """Header prediction, the direct receive path and the one-pack send path (TcpPath) take most segments
    of a transfer with the switch on, none with it off, and the wire cannot tell."""
    fast, layered = twin_configs()
    watched = (Connection._input_predicted, TcpGlue.receive_direct, TcpPath.send)
    with calls(*watched) as fast_calls:
        fast_run = _transfer(fast, loss, seed, 4)
    with calls(*watched) as layered_calls:
        layered_run = _transfer(layered, loss, seed, 4)
    assert fast_run == layered_run
    assert not layered_calls
    segments = 3 * 100_000 // 1448
    assert fast_calls["Connection._input_predicted"] > segments
    assert fast_calls["TcpGlue.receive_direct"] > segments and fast_calls["TcpPath.send"] > segments


# --- IPv6: the echo fast path, the direct receive path and the one-pack path over IPv6 -------------------------

C6 = ipv6.addr_to_int("2001:db8::3")


def _scenario6(config: StackConfig):
    """(a, b, wire, client) over IPv6: B serves UDP echo on 7 and TCP on 80; A's connection to B has moved
    data both ways."""
    a, b, wire = make_pair6(dataclasses.replace(config, tcp=_TCP))
    client = _serve_and_exchange(b, wire, b.tcp6, a.tcp6.connect(A6, B6, 80, wire.clock.now, local_port=40000))
    # A ping between the link-local addresses: each side resolves the other's (neighbour discovery).
    a.send_ip6(B_LL, ipv6.NH_ICMPV6, icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 1, b"", A_LL, B_LL), wire.clock.now)
    wire.run(duration=1.0)
    return a, b, wire, client


def _corpus6(a: Stack, client: Connection, now: float) -> dict[str, bytes]:
    """One IPv6 frame of each kind, as A sends them (taken from A's queue: B has not seen them)."""
    def sent(action) -> bytes:
        action()
        return a.frames_to_send()[0]

    def echo(src: int, dst: int) -> bytes:
        return sent(lambda: a.send_ip6(dst, ipv6.NH_ICMPV6, icmpv6.build(
            icmpv6.TYPE_ECHO_REQUEST, 0, 0x77770001, bytes(range(41)), src, dst), now, src=src))

    udp = a.udp6.bind(0, 5000)
    data = sent(lambda: client.send(b"more data", now))
    return {
        "echo request": echo(A6, B6),
        "echo to the link-local address": echo(A_LL, B_LL),
        "echo to all nodes": echo(A6, ipv6.ALL_NODES),
        "syn": sent(lambda: a.tcp6.connect(A6, B6, 80, now, local_port=40001)),
        "data segment": data,
        "pure ack": _pure_ack(data, 6),
        "udp": sent(lambda: udp.sendto(b"echo me", (B6, 7), now)),
        "first fragment": sent(lambda: udp.sendto(bytes(2000), (B6, 7), now)),
        "neighbour solicitation": ethernet.build(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV6, ipv6.build(
            A6, B6, ipv6.NH_ICMPV6, icmpv6.build_ns(A6, B6, B6, source_lladdr=A_MAC), hop_limit=255)),
    }


KINDS6 = ["echo request", "echo to the link-local address", "echo to all nodes", "syn", "data segment", "pure ack",
          "udp", "first fragment", "neighbour solicitation"]


def _address6_at(offset: int, address: int) -> list[tuple[int, int]]:
    return [(offset + i, b) for i, b in enumerate(address.to_bytes(16, "big"))]


# Changes where the IPv6 fast paths decide, each tried alone on every frame: MACs, EtherType, version and
# traffic class, Payload Length, Next Header (extension headers among them), hop limit, ICMPv6 type and code,
# and sources and destinations that are multicast, unspecified, loopback, ours, another host's or a group's.
FIELD_CHANGES6 = (
    [[(0, 0xFF)], [(0, 0x33)], [(5, 0x99)], [(6, 0x01)], [(12, 0x08), (13, 0x00)], [(14, 0x40)], [(14, 0x70)],
     [(14, 0x6F)], [(15, 0xF0)], [(18, 0x00), (19, 0x00)], [(18, 0xFF)], [(19, 0x07)], [(19, 0x00)],
     [(20, 0x00)], [(20, 0x2C)], [(20, 0x3A)], [(20, 0x06)], [(20, 0x11)], [(20, 0x3B)], [(20, 0x2B)],
     [(21, 0x00)], [(21, 0xFF)], [(54, 0x81)], [(54, 0x87)], [(54, 0x01)], [(54, 0xC8)], [(55, 0x01)]]
    + [_address6_at(offset, address) for offset in (22, 38)
       for address in (ipv6.ALL_NODES, 0xFF01 << 112 | 1, ipv6.solicited_node(B6), 0, 1, A6, B6, C6, A_LL, B_LL)])


@pytest.fixture(scope="module")
def twins6():
    return _twins(6)


def test_every_ipv6_frame_of_the_corpus_gets_the_same_answer_either_way(twins6):
    fast_b, layered_b, corpus, now = twins6
    assert sorted(corpus) == sorted(KINDS6)
    with calls(Icmpv6.answer_echo_packet, Tcp6Glue.receive_direct, Ipv6.receive) as seen:
        for _ in range(2):  # the second round finds the neighbour entries the first one moved
            for frame in corpus.values():
                assert outcome(fast_b, frame, now) == outcome(layered_b, frame, now)
    assert fast_b.counters == layered_b.counters and fast_b.counters["drop.internal_error"] == 0
    # The fast twin answered the two unicast echoes and took the SYN, the segment and the ACK directly, in
    # both rounds; the layered twin received every frame the layered way.
    assert seen["Tcp6Glue.receive_direct"] == 2 * 3
    assert seen["Ipv6.receive"] == 2 * len(corpus) + 2 * (len(corpus) - 5)


@pytest.mark.parametrize("kind", KINDS6)
def test_each_ipv6_field_change_gets_the_same_answer_either_way(twins6, kind):
    """Every change of FIELD_CHANGES6 in every IPv6 frame of the corpus, with the checksum refixed or not."""
    _same_answer_to_each_change(twins6, kind, FIELD_CHANGES6)


@pytest.mark.parametrize("kind", KINDS6)
def test_mutated_ipv6_frames_get_the_same_answer_either_way(twins6, kind):
    """Up to three changes at once, of fields or of any of the first 80 bytes or of any byte, and cuts anywhere."""
    _same_answer_to_mutations(twins6, kind, FIELD_CHANGES6, 80)


def test_the_ipv6_echo_lane_answers_as_the_layered_path(twins6):
    """The poll loop's lane (Stack.answer_echo) answers a ping -6 request with the layered path's reply and
    counts; it declines what is not one, and with the fast paths off it declines everything."""
    fast_b, layered_b, corpus, now = twins6
    for kind in KINDS6:
        frame = corpus[kind]
        before = dict(fast_b.counters)
        reply = fast_b.answer_echo(frame, now)
        assert layered_b.answer_echo(frame, now) is None
        answered, moved = outcome(layered_b, frame, now)
        if reply is None:
            assert fast_b.counters == before
            assert outcome(fast_b, frame, now) == (answered, moved)
        else:
            assert [reply] == answered and kind in ("echo request", "echo to the link-local address")
            assert {k: v - before.get(k, 0) for k, v in fast_b.counters.items() if v != before.get(k, 0)} == moved


@pytest.mark.parametrize("loss, seed", [(0.0, 1), (0.02, 2), (0.05, 3)])
def test_ipv6_transfers_put_the_same_frames_on_the_wire_either_way(loss: float, seed: int) -> None:
    """Over IPv6 too: header prediction, the direct receive path and the one-pack send path (TcpPath6) take
    most segments of a transfer with the switch on, none with it off, and the wire cannot tell."""
    fast, layered = twin_configs()
    watched = (Connection._input_predicted, Tcp6Glue.receive_direct, TcpPath6.send)
    with calls(*watched) as fast_calls:
        fast_run = _transfer(fast, loss, seed, 6)
    with calls(*watched) as layered_calls:
        layered_run = _transfer(layered, loss, seed, 6)
    assert fast_run == layered_run
    assert not layered_calls
    segments = 3 * 100_000 // 1428
    assert fast_calls["Connection._input_predicted"] > segments
    assert fast_calls["Tcp6Glue.receive_direct"] > segments and fast_calls["TcpPath6.send"] > segments
