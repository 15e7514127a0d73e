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
    """A frame from the kernel whose TCP/UDP checksum is left partial (``NEEDS_CSUM``).

    It never crossed a wire: the kernel built it in memory, so its integrity needs no proof and the stack
    skips verifying the transport checksum (which would cost as much as the rest of the receive path for
    a 64 KiB segment). :func:`complete_checksum` finishes it where a whole frame is wanted (the pcap).
    """

    csum_start: int
    csum_offset: int

    def __new__(cls, data: bytes | memoryview, csum_start: int, csum_offset: int) -> PartialChecksumFrame:
        obj = super().__new__(cls, data)
        obj.csum_start = csum_start
        obj.csum_offset = csum_offset
        return obj


def complete_checksum(frame: PartialChecksumFrame) -> bytes:
    """The frame with its checksum finished over csum_start.. (virtio 1.1, 5.1.6.2)."""
    out = bytearray(frame)
    field = frame.csum_start + frame.csum_offset
    csum = internet_checksum(memoryview(out)[frame.csum_start:])
    if out[23] == 17 and csum == 0:
        csum = 0xFFFF  # RFC 768: UDP sends a computed zero as all ones
    struct.pack_into("!H", out, field, csum)
    return bytes(out)
