"""A table of malformed frames fed to a whole stack: each is dropped and counted, none raises."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.wire import arp, ethernet, icmp, ipv4, udp

from .conftest import A_IP, A_MAC, B_IP, B_MAC, make_pair


def _eth(payload: bytes, ethertype: int = ethernet.ETHERTYPE_IPV4) -> bytes:
    return ethernet.build(A_MAC, B_MAC, ethertype, payload)


def _valid_frames() -> dict[str, bytes]:
    echo = icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x00010001, bytes(range(56)))
    frags = ipv4.fragment(B_IP, A_IP, ipv4.PROTO_UDP, udp.build(B_IP, A_IP, 5, 7, bytes(2000)), 1500, ident=3)
    return {
        "arp_request": _eth(arp.build(arp.OP_REQUEST, B_MAC, B_IP, bytes(6), A_IP), ethernet.ETHERTYPE_ARP),
        "icmp_echo": _eth(ipv4.build(B_IP, A_IP, ipv4.PROTO_ICMP, echo)),
        "udp_echo": _eth(ipv4.build(B_IP, A_IP, ipv4.PROTO_UDP, udp.build(B_IP, A_IP, 5, 7, b"hello"))),
        "first_fragment": _eth(frags[0]),
    }


@pytest.fixture
def stack_a():
    a, _b, wire = make_pair()
    from pystack.apps.udp_echo import UdpEcho

    UdpEcho(a)
    a.frames_to_send()
    return a, wire.clock.now


@pytest.mark.parametrize("name", sorted(_valid_frames()))
def test_truncated_at_every_offset_is_dropped_and_counted(stack_a, name):
    a, now = stack_a
    frame = _valid_frames()[name]
    for cut in range(len(frame)):
        before = a.counters.total_drops()
        a.receive_frame(frame[:cut], now)
        assert a.counters.total_drops() == before + 1, f"{name} cut at {cut} was not counted as a drop"
        assert a.frames_to_send() == [], f"{name} cut at {cut} got an answer"
    assert a.counters["drop.internal_error"] == 0


@pytest.mark.parametrize("name", ["icmp_echo", "udp_echo"])
def test_every_single_bit_flip_in_ip_and_transport_is_dropped_or_harmless(stack_a, name):
    a, now = stack_a
    frame = bytearray(_valid_frames()[name])
    for bit in range(14 * 8, len(frame) * 8):
        flipped = bytearray(frame)
        flipped[bit // 8] ^= 0x80 >> (bit % 8)
        before = a.counters.total_drops()
        a.receive_frame(bytes(flipped), now)
        out = a.frames_to_send()
        # A single bit flip is always caught by a checksum or a length/version/address check.
        assert a.counters.total_drops() == before + 1, f"bit {bit} slipped through: {out}"
    assert a.counters["drop.internal_error"] == 0


MALFORMED = {
    "empty": (b"", "ethernet.truncated"),
    "802.3 length frame": (ethernet.build(A_MAC, B_MAC, 0x0100, bytes(46)), "ethernet.not_ethernet_ii"),
    "unknown ethertype": (ethernet.build(A_MAC, B_MAC, 0x88B5, bytes(46)), "ethernet.unsupported_ethertype"),
    "ipv6": (ethernet.build(b"\x33\x33\0\0\0\x01", B_MAC, ethernet.ETHERTYPE_IPV6, bytes(60)), "ethernet.ipv6_unsupported"),
    "other unicast mac": (ethernet.build(b"\x02\0\0\0\0\x99", B_MAC, ethernet.ETHERTYPE_IPV4, bytes(40)), "ethernet.not_for_us"),
    "multicast source mac": (ethernet.build(A_MAC, b"\x01\0\0\0\0\x01", ethernet.ETHERTYPE_IPV4, bytes(40)), "ethernet.multicast_source"),
    "ipv4 version 6": (_eth(b"\x65" + ipv4.build(B_IP, A_IP, 17, bytes(8))[1:]), "ipv4.bad_version"),
    "ipv4 ihl 4": (_eth(b"\x44" + ipv4.build(B_IP, A_IP, 17, bytes(8))[1:]), "ipv4.bad_header_length"),
    "ipv4 total length beyond frame": (_eth(ipv4.build(B_IP, A_IP, 17, bytes(8))[:2] + b"\x05\xdc" + ipv4.build(B_IP, A_IP, 17, bytes(8))[4:]), "ipv4.truncated"),
    "ipv4 not for us": (_eth(ipv4.build(B_IP, ipv4.addr_to_int("192.0.2.50"), 17, udp.build(B_IP, 1, 1, 7, b""))), "ipv4.not_for_us"),
    "ipv4 martian source": (_eth(ipv4.build(ipv4.addr_to_int("127.0.0.1"), A_IP, 17, udp.build(1, A_IP, 1, 7, b""))), "ipv4.martian_source"),
    "udp length too big": (_eth(ipv4.build(B_IP, A_IP, 17, b"\0\x05\0\x07\x00\xff\0\0")), "udp.bad_length"),
    "udp length too small": (_eth(ipv4.build(B_IP, A_IP, 17, b"\0\x05\0\x07\x00\x04\0\0")), "udp.bad_length"),
    "udp bad checksum": (_eth(ipv4.build(B_IP, A_IP, 17, udp.build(B_IP, A_IP, 5, 7, b"x")[:6] + b"\x12\x34x")), "udp.bad_checksum"),
    "icmp bad checksum": (_eth(ipv4.build(B_IP, A_IP, 1, b"\x08\0\0\0\0\0\0\0")), "icmp.bad_checksum"),
    "icmp truncated": (_eth(ipv4.build(B_IP, A_IP, 1, b"\x08\0")), "icmp.truncated"),
    "icmp error with short quote": (_eth(ipv4.build(B_IP, A_IP, 1, icmp.build(3, 3, 0, b"\x45\0"))), "icmp.bad_quote"),
    "arp wrong hardware type": (_eth(b"\0\x06" + arp.build(1, B_MAC, B_IP, bytes(6), A_IP)[2:], ethernet.ETHERTYPE_ARP), "arp.unsupported"),
    "arp bad op": (_eth(arp.build(9, B_MAC, B_IP, bytes(6), A_IP), ethernet.ETHERTYPE_ARP), "arp.bad_op"),
    "arp claiming our address": (_eth(arp.build(1, B_MAC, A_IP, bytes(6), A_IP), ethernet.ETHERTYPE_ARP), "arp.address_conflict"),
    "fragment not multiple of 8": (_eth(ipv4.build(B_IP, A_IP, 17, bytes(13), ident=5, flags_offset=ipv4.FLAG_MF)), "ipv4.frag_bad_length"),
    "fragment beyond 64 KiB": (_eth(ipv4.build(B_IP, A_IP, 17, bytes(16), ident=6, flags_offset=ipv4.OFFSET_MASK)), "ipv4.frag_too_big"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_frame_is_dropped_with_its_reason(stack_a, name):
    a, now = stack_a
    frame, reason = MALFORMED[name]
    a.receive_frame(frame, now)
    assert a.counters["drop." + reason] == 1, dict(a.counters.drops())
    assert a.counters["drop.internal_error"] == 0


def test_overlapping_fragments_are_dropped_and_counted(stack_a):
    a, now = stack_a
    first = ipv4.build(B_IP, A_IP, 17, bytes(64), ident=9, flags_offset=ipv4.FLAG_MF)
    overlap = ipv4.build(B_IP, A_IP, 17, bytes(64), ident=9, flags_offset=ipv4.FLAG_MF | 4)
    a.receive_frame(_eth(first), now)
    a.receive_frame(_eth(overlap), now)
    assert a.counters["drop.ipv4.frag_overlap"] == 1


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), ethertype=st.sampled_from([0x0800, 0x0806, 0x86DD, 0x1234]))
def test_random_payloads_never_raise(data, ethertype):
    a, _b, wire = make_pair()
    a.receive_frame(ethernet.build(A_MAC, B_MAC, ethertype, data), wire.clock.now)
    a.handle_timer(wire.clock.now + 100)
    assert a.counters["drop.internal_error"] == 0


def test_random_mutations_of_valid_frames_never_raise(stack_a):
    a, now = stack_a
    rng = random.Random(1234)
    frames = list(_valid_frames().values())
    for _ in range(3000):
        frame = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            pos = rng.randrange(len(frame))
            if op < 0.6:
                frame[pos] = rng.randrange(256)
            elif op < 0.8:
                del frame[pos:]
            else:
                frame[pos:pos] = rng.randbytes(rng.randint(1, 30))
            if not frame:
                break
        a.receive_frame(bytes(frame), now)
        a.frames_to_send()
    assert a.counters["drop.internal_error"] == 0
