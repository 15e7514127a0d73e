"""The virtio-net header on a TUN: the same offloads as a TAP's, found at the IP header (no Ethernet
header before it). Pure header handling, no device: partial checksums of bare packets are marked and
complete to what every parser verifies, super-packets are cut into wire packets like the Ethernet ones,
and the header written for one asks the kernel to start the checksum at the IP header's end."""

from __future__ import annotations

import dpkt
import pytest

from pystack.link.tun import TunLink
from pystack.wire import ethernet, ipv4, tcp, udp
from pystack.wire.checksum import pseudo_header_sum
from pystack.wire.gso import GsoFrame, segment
from pystack.wire.virtio import (GSO_TCPV4, NEEDS_CSUM, PartialChecksumFrame, build_header, complete_checksum,
                                 parse_header)

SRC, DST = ipv4.addr_to_int("192.0.2.1"), ipv4.addr_to_int("192.0.2.2")


def _link() -> TunLink:
    link = object.__new__(TunLink)
    link.vnet = True
    link.partial_checksum_frames = 0
    link.super_frames = 0
    return link


def _partial(segment_bytes: bytes, proto: int, field: int) -> bytes:
    """What the kernel hands over with TUN_F_CSUM: the folded pseudo-header sum where the checksum goes."""
    partial = pseudo_header_sum(SRC, DST, proto, len(segment_bytes))
    partial = (partial & 0xFFFF) + (partial >> 16)
    seg = bytearray(segment_bytes)
    seg[field:field + 2] = partial.to_bytes(2, "big")
    return bytes(seg)


@pytest.mark.parametrize("size", [0, 1448, 60000])
def test_a_partial_tcp_checksum_of_a_bare_packet_is_marked_and_completes(size: int) -> None:
    good = tcp.build(SRC, DST, 40000, 80, 1000, 2000, tcp.ACK, 65535, payload=b"\xab" * size)
    packet = ipv4.build(SRC, DST, 6, _partial(bytes(good[:16]) + b"\0\0" + bytes(good[18:]), 6, 16))
    hdr = build_header(NEEDS_CSUM, GSO_TCPV4 if size > 1448 else 0, 40, 1448, 20, 16)
    link = _link()
    marked = link._from_vnet(hdr + packet)
    assert type(marked) is PartialChecksumFrame and bytes(marked) == packet
    out = complete_checksum(marked, link.link_len)
    assert out == packet[:36] + good[16:18] + packet[38:]
    assert dpkt.ip.IP(out).data.sum == int.from_bytes(good[16:18], "big")
    assert link.super_frames == (1 if size > 1448 else 0)


def test_a_partial_udp_checksum_elsewhere_than_pystack_would_look_is_finished_at_once() -> None:
    good = udp.build(SRC, DST, 5000, 7, b"hello")
    packet = ipv4.build(SRC, DST, 17, _partial(good[:6] + b"\0\0" + good[8:], 17, 6))
    link = _link()
    assert type(link._from_vnet(build_header(NEEDS_CSUM, 0, 0, 0, 20, 6) + packet)) is PartialChecksumFrame
    # The same sum announced from the IPv4 header's source address on: finished by the link, plain bytes.
    from_ip = bytearray(packet)
    from_ip[26:28] = b"\0\0"
    out = link._from_vnet(build_header(NEEDS_CSUM, 0, 0, 0, 12, 14) + bytes(from_ip))
    assert type(out) is bytes and out[:26] == packet[:26] and out[28:] == packet[28:]


def test_a_super_packet_is_written_with_the_checksum_started_at_the_ip_header_end() -> None:
    seg = tcp.build(SRC, DST, 80, 40000, 5, 7, tcp.ACK, 512, payload=bytes(5000))
    packet = GsoFrame(ipv4.build(SRC, DST, 6, seg, ident=9, flags_offset=ipv4.FLAG_DF), 1448)
    header, *parts = TunLink._gso_parts(packet, TunLink.link_len)
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = parse_header(header)
    assert (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) == (NEEDS_CSUM, GSO_TCPV4, 40, 1448, 20, 16)
    assert b"".join(bytes(p) for p in parts)[:36] == packet[:36]


def test_a_super_packet_cuts_into_the_ethernet_super_frames_pieces_without_their_header() -> None:
    seg = tcp.build(SRC, DST, 80, 40000, 0xFFFFF000, 7, tcp.ACK | tcp.PSH, 512, payload=bytes(range(256)) * 40)
    packet = ipv4.build(SRC, DST, 6, seg, ident=100, flags_offset=ipv4.FLAG_DF)
    framed = segment(ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, packet), 1448)
    bare = segment(packet, 1448, 0)
    assert len(bare) == 8 and bare == [piece[14:] for piece in framed]
