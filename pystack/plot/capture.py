"""Reading a capture: the classic pcap format (micro- or nanosecond, either byte order) and pcapng
(Enhanced and Simple Packet Blocks, each interface's time resolution, frame comments and directions).

Only Ethernet frames are kept (LINKTYPE_ETHERNET); a damaged file ends the reading with CaptureError
saying where, after the frames before the damage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator

LINKTYPE_ETHERNET = 1
MAX_BLOCK = 16 << 20
"""Largest pcapng block or pcap record taken (a frame is at most 256 KiB; the rest is options)."""


class CaptureError(ValueError):
    """Not a capture, or a damaged one: one line for the user."""


@dataclass(frozen=True)
class Frame:
    time: float
    """Seconds since the epoch."""
    data: bytes
    comment: str | None = None
    outbound: bool | None = None
    """pcapng epb_flags direction: True sent, False received, None unknown."""


def read_capture(path: str) -> Iterator[Frame]:
    """The Ethernet frames of the capture at ``path``, in file order."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        head = fh.read(4)
        if head == b"\x0a\x0d\x0d\x0a":
            yield from _pcapng(fh, path)
        elif head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            yield from _pcap(fh, head, path)
        else:
            raise CaptureError(f"{path} is neither a pcap nor a pcapng capture")


def _pcap(fh: BinaryIO, magic: bytes, path: str) -> Iterator[Frame]:
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    rest = fh.read(20)
    if len(rest) < 20:
        raise CaptureError(f"{path}: the pcap header is cut short")
    linktype = struct.unpack(order + "HHiIII", rest)[5] & 0x0FFFFFFF
    if linktype != LINKTYPE_ETHERNET:
        raise CaptureError(f"{path}: link type {linktype}, not Ethernet")
    record = struct.Struct(order + "IIII")
    while True:
        head = fh.read(16)
        if not head:
            return
        if len(head) < 16:
            raise CaptureError(f"{path}: a record header is cut short at byte {fh.tell() - len(head)}")
        sec, frac, captured, _length = record.unpack(head)
        if captured > MAX_BLOCK:
            raise CaptureError(f"{path}: a record of {captured} bytes at byte {fh.tell() - 16}")
        data = fh.read(captured)
        if len(data) < captured:
            raise CaptureError(f"{path}: the last frame is cut short")
        yield Frame(sec + frac * scale, data)


def _options(body: bytes, order: str) -> Iterator[tuple[int, bytes]]:
    """(code, value) of a pcapng options list, up to opt_endofopt."""
    i = 0
    while i + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, i)
        if code == 0:
            return
        yield code, body[i + 4:i + 4 + length]
        i += 4 + length + (-length % 4)


def _pcapng(fh: BinaryIO, path: str) -> Iterator[Frame]:
    order = "<"
    resolutions: list[float] = []  # seconds per timestamp unit, by interface
    linktypes: list[int] = []
    block_type = 0x0A0D0D0A
    first = True
    while True:
        if first:
            head = b"\x0a\x0d\x0d\x0a" + fh.read(8)
            first = False
        else:
            head = fh.read(12)
            if not head:
                return
        if len(head) < 12:
            raise CaptureError(f"{path}: a block header is cut short")
        if head[:4] == b"\x0a\x0d\x0d\x0a":  # a section header: its byte order magic tells the order
            order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">" if head[8:12] == b"\x1a\x2b\x3c\x4d" else ""
            if not order:
                raise CaptureError(f"{path}: a section header without a byte order magic")
            resolutions, linktypes = [], []
        block_type, total = struct.unpack(order + "II", head[:8])
        if total < 12 or total % 4 or total > MAX_BLOCK:
            raise CaptureError(f"{path}: a block of length {total} at byte {fh.tell() - 12}")
        body = head[8:] + fh.read(total - 12)
        if len(body) < total - 8:
            raise CaptureError(f"{path}: the last block is cut short")
        body = body[:-4]  # the trailing total length
        if block_type == 0x0A0D0D0A:
            continue
        if block_type == 1:  # Interface Description Block
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            resolution = 1e-6
            for code, value in _options(body[8:], order):
                if code == 9 and value:  # if_tsresol
                    exp = value[0]
                    resolution = 2.0 ** -(exp & 0x7F) if exp & 0x80 else 10.0 ** -exp
            linktypes.append(linktype)
            resolutions.append(resolution)
        elif block_type == 6:  # Enhanced Packet Block
            iface, high, low, captured, _length = struct.unpack_from(order + "IIIII", body, 0)
            if iface >= len(linktypes):
                raise CaptureError(f"{path}: a packet of interface {iface}, which no block described")
            if linktypes[iface] != LINKTYPE_ETHERNET:
                continue
            data = body[20:20 + captured]
            comment = None
            outbound = None
            for code, value in _options(body[20 + captured + (-captured % 4):], order):
                if code == 1 and comment is None:
                    comment = value.decode("utf-8", "replace")
                elif code == 2 and len(value) == 4:
                    direction = struct.unpack(order + "I", value)[0] & 3
                    outbound = True if direction == 2 else False if direction == 1 else None
            yield Frame(((high << 32) | low) * resolutions[iface], data, comment, outbound)
        elif block_type == 3:  # Simple Packet Block: interface 0, no time
            if linktypes and linktypes[0] == LINKTYPE_ETHERNET:
                length = struct.unpack_from(order + "I", body, 0)[0]
                yield Frame(0.0, body[4:4 + length])
