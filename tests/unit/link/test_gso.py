"""Software segmentation of TCP super-frames (the pcap writer and the tests' model of the kernel's TSO)."""

from __future__ import annotations

import pytest

from pystack.wire import ethernet, ipv4, tcp
from pystack.wire.gso import GsoFrame, segment

SRC, DST = ipv4.addr_to_int("192.0.2.2"), ipv4.addr_to_int("192.0.2.1")


def _super(payload: bytes, flags: int = tcp.ACK | tcp.PSH | tcp.FIN, seq: int = 0xFFFFF000) -> GsoFrame:
    opts = tcp.build_options(timestamps=(1, 2))
    seg = tcp.build(SRC, DST, 80, 40000, seq, 7, flags, 512, options=opts, payload=payload)
    packet = ipv4.build(SRC, DST, 6, seg, ident=100, flags_offset=ipv4.FLAG_DF)
    return GsoFrame(ethernet.build(b"\x02" * 6, b"\x04" * 6, 0x0800, packet), 1448)


@pytest.mark.parametrize("size", [1, 1448, 1449, 20000, 65000])
def test_segments_are_valid_wire_frames_that_concatenate_to_the_payload(size):
    payload = bytes(i & 0xFF for i in range(size))
    frame = _super(payload)
    pieces = segment(frame, frame.gso_size)
    assert len(pieces) == -(-size // 1448)
    got = b""
    for i, piece in enumerate(pieces):
        assert len(piece) <= 14 + 1500
        ip = ipv4.parse(memoryview(piece)[14:])
        seg = tcp.parse(ip.payload, ip.src, ip.dst)  # checksums verify
        assert seg.seq == (0xFFFFF000 + i * 1448) & 0xFFFFFFFF  # wraps
        assert ip.ident == (100 + i) & 0xFFFF
        last = i == len(pieces) - 1
        assert bool(seg.flags & tcp.FIN) == last and bool(seg.flags & tcp.PSH) == last
        got += bytes(seg.payload)
    assert got == payload


def test_gso_frame_is_still_bytes():
    frame = _super(b"x" * 3000)
    assert isinstance(frame, bytes) and frame.gso_size == 1448 and bytes(frame)[:6] == b"\x02" * 6
