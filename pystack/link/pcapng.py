"""A pcapng writer (draft-ietf-opsawg-pcapng): the capture format whose packet blocks carry a comment.

``--pcap FILE.pcapng`` chooses it. Each frame is an Enhanced Packet Block with its direction (epb_flags)
and, for a frame pystack sent, the reason its sender gave (opt_comment; pystack.reasons), which
Wireshark and tshark show as ``frame.comment``. One section, one interface (Ethernet, or LINKTYPE_RAW
for a TUN's bare IP packets, which go without directions or reasons), nanosecond times.
"""

from __future__ import annotations

import struct
import time
from typing import BinaryIO, Callable

from pystack import __version__
from pystack.link.pcap import LINKTYPE_RAW
from pystack.wire.gso import GsoFrame, segment
from pystack.wire.virtio import PartialChecksumFrame, complete_checksum

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_NAME = 2
IF_TSRESOL = 9
EPB_FLAGS = 2
FLAG_INBOUND = 1
FLAG_OUTBOUND = 2
"""epb_flags bits 0-1: the direction of the frame (section 4.3.1)."""

LATER_PIECE = "[TSO piece, continued]"
"""The mark of the wire segments after the first of an offloaded super-frame: the reason is the same,
and a count of frames by reason takes the first pieces only."""


def first_piece(pieces: int) -> str:
    """The mark of the first wire segment of an offloaded super-frame cut into ``pieces``."""
    return f"[TSO piece 1/{pieces}]"


MAX_COMMENT = 1024
"""Bytes of a comment kept (a reason is a line; the bound keeps a record's size known)."""

_EPB_HEAD = struct.Struct("<IIIIIII")
_U32 = struct.Struct("<I")

Explain = Callable[[bytes | memoryview], "str | None"]
"""``explain(frame)``: the reason pystack sent ``frame``, or None (pystack.reasons.FrameReasons.take)."""


def _option(code: int, value: bytes) -> bytes:
    """One option: code, length, the value padded to 32 bits (section 3.5)."""
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    """A block: type and total length, the body, the total length again (section 3.1)."""
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + _U32.pack(total)


_END = _option(OPT_ENDOFOPT, b"")
_DIRECTION = {None: b"", True: _option(EPB_FLAGS, _U32.pack(FLAG_OUTBOUND)) + _END,
              False: _option(EPB_FLAGS, _U32.pack(FLAG_INBOUND)) + _END}
"""The options of a frame without a comment: its direction when known, then opt_endofopt."""
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


def comment_option(text: str) -> bytes:
    """opt_comment with ``text`` in UTF-8, cut to MAX_COMMENT bytes on a character boundary."""
    data = text.encode("utf-8")
    if len(data) > MAX_COMMENT:
        data = data[:MAX_COMMENT].decode("utf-8", "ignore").encode("utf-8")
    return _option(OPT_COMMENT, data)


class PcapngWriter:
    """Records frames in and out, as :class:`pystack.link.pcap.PcapWriter` does, plus why each was sent.

    ``mac``: our MAC; a frame from it is outbound (set by :func:`pystack.reasons.explain_frames`, which
    also sets ``explain``). Until then every frame is written without a direction or a comment.
    """

    def __init__(self, path: str, interface: str = "", linktype: int = LINKTYPE_ETHERNET) -> None:
        self._file: BinaryIO = open(path, "wb")
        self.frames = 0
        self.comments = 0
        self.linktype = linktype
        self._link_len = 0 if linktype == LINKTYPE_RAW else 14
        """Where a record's IP header starts (for cutting super-frames and completing checksums)."""
        self.mac: bytes | None = None
        self.explain: Explain | None = None
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)  # section length unknown (-1)
        shb += _option(SHB_USERAPPL, f"pystack {__version__}".encode()) + _END
        idb = struct.pack("<HHI", linktype, 0, SNAPLEN)
        if interface:
            idb += _option(IF_NAME, interface.encode())
        idb += _option(IF_TSRESOL, bytes((9,))) + _END  # 10**-9 s: nanoseconds
        self._file.write(_block(BLOCK_SHB, shb) + _block(BLOCK_IDB, idb))

    def write(self, frame: bytes | memoryview, timestamp_ns: int | None = None, comment: str | None = None) -> None:
        """One frame; ``comment`` overrides what ``explain`` would say of it."""
        ts = time.time_ns() if timestamp_ns is None else timestamp_ns
        mac = self.mac
        outbound = mac is not None and frame[6:12] == mac
        if outbound and comment is None and self.explain is not None:
            comment = self.explain(frame)  # a GsoFrame's reason is its first segment's
        if type(frame) is GsoFrame:
            pieces = segment(frame, frame.gso_size, self._link_len)  # what the wire carries, not the super-frame
            n = len(pieces)
            first = rest = None
            if comment is not None:  # made once per super-frame: each piece is a record to write
                first = comment_option(comment if n == 1 else f"{comment} {first_piece(n)}")
                rest = comment_option(f"{comment} {LATER_PIECE}")
            for i, piece in enumerate(pieces):
                self._record(piece, ts, outbound, rest if i else first)
            return
        if type(frame) is PartialChecksumFrame:
            frame = complete_checksum(frame, self._link_len)  # record a frame Wireshark verifies, as it was meant
        self._record(frame, ts, outbound if mac is not None else None,
                     comment_option(comment) if comment else None)

    def _record(self, frame: bytes | memoryview, ts: int, outbound: bool | None, comment: bytes | None) -> None:
        """One Enhanced Packet Block; ``comment`` is its opt_comment option, made by comment_option."""
        length = len(frame)
        if length > SNAPLEN:
            frame = frame[:SNAPLEN]
        captured = len(frame)
        options = _DIRECTION[outbound]
        if comment is not None:
            options = comment + (options or _END)
            self.comments += 1
        pad = _PAD[captured & 3]
        total = 32 + captured + len(pad) + len(options)
        self._file.write(b"".join((_EPB_HEAD.pack(BLOCK_EPB, total, 0, ts >> 32, ts & 0xFFFFFFFF, captured, length),
                                   frame, pad, options, _U32.pack(total))))
        self.frames += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
