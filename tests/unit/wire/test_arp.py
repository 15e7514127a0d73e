"""ARP for IPv4 over Ethernet (RFC 826): round trips, dpkt both ways, every malformed field."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import arp, ethernet
from pystack.wire.arp import OP_REPLY, OP_REQUEST, PACKET_LEN

from .reference import FUZZ, PROPERTY, ipv4_addrs, macs, parses_or_rejects, rejects

ops = st.sampled_from([OP_REQUEST, OP_REPLY])
MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
IP_A = 0xC0000201  # 192.0.2.1
IP_B = 0xC0000202  # 192.0.2.2
VALID = arp.build(OP_REQUEST, MAC_A, IP_A, b"\x00" * 6, IP_B)


def _fields(htype: int = 1, ptype: int = 0x0800, hlen: int = 6, plen: int = 4, op: int = OP_REQUEST) -> bytes:
    """A 28-byte packet with the given fixed fields; hand-packed so it does not rely on arp.build."""
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + MAC_A + IP_A.to_bytes(4, "big") + MAC_B + IP_B.to_bytes(4, "big")


def test_layout_is_rfc826() -> None:
    assert len(VALID) == PACKET_LEN == 28
    assert VALID == _fields()[:18] + b"\x00" * 6 + IP_B.to_bytes(4, "big")
    assert arp.parse(_fields(op=OP_REPLY)) == (OP_REPLY, MAC_A, IP_A, MAC_B, IP_B)


@given(ops, macs, ipv4_addrs, macs, ipv4_addrs)
@PROPERTY
def test_build_parse_round_trip(op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> None:
    packet = arp.build(op, sha, spa, tha, tpa)
    parsed = arp.parse(packet)
    assert parsed == (op, sha, spa, tha, tpa)
    assert (parsed.op, parsed.sender_mac, parsed.sender_ip, parsed.target_mac, parsed.target_ip) == (op, sha, spa, tha, tpa)
    assert arp.build(*parsed) == packet
    assert arp.parse(memoryview(packet)) == parsed


@given(ops, macs, ipv4_addrs, macs, ipv4_addrs, st.binary(max_size=32))
@PROPERTY
def test_trailing_ethernet_padding_is_ignored(op: int, sha: bytes, spa: int, tha: bytes, tpa: int, pad: bytes) -> None:
    packet = arp.build(op, sha, spa, tha, tpa)
    assert arp.parse(packet + pad) == arp.parse(packet)


def test_minimum_ethernet_frame_round_trip() -> None:
    # A reply as a kernel sends it: 42 bytes, padded to 60 on the wire; parse through Ethernet.
    frame = ethernet.build(MAC_A, MAC_B, ethernet.ETHERTYPE_ARP, arp.build(OP_REPLY, MAC_B, IP_B, MAC_A, IP_A)) + bytes(18)
    assert len(frame) == 60
    assert arp.parse(ethernet.parse(frame).payload) == (OP_REPLY, MAC_B, IP_B, MAC_A, IP_A)


@given(ops, macs, ipv4_addrs, macs, ipv4_addrs)
@PROPERTY
def test_ours_parsed_by_dpkt(op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> None:
    pkt = dpkt.arp.ARP(arp.build(op, sha, spa, tha, tpa))
    assert (pkt.hrd, pkt.pro, pkt.hln, pkt.pln) == (dpkt.arp.ARP_HRD_ETH, dpkt.arp.ARP_PRO_IP, 6, 4)
    assert (pkt.op, pkt.sha, pkt.spa, pkt.tha, pkt.tpa) == (op, sha, spa.to_bytes(4, "big"), tha, tpa.to_bytes(4, "big"))


@given(ops, macs, ipv4_addrs, macs, ipv4_addrs)
@PROPERTY
def test_dpkt_parsed_by_ours(op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> None:
    raw = bytes(dpkt.arp.ARP(op=op, sha=sha, spa=spa.to_bytes(4, "big"), tha=tha, tpa=tpa.to_bytes(4, "big")))
    assert arp.parse(raw) == (op, sha, spa, tha, tpa)
    assert arp.build(op, sha, spa, tha, tpa) == raw


def test_dpkt_ethernet_frame_parsed_by_ours() -> None:
    pkt = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=MAC_A, spa=IP_A.to_bytes(4, "big"), tha=bytes(6), tpa=IP_B.to_bytes(4, "big"))
    frame = bytes(dpkt.ethernet.Ethernet(dst=ethernet.BROADCAST, src=MAC_A, type=dpkt.ethernet.ETH_TYPE_ARP, data=pkt))
    eth = ethernet.parse(frame)
    assert eth.ethertype == ethernet.ETHERTYPE_ARP and eth.dst == ethernet.BROADCAST
    assert arp.parse(eth.payload) == (OP_REQUEST, MAC_A, IP_A, bytes(6), IP_B)


@pytest.mark.parametrize("cut", range(PACKET_LEN))
def test_truncated_at_every_offset(cut: int) -> None:
    rejects(arp.parse, VALID[:cut], {"arp.truncated"})
    rejects(arp.parse, memoryview(VALID)[:cut], {"arp.truncated"})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"htype": 0}, "arp.unsupported"),
        ({"htype": 6}, "arp.unsupported"),  # IEEE 802 networks
        ({"htype": 0x0100}, "arp.unsupported"),  # byte-swapped Ethernet
        ({"ptype": 0x86DD}, "arp.unsupported"),
        ({"ptype": 0x0008}, "arp.unsupported"),
        ({"ptype": 0}, "arp.unsupported"),
        ({"hlen": 0}, "arp.unsupported"),
        ({"hlen": 8}, "arp.unsupported"),
        ({"hlen": 255}, "arp.unsupported"),
        ({"plen": 0}, "arp.unsupported"),
        ({"plen": 16}, "arp.unsupported"),
        ({"op": 0}, "arp.bad_op"),
        ({"op": 3}, "arp.bad_op"),  # RARP request
        ({"op": 4}, "arp.bad_op"),  # RARP reply
        ({"op": 8}, "arp.bad_op"),  # InARP
        ({"op": 0x0100}, "arp.bad_op"),  # byte-swapped request
        ({"op": 0xFFFF}, "arp.bad_op"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(f"{k}={x:#x}" for k, x in v.items()),
)
def test_bad_fixed_fields(fields: dict[str, int], reason: str) -> None:
    rejects(arp.parse, _fields(**fields), {reason})
    # Still refused when the frame carries Ethernet padding after it.
    rejects(arp.parse, _fields(**fields) + bytes(18), {reason})


@pytest.mark.parametrize("op", [OP_REQUEST, OP_REPLY])
def test_good_fixed_fields_for_contrast(op: int) -> None:
    assert arp.parse(_fields(op=op)).op == op


@pytest.mark.parametrize("bit", range(8 * 8))
def test_every_bit_flip_in_the_fixed_fields_is_refused(bit: int) -> None:
    # Bytes 0..7 are htype, ptype, hlen, plen, op. One flipped bit never yields another valid packet:
    # request (0x0001) and reply (0x0002) differ in two bits.
    bad = bytearray(VALID)
    bad[bit // 8] ^= 0x80 >> (bit % 8)
    rejects(arp.parse, bytes(bad), {"arp.unsupported", "arp.bad_op"})


@given(st.binary(max_size=64))
@FUZZ
def test_random_bytes_never_raise_anything_but_wire_error(data: bytes) -> None:
    parses_or_rejects(arp.parse, data, "arp")
