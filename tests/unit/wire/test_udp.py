"""UDP (RFC 768): round trips, pseudo-header checksum, dpkt both ways, lengths and malformed datagrams."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import ipv4, udp
from pystack.wire.udp import HEADER_LEN

from .reference import (
    FUZZ, PROPERTY, flip_bit, ipv4_addrs, parses_or_rejects, payloads, ports, pseudo_header, ref_checksum, rejects,
    with_word,
)

SRC = 0xC0000201
DST = 0xC0000202
dst_ports = st.integers(min_value=1, max_value=0xFFFF)
SAMPLE = udp.build(SRC, DST, 40000, 7, b"hello, udp echo" * 3)


def _expected_checksum(src: int, dst: int, segment: bytes) -> int:
    """RFC 768 with the reference sum: over pseudo-header and datagram, a result of 0 is sent as 0xFFFF."""
    return ref_checksum(pseudo_header(src, dst, 17, len(segment)) + with_word(segment, 6, 0)) or 0xFFFF


def _ip(src: int, dst: int, segment: bytes) -> bytes:
    return ipv4.build(src, dst, ipv4.PROTO_UDP, segment)


@given(ipv4_addrs, ipv4_addrs, ports, dst_ports, payloads)
@PROPERTY
def test_build_parse_round_trip(src: int, dst: int, sport: int, dport: int, payload: bytes) -> None:
    seg = udp.build(src, dst, sport, dport, payload)
    assert len(seg) == HEADER_LEN + len(payload)
    assert int.from_bytes(seg[4:6], "big") == len(seg)
    assert int.from_bytes(seg[6:8], "big") == _expected_checksum(src, dst, seg)
    d = udp.parse(seg, src, dst)
    assert (d.src_port, d.dst_port, bytes(d.payload)) == (sport, dport, payload)
    assert udp.build(src, dst, d.src_port, d.dst_port, d.payload) == seg
    assert udp.parse(memoryview(seg), src, dst) == d


def test_computed_zero_checksum_is_sent_as_all_ones() -> None:
    # Pick the last two payload bytes so that the datagram's sum is 0xFFFF: its checksum computes to 0,
    # which RFC 768 reserves for "no checksum", so it must go out as 0xFFFF.
    head = udp.build(SRC, DST, 1234, 5678, b"\x00\x00")
    need = ref_checksum(pseudo_header(SRC, DST, 17, len(head)) + with_word(head, 6, 0))
    payload = need.to_bytes(2, "big")
    seg = udp.build(SRC, DST, 1234, 5678, payload)
    assert seg[6:8] == b"\xff\xff"
    assert udp.parse(seg, SRC, DST).payload == payload
    ip = dpkt.ip.IP(src=SRC.to_bytes(4, "big"), dst=DST.to_bytes(4, "big"), p=17,
                    data=dpkt.udp.UDP(sport=1234, dport=5678, ulen=10, data=payload))
    assert bytes(ip)[20:] == seg  # dpkt applies the same RFC 768 rule


@given(ipv4_addrs, ipv4_addrs, ports, dst_ports, payloads)
@PROPERTY
def test_no_checksum_is_accepted(src: int, dst: int, sport: int, dport: int, payload: bytes) -> None:
    seg = with_word(udp.build(src, dst, sport, dport, payload), 6, 0)
    d = udp.parse(seg, src ^ 1, dst ^ 1)  # not even the pseudo-header is checked
    assert (d.src_port, d.dst_port, bytes(d.payload)) == (sport, dport, payload)


@given(ipv4_addrs, ipv4_addrs, ports, dst_ports, payloads)
@PROPERTY
def test_ours_parsed_by_dpkt(src: int, dst: int, sport: int, dport: int, payload: bytes) -> None:
    packet = _ip(src, dst, udp.build(src, dst, sport, dport, payload))
    ip = dpkt.ip.IP(packet)
    u = ip.data
    assert isinstance(u, dpkt.udp.UDP)
    assert (u.sport, u.dport, u.ulen, u.data) == (sport, dport, HEADER_LEN + len(payload), payload)
    # dpkt recomputing both checksums from scratch reproduces our packet exactly.
    ip.sum = 0
    u.sum = 0
    assert bytes(ip) == packet


@given(ipv4_addrs, ipv4_addrs, ports, dst_ports, payloads)
@PROPERTY
def test_dpkt_parsed_by_ours(src: int, dst: int, sport: int, dport: int, payload: bytes) -> None:
    ip = dpkt.ip.IP(src=src.to_bytes(4, "big"), dst=dst.to_bytes(4, "big"), p=17,
                    data=dpkt.udp.UDP(sport=sport, dport=dport, ulen=HEADER_LEN + len(payload), data=payload))
    p = ipv4.parse(bytes(ip))
    d = udp.parse(p.payload, p.src, p.dst)
    assert (d.src_port, d.dst_port, bytes(d.payload)) == (sport, dport, payload)
    assert bytes(p.payload) == udp.build(src, dst, sport, dport, payload)


def test_largest_datagram_over_ipv4() -> None:
    payload = bytes(i & 0xFF for i in range(65507))  # 65507 + 8 + 20 = 65535
    packet = _ip(SRC, DST, udp.build(SRC, DST, 9, 9, payload))
    assert len(packet) == 65535
    ip = dpkt.ip.IP(packet)
    assert ip.udp.ulen == 65515 and ip.udp.data == payload
    check = dpkt.ip.IP(packet)
    check.udp.sum = 0
    check.sum = 0
    assert bytes(check) == packet
    assert udp.parse(ipv4.parse(packet).payload, SRC, DST).payload == payload


@pytest.mark.parametrize("mtu", [576, 1500])
def test_fragmented_datagram_reassembles_and_verifies(mtu: int) -> None:
    payload = bytes(range(256)) * 16
    seg = udp.build(SRC, DST, 5000, 6000, payload)
    frags = ipv4.fragment(SRC, DST, ipv4.PROTO_UDP, seg, mtu, ident=42)
    assert len(frags) > 1
    whole = bytearray()
    for raw in frags:
        p = ipv4.parse(raw)
        whole[p.fragment_offset:] = p.payload
    assert udp.parse(bytes(whole), SRC, DST).payload == payload
    assert dpkt.ip.IP(_ip(SRC, DST, bytes(whole))).udp.data == payload


@given(st.binary(min_size=1, max_size=30))
@PROPERTY
def test_bytes_past_the_udp_length_are_cut(extra: bytes) -> None:
    # The IP payload may be longer than the UDP length (RFC 768 length is authoritative), as Linux trims.
    d = udp.parse(SAMPLE + extra, SRC, DST)
    assert bytes(d.payload) == SAMPLE[HEADER_LEN:]


def test_shorter_udp_length_with_matching_checksum_is_accepted() -> None:
    # The length says 12 in a longer IP payload: valid, because the checksum covers exactly those 12 bytes.
    short = udp.build(SRC, DST, 40000, 7, b"abcd")
    carried = short + b"trailing junk not covered by the checksum"
    assert bytes(udp.parse(carried, SRC, DST).payload) == b"abcd"


# --- malformed input --------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(len(SAMPLE)))
def test_truncated_at_every_offset(cut: int) -> None:
    reasons = {"udp.truncated"} if cut < HEADER_LEN else {"udp.bad_length"}
    rejects(udp.parse, SAMPLE[:cut], reasons, SRC, DST)
    rejects(udp.parse, memoryview(SAMPLE)[:cut], reasons, SRC, DST)


@pytest.mark.parametrize("length", [0, 1, 7, len(SAMPLE) + 1, len(SAMPLE) + 8, 0xFFFF])
@pytest.mark.parametrize("checksummed", [True, False], ids=["checksum", "no_checksum"])
def test_bad_length_field(length: int, checksummed: bool) -> None:
    seg = with_word(SAMPLE, 4, length)
    if checksummed:  # the checksum as a sender using this length would compute it
        seg = with_word(seg, 6, ref_checksum(pseudo_header(SRC, DST, 17, length) + with_word(seg, 6, 0)) or 0xFFFF)
    else:
        seg = with_word(seg, 6, 0)
    rejects(udp.parse, seg, {"udp.bad_length"}, SRC, DST)


def test_length_just_shorter_without_refixed_checksum_is_refused() -> None:
    rejects(udp.parse, with_word(SAMPLE, 4, len(SAMPLE) - 1), {"udp.bad_checksum"}, SRC, DST)


@pytest.mark.parametrize("bit", range(len(SAMPLE) * 8))
def test_every_single_bit_flip_is_refused(bit: int) -> None:
    flipped = flip_bit(SAMPLE, bit)
    if flipped[6:8] == b"\x00\x00":
        # The flip turned the checksum into "none sent" (RFC 768): nothing left to detect it with.
        assert udp.parse(flipped, SRC, DST).payload == SAMPLE[HEADER_LEN:]
        return
    reasons = {"udp.bad_length", "udp.bad_checksum"} if 32 <= bit < 48 else {"udp.bad_checksum"}
    rejects(udp.parse, flipped, reasons, SRC, DST)


@pytest.mark.parametrize("bit", range(64))
def test_wrong_pseudo_header_addresses_are_refused(bit: int) -> None:
    # A datagram delivered to (or claimed from) another address fails the pseudo-header checksum.
    src = SRC ^ (1 << bit) if bit < 32 else SRC
    dst = DST ^ (1 << (bit - 32)) if bit >= 32 else DST
    rejects(udp.parse, SAMPLE, {"udp.bad_checksum"}, src, dst)


def test_destination_port_zero_is_refused() -> None:
    # Port 0 is reserved: a datagram to it has no receiver (checksum valid, so only the port is judged).
    rejects(udp.parse, udp.build(SRC, DST, 1000, 0, b"x"), {"udp.port_zero"}, SRC, DST)
    rejects(udp.parse, with_word(udp.build(SRC, DST, 1000, 0, b"x"), 6, 0), {"udp.port_zero"}, SRC, DST)


def test_source_port_zero_is_allowed() -> None:
    # RFC 768: the source port is optional; zero means "no reply expected".
    assert udp.parse(udp.build(SRC, DST, 0, 53, b"q"), SRC, DST).src_port == 0


@given(st.binary(max_size=60), ipv4_addrs, ipv4_addrs)
@FUZZ
def test_random_bytes_never_raise_anything_but_wire_error(data: bytes, src: int, dst: int) -> None:
    parses_or_rejects(udp.parse, data, "udp", src, dst)


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(SAMPLE) - 1), st.integers(0, 255)), min_size=1, max_size=3))
@FUZZ
def test_mutated_datagrams_never_raise_anything_but_wire_error(edits: list[tuple[int, int]]) -> None:
    seg = bytearray(SAMPLE)
    for at, value in edits:
        seg[at] = value
    d = parses_or_rejects(udp.parse, bytes(seg), "udp", SRC, DST)
    if d is not None:
        assert d.dst_port != 0 and len(d.payload) == int.from_bytes(seg[4:6], "big") - HEADER_LEN
