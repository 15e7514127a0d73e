"""IPv4 reassembly: any order, duplicates, overlaps (RFC 5722 behaviour), timeouts and bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.ip.reassembly import Reassembler
from pystack.wire import ipv4, udp

SRC = ipv4.addr_to_int("192.0.2.1")
DST = ipv4.addr_to_int("192.0.2.2")


def _fragments(payload: bytes, mtu: int, ident: int = 7) -> list[bytes]:
    return ipv4.fragment(SRC, DST, ipv4.PROTO_UDP, payload, mtu, ident=ident)


def _feed(r: Reassembler, frags: list[bytes], now: float = 0.0):
    result = None
    for raw in frags:
        pkt = ipv4.parse(raw)
        got = r.add(pkt, raw[: pkt.header_len], now)
        if got is not None:
            result = got
    return result


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1481, 9000), mtu=st.sampled_from([68, 576, 1500]), seed=st.integers(0, 2**32))
def test_fragments_reassemble_in_any_order(size, mtu, seed):
    payload = random.Random(seed).randbytes(size)
    frags = _fragments(payload, mtu)
    assert len(frags) > 1
    random.Random(seed).shuffle(frags)
    r = Reassembler(StackConfig(), Counters())
    got = _feed(r, frags)
    assert got is not None and got.payload == payload
    assert r.bytes_held == 0 and not r.datagrams


def test_exact_duplicate_is_dropped_but_datagram_completes():
    payload = bytes(3000)
    frags = _fragments(payload, 1500)
    c = Counters()
    r = Reassembler(StackConfig(), c)
    got = _feed(r, [frags[0], frags[0], frags[1], frags[2]])
    assert got is not None and got.payload == payload
    assert c["drop.ipv4.frag_duplicate"] == 1


def test_overlapping_fragment_discards_the_whole_datagram():
    payload = bytes(range(256)) * 12
    frags = _fragments(payload, 1500)
    first = ipv4.parse(frags[0])
    # A fragment starting inside the first one's range (offset 8 bytes) with other bytes.
    evil = ipv4.build(SRC, DST, ipv4.PROTO_UDP, b"\xee" * 64, ident=7, flags_offset=ipv4.FLAG_MF | 1)
    c = Counters()
    r = Reassembler(StackConfig(), c)
    assert _feed(r, [frags[0], evil] + frags[1:]) is None
    assert c["drop.ipv4.frag_overlap"] == 1
    assert first.ident == 7


def test_partial_datagram_expires_after_the_timeout():
    frags = _fragments(bytes(3000), 1500)
    c = Counters()
    r = Reassembler(StackConfig(reassembly_timeout=30.0), c)
    _feed(r, frags[:2], now=100.0)
    assert r.next_deadline() == 130.0
    assert r.expire(129.9) == []
    expired = r.expire(130.0)
    assert len(expired) == 1 and c["drop.ipv4.frag_timeout"] == 1 and r.bytes_held == 0


def test_datagram_count_is_bounded_oldest_evicted():
    c = Counters()
    r = Reassembler(StackConfig(reassembly_max_datagrams=4), c)
    for ident in range(10):
        _feed(r, _fragments(bytes(3000), 1500, ident=ident)[:1])
    assert len(r.datagrams) == 4
    assert [k[3] for k in r.datagrams] == [6, 7, 8, 9]
    assert c["drop.ipv4.frag_table_full"] == 6


def test_bytes_held_are_bounded():
    c = Counters()
    r = Reassembler(StackConfig(reassembly_max_bytes=5000), c)
    for ident in range(10):
        _feed(r, _fragments(bytes(6000), 1500, ident=ident)[:2])
    assert r.bytes_held <= 5000
    assert c["drop.ipv4.frag_no_memory"] > 0


def test_fragment_past_65535_is_dropped():
    c = Counters()
    r = Reassembler(StackConfig(), c)
    evil = ipv4.build(SRC, DST, ipv4.PROTO_UDP, bytes(16), ident=1, flags_offset=ipv4.OFFSET_MASK)
    assert _feed(r, [evil]) is None
    assert c["drop.ipv4.frag_too_big"] == 1


def test_non_multiple_of_eight_middle_fragment_is_dropped():
    c = Counters()
    r = Reassembler(StackConfig(), c)
    evil = ipv4.build(SRC, DST, ipv4.PROTO_UDP, bytes(13), ident=1, flags_offset=ipv4.FLAG_MF)
    assert _feed(r, [evil]) is None
    assert c["drop.ipv4.frag_bad_length"] == 1


def test_stack_sends_time_exceeded_when_a_started_datagram_expires():
    from .conftest import make_pair

    a, b, wire = make_pair()
    seg = udp.build(a.address, b.address, 1000, 2000, bytes(3000))
    frags = ipv4.fragment(a.address, b.address, ipv4.PROTO_UDP, seg, 1500, ident=99)
    from pystack.wire import ethernet

    from .conftest import A_MAC, B_MAC

    b.receive_frame(ethernet.build(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV4, frags[0]), wire.clock.now)
    wire.run(duration=31)
    assert b.counters["drop.ipv4.frag_timeout"] == 1
    assert b.counters["icmp.errors_sent"] == 1
    assert a.counters["icmp.errors_received"] == 1


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_65535_byte_datagram_reassembles(order):
    payload = bytes(range(256)) * 255 + bytes(65515 - 255 * 256)
    frags = _fragments(payload, 1500)
    if order == "reverse":
        frags.reverse()
    got = _feed(Reassembler(StackConfig(), Counters()), frags)
    assert got is not None and len(got.payload) == 65515 and got.payload == payload


def _split_with_empty_tail(payload: bytes, ident: int = 7) -> list[bytes]:
    """``payload`` (a multiple of 8 bytes, over 1480) in 1480-byte fragments all with MF set, then a
    last fragment (MF clear) at the end offset that carries no data."""
    assert len(payload) % 8 == 0
    frags = [ipv4.build(SRC, DST, ipv4.PROTO_UDP, payload[off:off + 1480], ident=ident,
                        flags_offset=ipv4.FLAG_MF | (off >> 3)) for off in range(0, len(payload), 1480)]
    frags.append(ipv4.build(SRC, DST, ipv4.PROTO_UDP, b"", ident=ident, flags_offset=len(payload) >> 3))
    return frags


@pytest.mark.parametrize("order", ["empty_last", "empty_first", "empty_between"])
def test_zero_length_last_fragment_drops_the_datagram(order):
    """Linux's ip_frag_queue takes a fragment with no data (end == offset) as invalid and discards
    the datagram; before, pystack completed the datagram from the empty fragment's offset alone."""
    payload = bytes(range(256)) * 11 + bytes(144)  # 2960 bytes: two full fragments, then the empty one
    frags = _split_with_empty_tail(payload)
    empty = frags.pop()
    feed = {"empty_last": frags + [empty], "empty_first": [empty] + frags,
            "empty_between": [frags[0], empty, frags[1]]}[order]
    c = Counters()
    r = Reassembler(StackConfig(), c)
    assert _feed(r, feed) is None
    assert c["drop.ipv4.empty_fragment"] == 1
    assert c["ipv4.reassembled"] == 0
    if order == "empty_last":  # the partial datagram went with it
        assert not r.datagrams and r.bytes_held == 0
    assert r.bytes_held == sum(len(p) for dg in r.datagrams.values() for p in dg.parts)


def test_last_fragment_with_data_still_reassembles():
    """The same shape, but the last fragment carries its bytes (even a single one): reassembled."""
    for tail in (1, 8, 1480):
        payload = bytes(range(256)) * 11 + bytes(144) + b"\x5a" * tail
        frags = [ipv4.build(SRC, DST, ipv4.PROTO_UDP, payload[off:off + 1480], ident=9,
                            flags_offset=(ipv4.FLAG_MF if off + 1480 < len(payload) else 0) | (off >> 3))
                 for off in range(0, len(payload), 1480)]
        assert len(frags) == 3 and len(ipv4.parse(frags[-1]).payload) == tail
        c = Counters()
        got = _feed(Reassembler(StackConfig(), c), frags)
        assert got is not None and got.payload == payload
        assert c.total_drops() == 0


def test_stack_counts_zero_length_last_fragment_and_delivers_nothing():
    """Through the stack: a UDP datagram closed by an empty last fragment reaches no socket, is
    counted, and raises nothing (no internal error); the next whole datagram still arrives."""
    from pystack.wire import ethernet

    from .conftest import A_MAC, B_MAC, make_pair

    a, b, wire = make_pair()  # SRC is B (192.0.2.1), DST is A (192.0.2.2)
    server = a.udp.bind(0, 4000)
    seg = udp.build(SRC, DST, 1000, 4000, bytes(2952))  # 2960 bytes with the header
    for raw in _split_with_empty_tail(seg, ident=1234):
        a.receive_frame(ethernet.build(A_MAC, B_MAC, ethernet.ETHERTYPE_IPV4, raw), wire.clock.now)
    wire.run()
    assert server.recvfrom() is None
    assert a.counters["drop.ipv4.empty_fragment"] == 1
    assert a.counters.get("drop.internal_error", 0) == 0
    assert not a.reassembler.datagrams
    b.udp.bind(0, 1000).sendto(bytes(4000), (DST, 4000), wire.clock.now)
    wire.run()
    assert server.recvfrom() == (bytes(4000), (SRC, 1000))
