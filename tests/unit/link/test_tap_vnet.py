"""Frames read from a TAP with a virtio-net header: partial-checksum frames are marked (the stack
trusts them; the pcap completes them), and completing one gives a frame every parser verifies (no
device needed: the header handling is pure)."""

from __future__ import annotations

import pytest

from pystack.link.tap import TapLink
from pystack.wire import ethernet, ipv4, tcp, udp
from pystack.wire.checksum import pseudo_header_sum
from pystack.wire.virtio import GSO_TCPV4, NEEDS_CSUM, PartialChecksumFrame, build_header, complete_checksum

SRC, DST = ipv4.addr_to_int("192.0.2.1"), ipv4.addr_to_int("192.0.2.2")


def _link() -> TapLink:
    link = object.__new__(TapLink)
    link.vnet = True
    link.partial_checksum_frames = 0
    link.super_frames = 0
    return link


def _partial(segment: bytes, proto: int, field: int) -> bytes:
    """What the kernel hands over with TUN_F_CSUM: the folded pseudo-header sum where the checksum goes."""
    partial = pseudo_header_sum(SRC, DST, proto, len(segment))
    partial = (partial & 0xFFFF) + (partial >> 16)
    seg = bytearray(segment)
    seg[field:field + 2] = partial.to_bytes(2, "big")
    return bytes(seg)


@pytest.mark.parametrize("size", [0, 1, 1448, 60000])
def test_partial_tcp_checksum_is_completed_and_verifies(size):
    good = tcp.build(SRC, DST, 40000, 80, 1000, 2000, tcp.ACK, 65535, payload=b"\xab" * size)
    seg = _partial(bytes(good[:16]) + b"\0\0" + bytes(good[18:]), 6, 16)
    frame = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4.build(SRC, DST, 6, seg))
    hdr = build_header(NEEDS_CSUM, GSO_TCPV4 if size > 1448 else 0, 54, 1448, 34, 16)
    marked = _link()._from_vnet(hdr + frame)
    assert type(marked) is PartialChecksumFrame and bytes(marked) == frame
    out = complete_checksum(marked)
    ip = ipv4.parse(memoryview(out)[14:])
    parsed = tcp.parse(ip.payload, ip.src, ip.dst)
    assert bytes(parsed.payload) == b"\xab" * size
    assert bytes(out) == frame[:50] + good[16:18] + frame[52:]


def test_partial_udp_checksum_is_completed_and_verifies():
    good = udp.build(SRC, DST, 5000, 7, b"hello")
    seg = _partial(good[:6] + b"\0\0" + good[8:], 17, 6)
    frame = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4.build(SRC, DST, 17, seg))
    out = complete_checksum(_link()._from_vnet(build_header(NEEDS_CSUM, 0, 0, 0, 34, 6) + frame))
    ip = ipv4.parse(memoryview(out)[14:])
    assert bytes(udp.parse(ip.payload, ip.src, ip.dst).payload) == b"hello"


def test_frame_without_offload_flags_passes_unchanged():
    frame = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0806, bytes(28))
    assert bytes(_link()._from_vnet(build_header() + frame)) == frame


def test_nonsense_checksum_offsets_do_not_raise():
    frame = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, bytes(20))
    assert bytes(_link()._from_vnet(build_header(NEEDS_CSUM, 0, 0, 0, 60000, 16) + frame)) == frame


def test_a_partial_checksum_elsewhere_than_pystack_would_look_is_finished_at_once():
    """The stack trusts a marked frame at the layout checksum_layout derives; a kernel header that says
    otherwise gets its checksum finished by the link, and a plain frame that verifies goes up."""
    good = udp.build(SRC, DST, 5000, 7, b"hello")
    seg = _partial(good[:6] + b"\0\0" + good[8:], 17, 6)
    frame = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4.build(SRC, DST, 17, seg))
    link = _link()
    out = link._from_vnet(build_header(NEEDS_CSUM, 0, 0, 0, 34, 6) + frame)
    assert type(out) is PartialChecksumFrame
    # The same checksum, but announced from the IPv4 header on (a start pystack would not derive).
    sum_from_ip = bytearray(frame)
    sum_from_ip[40:42] = b"\0\0"
    out = link._from_vnet(build_header(NEEDS_CSUM, 0, 0, 0, 14, 26) + bytes(sum_from_ip))
    assert type(out) is bytes and out[:40] == frame[:40] and out[42:] == frame[42:]
    assert link.partial_checksum_frames == 2


def test_stack_accepts_a_partial_checksum_frame_and_rejects_the_same_bytes_as_a_plain_frame():
    """The kernel's partial checksum only passes when the link says it came from the kernel."""
    from pystack.stack import Stack

    stack = Stack(b"\x02" * 6)
    stack.configure(DST, 24, None, 0.0)
    listener = stack.tcp.listen(0, 80, 4)
    syn = tcp.build(SRC, DST, 40000, 80, 1000, 0, tcp.SYN, 65535, options=tcp.build_options(mss=1460))
    seg = _partial(bytes(syn[:16]) + b"\0\0" + bytes(syn[18:]), 6, 16)
    frame = ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4.build(SRC, DST, 6, seg))
    stack.receive_frame(frame, 1.0)
    assert stack.counters["drop.tcp.bad_checksum"] == 1
    stack.receive_frame(PartialChecksumFrame(frame), 1.0)
    assert listener.half_open == 1
