"""The virtio-net header (virtio 1.1 section 5.1.6) that a TAP with IFF_VNET_HDR puts before each frame.

It says whether the transport checksum is left partial (``NEEDS_CSUM``: the field holds the
pseudo-header sum and must be finished over ``csum_start``..end, stored at ``csum_start +
csum_offset``) and whether the frame is a segmentation offload "super-frame" (``gso_type``) to be cut
into ``gso_size`` pieces. Fields are little-endian (a legacy TAP on a little-endian host).
"""

from __future__ import annotations

import struct

from pystack.wire.checksum import internet_checksum

HEADER_LEN = 10
NEEDS_CSUM = 0x01
DATA_VALID = 0x02
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_ECN = 0x80

_HEADER = struct.Struct("<BBHHHH")


def parse_header(data: bytes | memoryview) -> tuple[int, int, int, int, int, int]:
    """(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)."""
    return _HEADER.unpack_from(data)


def build_header(flags: int = 0, gso_type: int = GSO_NONE, hdr_len: int = 0, gso_size: int = 0,
                 csum_start: int = 0, csum_offset: int = 0) -> bytes:
    return _HEADER.pack(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


class PartialChecksumFrame(bytes):
    """A TCP or UDP frame (over IPv4, or IPv6 without extension headers) from the kernel whose transport
    checksum is left partial (``NEEDS_CSUM``).

    It never crossed a wire: the kernel built it in memory, so its integrity needs no proof and the stack
    skips verifying the transport checksum (which would cost as much as the rest of the receive path for
    a 64 KiB segment). :func:`complete_checksum` finishes it where a whole frame is wanted (the pcap).

    Where the checksum starts and sits follows from the frame (:func:`checksum_layout`); the link marks
    only frames whose virtio header says the same. No attributes of its own: every TCP segment from the
    kernel is one, and a subclass instance with a ``__dict__`` costs three times a plain copy to make.
    """

    __slots__ = ()


def checksum_layout(frame: bytes | memoryview, link_len: int = 14) -> tuple[int, int] | None:
    """(csum_start, csum_offset) of an IPv4 TCP or UDP frame's transport checksum, or of an IPv6 one whose
    transport header follows the fixed header, else None. ``link_len``: 14 for an Ethernet frame, 0 for
    the IP medium's bare packet (pystack.medium)."""
    if not link_len:
        return _packet_checksum_layout(frame)
    if len(frame) < 34:
        return None
    if frame[12:14] != b"\x08\x00":
        if frame[12:14] != b"\x86\xdd" or len(frame) < 54 or (frame[20] != 6 and frame[20] != 17):
            return None
        return 54, 16 if frame[20] == 6 else 6
    proto = frame[23]
    if proto != 6 and proto != 17:
        return None
    return 14 + (frame[14] & 0x0F) * 4, 16 if proto == 6 else 6


def _packet_checksum_layout(packet: bytes | memoryview) -> tuple[int, int] | None:
    """checksum_layout of a bare IPv4 or IPv6 packet."""
    if len(packet) < 20:
        return None
    version = packet[0] >> 4
    if version == 4:
        start, proto = (packet[0] & 0x0F) * 4, packet[9]
    elif version == 6 and len(packet) >= 40:
        start, proto = 40, packet[6]
    else:
        return None
    if proto != 6 and proto != 17:
        return None
    return start, 16 if proto == 6 else 6


def _is_udp(frame: bytes | memoryview, link_len: int) -> bool:
    if not link_len:
        return len(frame) > 9 and (frame[9] == 17 if frame[0] >> 4 == 4 else frame[0] >> 4 == 6 and frame[6] == 17)
    return len(frame) > 23 and (
        frame[23] == 17 if frame[12:14] == b"\x08\x00" else frame[12:14] == b"\x86\xdd" and frame[20] == 17)


def finish_checksum(frame: bytes | memoryview, csum_start: int, csum_offset: int, link_len: int = 14) -> bytes:
    """``frame`` with its partial checksum finished over csum_start.. (virtio 1.1, 5.1.6.2)."""
    out = bytearray(frame)
    csum = internet_checksum(memoryview(out)[csum_start:])
    if csum == 0 and csum_offset == 6 and _is_udp(out, link_len):
        csum = 0xFFFF  # RFC 768 (and RFC 8200 8.1 for IPv6): UDP sends a computed zero as all ones
    struct.pack_into("!H", out, csum_start + csum_offset, csum)
    return bytes(out)


def complete_checksum(frame: PartialChecksumFrame, link_len: int = 14) -> bytes:
    """The marked frame with its checksum finished, where its layout puts it."""
    layout = checksum_layout(frame, link_len)
    assert layout is not None, "only TCP and UDP frames are marked partial"
    return finish_checksum(frame, *layout, link_len)
