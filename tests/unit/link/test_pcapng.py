"""The pcapng writer: blocks dpkt (an independent reader) parses, directions, and the frames' comments."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import dpkt.pcapng as pcapng_dpkt

from pystack.link.pcapng import EPB_FLAGS, MAX_COMMENT, PcapngWriter
from pystack.wire import ethernet
from pystack.wire.gso import GsoFrame

OUR_MAC = bytes.fromhex("020000000002")
PEER_MAC = bytes.fromhex("020000000001")


def epbs(path: Path) -> list[pcapng_dpkt.EnhancedPacketBlockLE]:
    """The Enhanced Packet Blocks of a little-endian pcapng file, options parsed by dpkt."""
    data = path.read_bytes()
    blocks = []
    offset = 0
    while offset < len(data):
        block_type, total = struct.unpack_from("<II", data, offset)
        if block_type == pcapng_dpkt.PCAPNG_BT_EPB:
            blocks.append(pcapng_dpkt.EnhancedPacketBlockLE(data[offset:offset + total]))
        offset += total
    assert offset == len(data)
    return blocks


def options(block: pcapng_dpkt.EnhancedPacketBlockLE) -> dict[int, bytes]:
    return {o.code: o.data for o in block.opts if o.code != pcapng_dpkt.PCAPNG_OPT_ENDOFOPT}


def frame(src: bytes, dst: bytes, size: int = 60) -> bytes:
    return ethernet.header(dst, src, 0x0800) + bytes(size - 14)


def test_dpkt_reads_frames_and_nanosecond_times(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    w = PcapngWriter(str(path), "pst0")
    frames = [frame(PEER_MAC, OUR_MAC, 60), frame(OUR_MAC, PEER_MAC, 61), frame(OUR_MAC, PEER_MAC, 1514)]
    for i, f in enumerate(frames):
        w.write(f, timestamp_ns=1_700_000_000_123_456_789 + i)
    w.close()
    with open(path, "rb") as fh:
        got = list(dpkt.pcapng.Reader(fh))
    assert [bytes(buf) for _ts, buf in got] == frames
    assert abs(got[0][0] - 1_700_000_000.123456789) < 1e-6  # the IDB's if_tsresol says nanoseconds


def test_direction_and_comment_of_a_frame_we_sent(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    w = PcapngWriter(str(path))
    w.mac = OUR_MAC
    w.explain = lambda f: "because"
    w.write(frame(PEER_MAC, OUR_MAC))
    w.write(frame(OUR_MAC, PEER_MAC))
    w.close()
    inbound, outbound = epbs(path)
    assert options(inbound) == {EPB_FLAGS: struct.pack("<I", 1)}  # no comment asked
    assert options(outbound) == {pcapng_dpkt.PCAPNG_OPT_COMMENT: b"because",
                                 EPB_FLAGS: struct.pack("<I", 2)}
    assert w.comments == 1 and w.frames == 2


def test_comment_is_bounded_and_stays_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    w = PcapngWriter(str(path))
    w.write(frame(OUR_MAC, PEER_MAC), comment="é" * MAX_COMMENT)
    w.close()
    (block,) = epbs(path)
    text = options(block)[pcapng_dpkt.PCAPNG_OPT_COMMENT].decode("utf-8")  # no half character at the cut
    assert text == "é" * (MAX_COMMENT // 2)


def test_an_offloaded_super_frame_is_recorded_as_its_wire_segments(tmp_path: Path) -> None:
    from pystack.wire import ipv4, tcp

    payload = bytes(range(256)) * 12  # 3072 bytes: three 1024-byte pieces
    seg = tcp.build(0xC0000202, 0xC0000201, 80, 40000, 1000, 1, tcp.ACK, 100, b"", payload, checksum=False)
    head = ipv4.frame_header(PEER_MAC, OUR_MAC, 0, len(seg), 1, ipv4.FLAG_DF, 64, 6, 0xC0000202, 0xC0000201)
    path = tmp_path / "c.pcapng"
    w = PcapngWriter(str(path))
    w.mac = OUR_MAC
    w.explain = lambda f: "new data"
    w.write(GsoFrame(head + seg, 1024))
    w.close()
    blocks = epbs(path)
    assert [options(b)[pcapng_dpkt.PCAPNG_OPT_COMMENT] for b in blocks] == [
        b"new data [TSO piece 1/3]", b"new data [TSO piece, continued]", b"new data [TSO piece, continued]"]
    seqs = [dpkt.ethernet.Ethernet(b.pkt_data).data.data.seq for b in blocks]
    assert seqs == [1000, 2024, 3048]
