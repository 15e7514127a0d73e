"""IPv4 (RFC 791): round trips, dpkt both ways, fragmentation, every malformed header, and the send
path's one-piece Ethernet+IPv4 header with its checksum summed from the fields."""

from __future__ import annotations

import ipaddress
import struct

import dpkt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pystack.wire import ethernet, ipv4
from pystack.wire.checksum import internet_checksum, is_valid
from pystack.wire.ipv4 import FLAG_DF, MIN_HEADER_LEN
from pystack_lab.reference import ref_checksum, ref_ones_sum

from .reference import (
    FUZZ, PROPERTY, flip_bit, ipv4_addrs, ipv4_options, macs, parses_or_rejects, payloads, refix_ipv4_checksum,
    rejects, u8, u16, with_word,
)

SRC = 0xC0000201  # 192.0.2.1
DST = 0xC0000202  # 192.0.2.2
PROTO_EXPERIMENT = 253  # RFC 3692: dpkt has no decoder for it, so it hands back the payload as bytes
flags_offsets = st.integers(min_value=0, max_value=0x7FFF)  # everything but the reserved bit
# Protocols dpkt would try to decode (and so re-serialise) are left out of the byte-level comparisons.
raw_protocols = u8.filter(lambda p: p not in dpkt.ip.IP._protosw)


def _sample(options: bytes = b"\x94\x04\x00\x00", payload: bytes = bytes(range(30))) -> bytes:
    """A valid datagram with a Router Alert option (RFC 2113) so the IHL > 5 paths are exercised."""
    return ipv4.build(SRC, DST, ipv4.PROTO_UDP, payload, ident=0x1234, ttl=64, tos=0, flags_offset=FLAG_DF, options=options)


# --- round trips ------------------------------------------------------------------------------------


@given(ipv4_addrs, ipv4_addrs, u8, payloads, u16, u8, u8, flags_offsets, ipv4_options)
@PROPERTY
def test_build_parse_round_trip(
    src: int, dst: int, proto: int, payload: bytes, ident: int, ttl: int, tos: int, fo: int, options: bytes
) -> None:
    packet = ipv4.build(src, dst, proto, payload, ident=ident, ttl=ttl, tos=tos, flags_offset=fo, options=options)
    ihl = MIN_HEADER_LEN + len(options)
    assert len(packet) == ihl + len(payload)
    assert packet[0] == 0x40 | ihl // 4
    p = ipv4.parse(packet)
    assert (p.header_len, p.tos, p.total_length, p.ident, p.flags_offset, p.ttl, p.protocol, p.src, p.dst) == (
        ihl, tos, len(packet), ident, fo, ttl, proto, src, dst)
    assert p.options == options and bytes(p.payload) == payload
    assert p.dont_fragment == bool(fo & 0x4000)
    assert p.more_fragments == bool(fo & 0x2000)
    assert p.fragment_offset == (fo & 0x1FFF) * 8
    assert p.is_fragment == bool(fo & 0x3FFF)
    # The header checksum verifies with the reference and equals the reference computed from scratch.
    assert ref_ones_sum(packet[:ihl]) == 0xFFFF
    assert int.from_bytes(packet[10:12], "big") == ref_checksum(with_word(packet[:ihl], 10, 0))
    # parse -> build gives back the same bytes; build_header + payload is the same as build.
    again = ipv4.build(p.src, p.dst, p.protocol, p.payload, ident=p.ident, ttl=p.ttl, tos=p.tos,
                       flags_offset=p.flags_offset, options=p.options)
    assert again == packet
    assert ipv4.build_header(src, dst, proto, len(payload), ident=ident, ttl=ttl, tos=tos, flags_offset=fo,
                             options=options) == packet[:ihl]


@given(payloads, ipv4_options)
@PROPERTY
def test_parse_memoryview_equals_bytes(payload: bytes, options: bytes) -> None:
    packet = _sample(options, payload)
    framed = b"\xaa" * 14 + packet + b"\xbb" * 5
    view = memoryview(framed)[14:14 + len(packet)]
    assert ipv4.parse(view) == ipv4.parse(packet)


@given(st.binary(min_size=1, max_size=40), payloads)
@PROPERTY
def test_trailing_link_padding_is_cut_at_total_length(pad: bytes, payload: bytes) -> None:
    packet = _sample(payload=payload)
    p = ipv4.parse(packet + pad)
    assert p.total_length == len(packet)
    assert bytes(p.payload) == payload


def test_minimum_frame_padding_through_ethernet() -> None:
    # A 20-byte header with 6 bytes of payload rides in a 60-byte frame: 20 bytes of padding follow it.
    packet = ipv4.build(SRC, DST, ipv4.PROTO_ICMP, b"abcdef")
    frame = ethernet.build(bytes(6), bytes(6), ethernet.ETHERTYPE_IPV4, packet) + bytes(20)
    assert len(frame) == 60
    assert bytes(ipv4.parse(ethernet.parse(frame).payload).payload) == b"abcdef"


def test_known_header_bytes() -> None:
    # Hand-assembled header; checksum worked out with the reference, not with pystack.
    header = bytes.fromhex("4500001c abcd 4000 4011 0000 c0000201 c0000202".replace(" ", ""))
    header = with_word(header, 10, ref_checksum(header))
    assert ipv4.build_header(SRC, DST, ipv4.PROTO_UDP, 8, ident=0xABCD, ttl=64, flags_offset=FLAG_DF) == header


# --- dpkt both ways ---------------------------------------------------------------------------------


@given(ipv4_addrs, ipv4_addrs, raw_protocols, payloads, u16, u8, u8, flags_offsets, ipv4_options)
@PROPERTY
def test_ours_parsed_by_dpkt(
    src: int, dst: int, proto: int, payload: bytes, ident: int, ttl: int, tos: int, fo: int, options: bytes
) -> None:
    packet = ipv4.build(src, dst, proto, payload, ident=ident, ttl=ttl, tos=tos, flags_offset=fo, options=options)
    ip = dpkt.ip.IP(packet)
    assert (ip.v, ip.hl * 4, ip.tos, ip.len, ip.id, ip.ttl, ip.p) == (
        4, MIN_HEADER_LEN + len(options), tos, len(packet), ident, ttl, proto)
    assert (ip.rf, ip.df, ip.mf, ip.offset) == (0, (fo >> 14) & 1, (fo >> 13) & 1, fo & 0x1FFF)
    assert (ip.src, ip.dst) == (src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    assert (ip.opts, ip.data) == (options, payload)
    # dpkt's own checksum of our header (checksum field zeroed) is the one we sent.
    header = packet[:ip.hl * 4]
    assert ip.sum == dpkt.in_cksum(with_word(header, 10, 0))
    ip.sum = 0
    assert bytes(ip) == packet  # dpkt re-serialising, checksum recomputed, gives our bytes


@given(ipv4_addrs, ipv4_addrs, raw_protocols, payloads, u16, u8, u8, flags_offsets, ipv4_options)
@PROPERTY
def test_dpkt_parsed_by_ours(
    src: int, dst: int, proto: int, payload: bytes, ident: int, ttl: int, tos: int, fo: int, options: bytes
) -> None:
    ip = dpkt.ip.IP(src=src.to_bytes(4, "big"), dst=dst.to_bytes(4, "big"), p=proto, id=ident, ttl=ttl, tos=tos,
                    data=payload)
    ip.opts = options
    ip.hl = 5 + len(options) // 4
    ip.df, ip.mf, ip.offset = (fo >> 14) & 1, (fo >> 13) & 1, fo & 0x1FFF
    raw = bytes(ip)
    p = ipv4.parse(raw)
    assert (p.src, p.dst, p.protocol, p.ident, p.ttl, p.tos, p.flags_offset, p.options, bytes(p.payload)) == (
        src, dst, proto, ident, ttl, tos, fo, options, payload)
    assert p.total_length == len(raw) and p.header_len == 20 + len(options)


def test_dpkt_udp_packet_parsed_by_ours() -> None:
    ip = dpkt.ip.IP(src=SRC.to_bytes(4, "big"), dst=DST.to_bytes(4, "big"), p=17,
                    data=dpkt.udp.UDP(sport=5000, dport=53, ulen=12, data=b"ping"))
    p = ipv4.parse(bytes(ip))
    assert (p.protocol, p.src, p.dst, p.total_length) == (17, SRC, DST, 32)
    assert bytes(p.payload) == bytes(ip.data)


# --- fragmentation (RFC 791 section 3.2) ------------------------------------------------------------


def _check_fragments(frags: list[bytes], payload: bytes, mtu: int, ident: int, proto: int = PROTO_EXPERIMENT) -> None:
    """Every property a receiver relies on, checked with our parser and independently with dpkt."""
    assert frags
    offset = 0
    joined_ours, joined_dpkt = bytearray(), bytearray()
    for i, raw in enumerate(frags):
        last = i == len(frags) - 1
        assert len(raw) <= mtu
        p = ipv4.parse(raw)
        assert (p.src, p.dst, p.protocol, p.ident, p.header_len) == (SRC, DST, proto, ident, MIN_HEADER_LEN)
        assert p.fragment_offset == offset and p.fragment_offset % 8 == 0
        assert p.more_fragments is (not last)
        assert not p.dont_fragment
        if not last:
            assert len(p.payload) % 8 == 0 and len(p.payload) > 0
        offset += len(p.payload)
        joined_ours += p.payload
        ip = dpkt.ip.IP(raw)
        assert ip.len == len(raw) and ip.id == ident and ip.mf == (0 if last else 1) and ip.rf == 0 and ip.df == 0
        assert ip.offset * 8 == p.fragment_offset
        assert ip.sum == dpkt.in_cksum(with_word(raw[:20], 10, 0))
        joined_dpkt[ip.offset * 8:] = ip.data
    assert bytes(joined_ours) == payload == bytes(joined_dpkt)
    assert offset == len(payload)


@pytest.mark.parametrize("mtu", [68, 296, 576, 1280, 1500, 9000])
@pytest.mark.parametrize("size", [1, 8, 47, 48, 49, 1472, 1473, 1480, 1481, 4000, 8972, 65000])
def test_fragment_at_several_mtus(mtu: int, size: int) -> None:
    payload = bytes((i * 7 + size) & 0xFF for i in range(size))
    frags = ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, payload, mtu, ident=0xBEEF)
    _check_fragments(frags, payload, mtu, 0xBEEF)
    expected = 1 if MIN_HEADER_LEN + size <= mtu else -(-size // ((mtu - MIN_HEADER_LEN) & ~7))
    assert len(frags) == expected  # every fragment but the last is as large as the MTU allows


@pytest.mark.parametrize("mtu", [68, 576, 1500, 9000, 65535])
def test_fragment_largest_payload(mtu: int) -> None:
    payload = bytes(i & 0xFF for i in range(65515))  # 65515 + 20 = 65535, the largest datagram
    frags = ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, payload, mtu, ident=7)
    _check_fragments(frags, payload, mtu, 7)
    last = ipv4.parse(frags[-1])
    assert last.fragment_offset + len(last.payload) == 65515
    assert ((last.flags_offset & 0x1FFF) << 3) <= 65528  # fits the 13-bit offset field


def test_fragment_fits_exactly_is_not_fragmented() -> None:
    payload = bytes(1480)
    (only,) = ipv4.fragment(SRC, DST, ipv4.PROTO_UDP, payload, 1500, ident=1)
    p = ipv4.parse(only)
    assert not p.is_fragment and len(only) == 1500
    two = ipv4.fragment(SRC, DST, ipv4.PROTO_UDP, payload + b"x", 1500, ident=1)
    assert [len(f) for f in two] == [1500, 21]
    # Exactly filling the MTU is allowed with DF too: nothing needs fragmenting.
    (df,) = ipv4.fragment(SRC, DST, ipv4.PROTO_UDP, payload, 1500, ident=1, dont_fragment=True)
    assert ipv4.parse(df).dont_fragment and len(df) == 1500


def test_fragment_passes_ttl_and_tos_to_every_fragment() -> None:
    frags = ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, bytes(3000), 1500, ident=9, ttl=3, tos=0xB8)
    assert len(frags) == 3
    assert {(ipv4.parse(f).ttl, ipv4.parse(f).tos) for f in frags} == {(3, 0xB8)}


def test_dont_fragment() -> None:
    (only,) = ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, bytes(100), 1500, ident=2, dont_fragment=True)
    assert ipv4.parse(only).dont_fragment and dpkt.ip.IP(only).df == 1
    with pytest.raises(ValueError):
        ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, bytes(1481), 1500, ident=2, dont_fragment=True)


@pytest.mark.parametrize("mtu", [0, 20, 27])
def test_mtu_too_small_to_fragment(mtu: int) -> None:
    with pytest.raises(ValueError):
        ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, bytes(100), mtu, ident=3)


def test_smallest_mtu_that_fragments() -> None:
    frags = ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, bytes(range(20)), 28, ident=4)
    _check_fragments(frags, bytes(range(20)), 28, 4)
    assert [len(f) - 20 for f in frags] == [8, 8, 4]


def test_fragment_refuses_a_datagram_larger_than_65535() -> None:
    # ipv4.build refuses a datagram over 65535 bytes; fragment() must not split one into fragments whose
    # offsets (up to 69920 / 8 = 8740 > 0x1FFF) no longer fit the field.
    with pytest.raises(ValueError):
        ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, bytes(70000), 1500, ident=5)


@given(st.integers(min_value=0, max_value=6000), st.integers(min_value=28, max_value=3000), u16)
@PROPERTY
def test_fragment_property(size: int, mtu: int, ident: int) -> None:
    payload = bytes((i * 31 + ident) & 0xFF for i in range(size))
    _check_fragments(ipv4.fragment(SRC, DST, PROTO_EXPERIMENT, payload, mtu, ident=ident), payload, mtu, ident)


# --- malformed input --------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(len(_sample())))
def test_truncated_at_every_offset(cut: int) -> None:
    packet = _sample()
    rejects(ipv4.parse, packet[:cut], {"ipv4.truncated"})
    rejects(ipv4.parse, memoryview(packet)[:cut], {"ipv4.truncated"})


def _edit(packet: bytes, *, vihl: int | None = None, total: int | None = None, fo: int | None = None) -> bytes:
    """Change header fields, then make the checksum right again so the field itself is what is judged."""
    out = bytearray(packet)
    if vihl is not None:
        out[0] = vihl
    if total is not None:
        out[2:4] = total.to_bytes(2, "big")
    if fo is not None:
        out[6:8] = fo.to_bytes(2, "big")
    return refix_ipv4_checksum(bytes(out))


_BASE = _sample()  # IHL 6, total 54


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (_edit(_BASE, vihl=0x06), "ipv4.bad_version"),
        (_edit(_BASE, vihl=0x56), "ipv4.bad_version"),
        (_edit(_BASE, vihl=0x66), "ipv4.bad_version"),  # an IPv6 first nibble
        (_edit(_BASE, vihl=0xF6), "ipv4.bad_version"),
        (_edit(_BASE, vihl=0x40), "ipv4.bad_header_length"),
        (_edit(_BASE, vihl=0x41), "ipv4.bad_header_length"),
        (_edit(_BASE, vihl=0x44), "ipv4.bad_header_length"),
        (_edit(_BASE, vihl=0x4F, total=40), "ipv4.bad_total_length"),  # 60-byte header in a 40-byte datagram
        (_edit(_BASE, total=0), "ipv4.bad_total_length"),
        (_edit(_BASE, total=20), "ipv4.bad_total_length"),  # shorter than this header's 24 bytes
        (_edit(_BASE, total=23), "ipv4.bad_total_length"),
        (_edit(_BASE, total=55), "ipv4.truncated"),  # one byte more than there is
        (_edit(_BASE, total=0xFFFF), "ipv4.truncated"),
        (b"\x48" + _BASE[1:], "ipv4.bad_checksum"),  # 32-byte header, checksum left as it was
        (_edit(_BASE, fo=0x8000), "ipv4.reserved_flag"),
        (_edit(_BASE, fo=0xC000), "ipv4.reserved_flag"),
        (with_word(_BASE, 10, int.from_bytes(_BASE[10:12], "big") ^ 0x0100), "ipv4.bad_checksum"),
        (with_word(_BASE, 10, 0), "ipv4.bad_checksum"),
        (_BASE[:22] + b"\x00\x01" + _BASE[24:], "ipv4.bad_checksum"),  # an option byte changed
    ],
    ids=[
        "version0", "version5", "version6", "version15", "ihl0", "ihl1", "ihl4", "ihl15_total40", "total0",
        "total20", "total23", "total_plus1", "total65535", "ihl8_checksum", "reserved", "reserved_df",
        "checksum_bit", "checksum_zero", "option_changed",
    ],
)
def test_malformed_headers(packet: bytes, reason: str) -> None:
    rejects(ipv4.parse, packet, {reason})


def test_checksum_refixing_helper_yields_a_valid_header() -> None:
    # Guards the table above: a harmless edit with the checksum refixed must parse.
    packet = _edit(_BASE, fo=0x2005)
    assert is_valid(packet[:24])
    assert ipv4.parse(packet).fragment_offset == 40


def _expected_reasons_for_flip(bit: int) -> set[str]:
    if bit < 4:
        return {"ipv4.bad_version"}
    if bit < 8:  # IHL: shorter than 20, longer than the datagram, or simply a checksum mismatch
        return {"ipv4.bad_header_length", "ipv4.bad_total_length", "ipv4.truncated", "ipv4.bad_checksum"}
    if 16 <= bit < 32:  # total length
        return {"ipv4.bad_total_length", "ipv4.truncated", "ipv4.bad_checksum"}
    return {"ipv4.bad_checksum"}  # a single flipped bit always changes the one's complement sum


@pytest.mark.parametrize("bit", range(24 * 8))
def test_every_single_bit_flip_in_the_header_is_refused(bit: int) -> None:
    rejects(ipv4.parse, flip_bit(_BASE, bit), _expected_reasons_for_flip(bit))


@pytest.mark.parametrize("bit", range(24 * 8, len(_BASE) * 8, 7))
def test_bit_flips_in_the_payload_are_not_ipv4s_business(bit: int) -> None:
    # The IPv4 checksum covers the header only (RFC 791 section 3.1); the payload is the upper layer's.
    flipped = flip_bit(_BASE, bit)
    assert bytes(ipv4.parse(flipped).payload) == flipped[24:]


@given(st.binary(max_size=80))
@FUZZ
def test_random_bytes_never_raise_anything_but_wire_error(data: bytes) -> None:
    parses_or_rejects(ipv4.parse, data, "ipv4")


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=53), u8), min_size=1, max_size=4))
@FUZZ
def test_mutated_packets_never_raise_anything_but_wire_error(edits: list[tuple[int, int]]) -> None:
    packet = bytearray(_BASE)
    for at, value in edits:
        packet[at] = value
    for candidate in (bytes(packet), refix_ipv4_checksum(bytes(packet))):
        p = parses_or_rejects(ipv4.parse, candidate, "ipv4")
        if p is not None:  # whatever is accepted must be self-consistent
            assert 20 <= p.header_len <= p.total_length <= len(candidate)
            assert len(p.payload) == p.total_length - p.header_len


# --- builder limits and helpers ---------------------------------------------------------------------


@pytest.mark.parametrize("options", [b"\x01", b"\x01\x01\x01", bytes(44)])
def test_build_refuses_unpadded_or_oversized_options(options: bytes) -> None:
    with pytest.raises(ValueError):
        ipv4.build_header(SRC, DST, 17, 0, options=options)


def test_build_refuses_datagrams_over_65535() -> None:
    assert len(ipv4.build(SRC, DST, 17, bytes(65515))) == 65535
    with pytest.raises(ValueError):
        ipv4.build(SRC, DST, 17, bytes(65516))
    with pytest.raises(ValueError):
        ipv4.build(SRC, DST, 17, bytes(65512), options=bytes(4))


@given(ipv4_addrs)
@PROPERTY
def test_address_text_round_trip(addr: int) -> None:
    text = ipv4.int_to_addr(addr)
    assert text == str(ipaddress.IPv4Address(addr.to_bytes(4, "big")))
    assert ipv4.addr_to_int(text) == addr


@pytest.mark.parametrize("text", ["", "192.0.2", "192.0.2.256", "::1", "192.0.2.1/24"])
def test_addr_to_int_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValueError):
        ipv4.addr_to_int(text)


# --- the send path's header pieces: header_checksum and frame_header --------------------------------
# The per-frame send path sums the header checksum from the fields as integers and packs the Ethernet
# and IPv4 headers in one struct (pystack.wire.ipv4.header_checksum / frame_header). Both are checked
# against checksums computed over packed bytes, and against dpkt parsing or building the same header.

_PACKED_HEADER = struct.Struct("!BBHHHBBHII")  # RFC 791 figure 4, checksum field included
_ALL_ONES = (0xFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFF, 0xFF, 0xFFFFFFFF, 0xFFFFFFFF)
_ALL_ZERO = (0, 0, 0, 0, 0, 0, 0, 0)
# 0x4500 + 0xBAFF = 0xFFFF: a one's complement sum of all ones, whose checksum field is 0x0000.
_SUM_ALL_ONES = (0, 0, 0xBAFF, 0, 0, 0, 0, 0)
# 0x4500 + 0xFFFF + 0xBB00 = 0x1FFFF: the first carry fold gives 0x10000, so a second fold is needed.
_TWO_FOLDS = (0, 0xFFFF, 0xBB00, 0, 0, 0, 0, 0)


def _packed_header(tos: int, total: int, ident: int, flags_offset: int, ttl: int, protocol: int,
                   src: int, dst: int, checksum: int = 0) -> bytes:
    """The 20-byte option-less header packed field by field, independently of pystack."""
    return _PACKED_HEADER.pack(0x45, tos, total, ident, flags_offset, ttl, protocol, checksum, src, dst)


@given(u8, u16, u16, u16, u8, u8, ipv4_addrs, ipv4_addrs)  # flags_offset as any 16 bits
@example(*_ALL_ZERO)
@example(*_ALL_ONES)
@example(*_SUM_ALL_ONES)
@example(*_TWO_FOLDS)
@example(0xFF, 0xFFFF, 0, 0, 0xFF, 0xFF, 0, 0xFFFFFFFF)
@PROPERTY
def test_header_checksum_from_fields_equals_rfc1071_over_the_packed_header(
    tos: int, total: int, ident: int, fo: int, ttl: int, proto: int, src: int, dst: int
) -> None:
    """Summing the fields as integers must give, bit for bit, the RFC 1071 checksum of the packed
    header: a wrong word (TTL/protocol order, the 0x45 byte) or a missing carry fold would not."""
    packed = _packed_header(tos, total, ident, fo, ttl, proto, src, dst)
    got = ipv4.header_checksum(tos, total, ident, fo, ttl, proto, src, dst)
    assert got == ref_checksum(packed) == internet_checksum(packed) == dpkt.in_cksum(packed)
    assert ref_ones_sum(_packed_header(tos, total, ident, fo, ttl, proto, src, dst, got)) == 0xFFFF


def test_header_checksum_extremes_have_known_values() -> None:
    """Hand-worked values, so the property above cannot pass by its oracles sharing a mistake."""
    # All zero: the only non-zero word is 0x4500, so the checksum is ~0x4500.
    assert ipv4.header_checksum(*_ALL_ZERO) == 0xBAFF
    # Sum exactly 0xFFFF: the field is 0x0000 (RFC 1071 does not map it to 0xFFFF).
    assert ipv4.header_checksum(*_SUM_ALL_ONES) == 0x0000
    # 0x1FFFF folds to 0x10000 and again to 0x0001: the checksum is 0xFFFE (one fold would give 0xFFFF).
    assert ipv4.header_checksum(*_TWO_FOLDS) == 0xFFFE
    # All ones: 0x45FF + 8 * 0xFFFF = 0x845F7, folded: 0x45F7 + 0x8 = 0x45FF, so the checksum is 0xBA00.
    assert ipv4.header_checksum(*_ALL_ONES) == 0xBA00


@given(macs, macs, u8, payloads, u16, flags_offsets, u8, raw_protocols, ipv4_addrs, ipv4_addrs)
@example(bytes(6), bytes(6), 0, b"", 0, 0, 0, 0, 0, 0)
@example(b"\xff" * 6, b"\xff" * 6, 0xFF, b"\xff" * 1480, 0xFFFF, 0x7FFF, 0xFF, 0xFF, 0xFFFFFFFF, 0xFFFFFFFF)
@PROPERTY
def test_frame_header_plus_payload_is_a_frame_dpkt_reads_right(
    dst_mac: bytes, src_mac: bytes, tos: int, payload: bytes, ident: int, fo: int, ttl: int, proto: int,
    src: int, dst: int,
) -> None:
    """The one-piece Ethernet+IPv4 header is what every TCP segment and echo reply goes out with: an
    independent decoder must find each field where RFC 791 puts it, the total length and a valid checksum."""
    head = ipv4.frame_header(dst_mac, src_mac, tos, len(payload), ident, fo, ttl, proto, src, dst)
    assert len(head) == ethernet.HEADER_LEN + MIN_HEADER_LEN
    frame = head + payload
    eth = dpkt.ethernet.Ethernet(frame)
    assert (eth.dst, eth.src, eth.type) == (dst_mac, src_mac, dpkt.ethernet.ETH_TYPE_IP)
    ip = eth.data
    assert isinstance(ip, dpkt.ip.IP)
    assert (ip.v, ip.hl, ip.tos, ip.len, ip.id, ip.ttl, ip.p) == (4, 5, tos, MIN_HEADER_LEN + len(payload), ident,
                                                                  ttl, proto)
    assert (ip.rf, ip.df, ip.mf, ip.offset) == (0, (fo >> 14) & 1, (fo >> 13) & 1, fo & 0x1FFF)
    assert (ip.src, ip.dst) == (src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    assert (ip.opts, ip.data) == (b"", payload)
    ip_header = frame[ethernet.HEADER_LEN:ethernet.HEADER_LEN + MIN_HEADER_LEN]
    assert ip.sum == dpkt.in_cksum(with_word(ip_header, 10, 0))
    assert ref_ones_sum(ip_header) == 0xFFFF
    # Our own receive path accepts it too, and it is byte for byte the slow path's frame.
    assert bytes(ipv4.parse(memoryview(frame)[ethernet.HEADER_LEN:]).payload) == payload
    assert head == ethernet.header(dst_mac, src_mac, ethernet.ETHERTYPE_IPV4) + ipv4.build_header(
        src, dst, proto, len(payload), ident=ident, ttl=ttl, tos=tos, flags_offset=fo)


@given(ipv4_addrs, ipv4_addrs, raw_protocols, payloads, u16, u8, u8, flags_offsets)
@example(0, 0, 0, b"", 0, 0, 0, 0)
@example(0xFFFFFFFF, 0xFFFFFFFF, 0xFF, b"\xff" * 1480, 0xFFFF, 0xFF, 0xFF, 0x7FFF)
@PROPERTY
def test_build_header_without_options_equals_dpkts_header(
    src: int, dst: int, proto: int, payload: bytes, ident: int, ttl: int, tos: int, fo: int
) -> None:
    """build_header takes a shortcut when there are no options (checksum summed from the fields):
    the 20 bytes must still be exactly those dpkt builds for the same datagram."""
    ip = dpkt.ip.IP(src=src.to_bytes(4, "big"), dst=dst.to_bytes(4, "big"), p=proto, id=ident, ttl=ttl, tos=tos,
                    data=payload)
    ip.df, ip.mf, ip.offset = (fo >> 14) & 1, (fo >> 13) & 1, fo & 0x1FFF
    theirs = bytes(ip)
    ours = ipv4.build_header(src, dst, proto, len(payload), ident=ident, ttl=ttl, tos=tos, flags_offset=fo)
    assert ours == theirs[:MIN_HEADER_LEN]
    assert ipv4.build(src, dst, proto, payload, ident=ident, ttl=ttl, tos=tos, flags_offset=fo) == theirs
