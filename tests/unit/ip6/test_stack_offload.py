"""Segmentation and checksum offload for IPv6: TCP over IPv6 sends super-frames the link cuts
(VIRTIO_NET_HDR_GSO_TCPV6), each piece a verifiable wire segment; the virtio header the TAP writes lets
the kernel finish every checksum; partial-checksum IPv6 frames from the kernel are marked and trusted,
and completing one gives what every parser verifies."""

from __future__ import annotations

import random

import dpkt
import pytest

from pystack.link.tap import TapLink
from pystack.wire import ethernet, ipv6, tcp, udp
from pystack.wire.checksum import pseudo_header_sum6
from pystack.wire.gso import GsoFrame, segment
from pystack.wire.virtio import (GSO_TCPV6, NEEDS_CSUM, PartialChecksumFrame, build_header, complete_checksum,
                                 finish_checksum, parse_header)

from stack.conftest import connected, transfer

from .stack_pair import A6, B6, make_pair6


def test_tcp_over_ipv6_sends_super_frames_that_cut_into_wire_segments() -> None:
    a, b, wire = make_pair6()
    b.enable_segmentation_offload()
    client, server = connected(a, b, wire, ipv6=True)
    data = random.Random(2).randbytes(200_000)
    assert transfer(server, client, wire, data) == data
    supers = [f for _t, s, f in wire.log if s == 1 and type(f) is GsoFrame]
    assert supers and max(len(f) for f in supers) > 1514
    for frame in supers:
        assert frame[12:14] == b"\x86\xdd"
        for piece in segment(frame, frame.gso_size):
            assert len(piece) <= 1514
            pkt = ipv6.parse(memoryview(piece)[14:])
            assert len(pkt.datagram) == len(piece) - 14  # the payload length was set for the piece
            tcp.parse(pkt.payload, pkt.src, pkt.dst)  # its checksum verifies
            ip = dpkt.ip6.IP6(bytes(pkt.datagram))
            ours, ip.data.sum = ip.data.sum, 0
            assert dpkt.ip6.IP6(bytes(ip)).data.sum == ours
    assert b.counters["gso_frames_out"] == len(supers)


def test_the_tap_asks_the_kernel_to_cut_an_ipv6_super_frame() -> None:
    """The virtio header says GSO_TCPV6 from byte 54, and the checksum field holds the pseudo-header sum,
    so that the kernel finishing each piece's checksum gets it right."""
    payload = bytes(range(256)) * 20
    seg = tcp.build(A6, B6, 80, 40000, 1, 2, tcp.ACK | tcp.PSH, 500, payload=payload, checksum=False)
    frame = GsoFrame(ethernet.build(b"\x02" * 6, b"\x04" * 6, ethernet.ETHERTYPE_IPV6,
                                    ipv6.build(A6, B6, ipv6.NH_TCP, seg)), 1440)
    parts = TapLink._gso_parts(frame)
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = parse_header(parts[0])
    assert (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) == (NEEDS_CSUM, GSO_TCPV6, 74, 1440, 54, 16)
    written = b"".join(bytes(p) for p in parts[1:])
    assert int.from_bytes(written[70:72], "big") == pseudo_header_sum6(A6, B6, 6, len(seg))
    whole = ipv6.parse(finish_checksum(written, csum_start, csum_offset)[14:])
    tcp.parse(whole.payload, whole.src, whole.dst)  # what the kernel's finishing gives verifies


def _partial(segment_bytes: bytes, next_header: int, field: int) -> bytes:
    """An IPv6 frame as the kernel hands it over with TUN_F_CSUM: the pseudo-header sum in the field."""
    seg = bytearray(segment_bytes)
    seg[field:field + 2] = pseudo_header_sum6(B6, A6, next_header, len(seg)).to_bytes(2, "big")
    return ethernet.build(b"\x02" * 6, b"\x04" * 6, ethernet.ETHERTYPE_IPV6, ipv6.build(B6, A6, next_header, bytes(seg)))


def _from_vnet(frame: bytes, csum_start: int, csum_offset: int) -> bytes:
    link = object.__new__(TapLink)
    link.vnet = True
    link.partial_checksum_frames = 0
    link.super_frames = 0
    return link._from_vnet(build_header(NEEDS_CSUM, 0, 0, 0, csum_start, csum_offset) + frame)


@pytest.mark.parametrize("size", [0, 1000, 60000])
def test_a_partial_ipv6_tcp_frame_is_marked_and_completes_to_a_verifying_one(size: int) -> None:
    seg = tcp.build(B6, A6, 40000, 80, 1, 2, tcp.ACK, 500, payload=b"\xab" * size, checksum=False)
    marked = _from_vnet(_partial(seg, ipv6.NH_TCP, 16), 54, 16)
    assert type(marked) is PartialChecksumFrame
    pkt = ipv6.parse(complete_checksum(marked)[14:])
    tcp.parse(pkt.payload, pkt.src, pkt.dst)


def test_a_udp_checksum_that_sums_to_zero_is_sent_as_all_ones_over_ipv6_too() -> None:
    """RFC 8200 8.1: a UDP checksum is never 0 over IPv6 (0 would mean none, which IPv6 forbids)."""
    for port in range(1, 65536):  # find a datagram whose checksum computes to zero
        body = port.to_bytes(2, "big") + b"\x00\x07" + (10).to_bytes(2, "big") + b"\x00\x00" + b"hi"
        frame = _partial(body, ipv6.NH_UDP, 6)
        done = finish_checksum(frame, 54, 6)
        if done[60:62] == b"\xff\xff":
            pkt = ipv6.parse(done[14:])
            udp.parse(pkt.payload, pkt.src, pkt.dst)
            return
    pytest.fail("no source port made the checksum zero")
