"""Ethernet II frames: round trips, dpkt both ways, 802.3 length frames and truncation."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import ethernet
from pystack.wire.ethernet import HEADER_LEN

from .reference import FUZZ, PROPERTY, macs, parses_or_rejects, payloads, rejects

# EtherTypes dpkt decodes specially (VLAN tags, MPLS labels) would change its view of the type field.
_DPKT_SPECIAL = {0x8100, 0x88A8, 0x9100, 0x9200, 0x8847, 0x8848}
ethertypes = st.integers(min_value=0x0600, max_value=0xFFFF)
plain_ethertypes = ethertypes.filter(lambda t: t not in _DPKT_SPECIAL and t not in dpkt.ethernet.Ethernet._typesw)

DST = bytes.fromhex("02000000000a")
SRC = bytes.fromhex("02000000000b")


@given(macs, macs, ethertypes, payloads)
@PROPERTY
def test_build_parse_round_trip(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> None:
    frame = ethernet.build(dst, src, ethertype, payload)
    assert len(frame) == HEADER_LEN + len(payload)
    parsed = ethernet.parse(frame)
    assert (parsed.dst, parsed.src, parsed.ethertype, bytes(parsed.payload)) == (dst, src, ethertype, payload)
    # parse -> build gives back the bytes, and header() is the first 14 of them.
    assert ethernet.build(parsed.dst, parsed.src, parsed.ethertype, parsed.payload) == frame
    assert ethernet.header(dst, src, ethertype) + payload == frame


@given(macs, macs, ethertypes, payloads)
@PROPERTY
def test_parse_memoryview_is_zero_copy(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> None:
    buf = bytearray(ethernet.build(dst, src, ethertype, payload))
    parsed = ethernet.parse(memoryview(buf))
    assert isinstance(parsed.payload, memoryview)
    assert parsed == ethernet.parse(bytes(buf))
    if payload:
        buf[HEADER_LEN] ^= 0xFF  # the payload is a view of the caller's buffer, not a copy
        assert parsed.payload[0] == payload[0] ^ 0xFF


@given(macs, macs, plain_ethertypes, payloads)
@PROPERTY
def test_ours_parsed_by_dpkt(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> None:
    eth = dpkt.ethernet.Ethernet(ethernet.build(dst, src, ethertype, payload))
    assert (eth.dst, eth.src, eth.type, bytes(eth.data)) == (dst, src, ethertype, payload)


@given(macs, macs, plain_ethertypes, payloads)
@PROPERTY
def test_dpkt_parsed_by_ours(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> None:
    frame = bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=ethertype, data=payload))
    parsed = ethernet.parse(frame)
    assert (parsed.dst, parsed.src, parsed.ethertype, bytes(parsed.payload)) == (dst, src, ethertype, payload)


@pytest.mark.parametrize("ethertype", [ethernet.ETHERTYPE_IPV4, ethernet.ETHERTYPE_ARP, ethernet.ETHERTYPE_IPV6])
def test_known_ethertypes_agree_with_dpkt(ethertype: int) -> None:
    assert ethertype in dpkt.ethernet.Ethernet._typesw
    assert {ethernet.ETHERTYPE_IPV4: dpkt.ethernet.ETH_TYPE_IP, ethernet.ETHERTYPE_ARP: dpkt.ethernet.ETH_TYPE_ARP,
            ethernet.ETHERTYPE_IPV6: dpkt.ethernet.ETH_TYPE_IP6}[ethertype] == ethertype


@pytest.mark.parametrize("cut", range(HEADER_LEN))
def test_truncated_at_every_header_offset(cut: int) -> None:
    frame = ethernet.build(DST, SRC, ethernet.ETHERTYPE_IPV4, bytes(range(46)))
    rejects(ethernet.parse, frame[:cut], {"ethernet.truncated"})
    rejects(ethernet.parse, memoryview(frame)[:cut], {"ethernet.truncated"})


def test_header_only_frame_has_empty_payload() -> None:
    parsed = ethernet.parse(ethernet.header(DST, SRC, 0x88B5))
    assert len(parsed.payload) == 0


@pytest.mark.parametrize("length_field", [0x0000, 0x0001, 0x002E, 0x05DC, 0x05DD, 0x05FF])
def test_8023_length_frames_are_refused(length_field: int) -> None:
    # IEEE 802.3 length field (<= 1500) or the undefined 1501..1535: LLC frames, not Ethernet II.
    frame = ethernet.build(DST, SRC, length_field, bytes.fromhex("aaaa03000000") + bytes(40))
    rejects(ethernet.parse, frame, {"ethernet.not_ethernet_ii"})


def test_dpkt_built_8023_llc_frame_is_refused() -> None:
    llc = dpkt.llc.LLC(dsap=0x42, ssap=0x42, ctl=3, data=bytes(35))  # spanning tree BPDU shape
    frame = bytes(dpkt.ethernet.Ethernet(dst=bytes.fromhex("0180c2000000"), src=SRC, data=llc))
    assert int.from_bytes(frame[12:14], "big") <= 1500  # dpkt wrote a length, not a type
    rejects(ethernet.parse, frame, {"ethernet.not_ethernet_ii"})


def test_lowest_ethertype_is_accepted() -> None:
    assert ethernet.parse(ethernet.build(DST, SRC, 0x0600, b"x")).ethertype == 0x0600


@given(st.binary(max_size=100))
@FUZZ
def test_random_bytes_never_raise_anything_but_wire_error(data: bytes) -> None:
    parses_or_rejects(ethernet.parse, data, "ethernet")


@pytest.mark.parametrize(
    ("mac", "multicast"),
    [(ethernet.BROADCAST, True), (bytes.fromhex("01005e000001"), True), (bytes.fromhex("333300000001"), True),
     (bytes.fromhex("020000000001"), False), (bytes.fromhex("fe0000000000"), False)],
)
def test_is_multicast(mac: bytes, multicast: bool) -> None:
    assert ethernet.is_multicast(mac) is multicast


@given(macs)
@PROPERTY
def test_mac_text_round_trip(mac: bytes) -> None:
    text = ethernet.mac_to_str(mac)
    assert text == mac.hex(":")
    assert ethernet.mac_from_str(text) == mac
    assert ethernet.mac_from_str(text.upper()) == mac


@pytest.mark.parametrize("text", ["", "02:00:00:00:00", "02:00:00:00:00:00:00", "02:00:00:00:00:zz", "02:00:00:00:00:100"])
def test_mac_from_bad_text(text: str) -> None:
    with pytest.raises(ValueError):
        ethernet.mac_from_str(text)
