"""A pcap writer (the classic libpcap format) that tcpdump and Wireshark read: LINKTYPE_ETHERNET, or
LINKTYPE_RAW for the bare IP packets of a TUN (pystack.medium)."""

from __future__ import annotations

import struct
import time
from typing import BinaryIO

from pystack.wire.gso import GsoFrame, segment
from pystack.wire.virtio import PartialChecksumFrame, complete_checksum

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
MAGIC_NANO = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
"""Each record an IPv4 or IPv6 packet, told by its version (tcpdump's linktype list)."""
SNAPLEN = 262144


class PcapWriter:
    """Records frames with nanosecond timestamps. Buffered; ``flush`` or ``close`` writes to disk."""

    def __init__(self, path: str, linktype: int = LINKTYPE_ETHERNET) -> None:
        self._file: BinaryIO = open(path, "wb")
        self._file.write(_GLOBAL.pack(MAGIC_NANO, 2, 4, 0, 0, SNAPLEN, linktype))
        self.frames = 0
        self._link_len = 0 if linktype == LINKTYPE_RAW else 14
        """Where a record's IP header starts (for cutting super-frames and completing checksums)."""

    def write(self, frame: bytes | memoryview, timestamp_ns: int | None = None) -> None:
        ts = time.time_ns() if timestamp_ns is None else timestamp_ns
        if type(frame) is GsoFrame:
            for piece in segment(frame, frame.gso_size, self._link_len):  # what the wire carries, not the super-frame
                self._record(piece, ts)
            return
        if type(frame) is PartialChecksumFrame:
            frame = complete_checksum(frame, self._link_len)  # record a frame Wireshark verifies, as it was meant
        self._record(frame, ts)

    def _record(self, frame: bytes | memoryview, ts: int) -> None:
        length = len(frame)
        captured = min(length, SNAPLEN)
        self._file.write(_RECORD.pack(ts // 1_000_000_000, ts % 1_000_000_000, captured, length))
        self._file.write(frame[:captured])
        self.frames += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
