"""TCP header format: our parser and builder cross-checked against dpkt."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import tcp
from pystack.wire.errors import WireError

SRC = 0xC0000201  # 192.0.2.1
DST = 0xC0000202  # 192.0.2.2


def dpkt_segment(opts: bytes = b"", payload: bytes = b"", **fields) -> bytes:
    """A segment built and checksummed by dpkt (through an IPv4 packet, which fills the checksum)."""
    seg = dpkt.tcp.TCP(opts=opts, data=payload, off=5 + len(opts) // 4, **fields)
    ip = dpkt.ip.IP(src=SRC.to_bytes(4, "big"), dst=DST.to_bytes(4, "big"), p=6, data=seg)
    return bytes(ip)[20:]


def test_parse_segment_built_by_dpkt() -> None:
    opts = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x07\x00\x00\x00\x09\x01\x03\x03\x07"
    raw = dpkt_segment(opts, b"hello", sport=40000, dport=80, seq=0xFFFFFFF0, ack=5,
                       flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, win=29200)
    seg = tcp.parse(raw, SRC, DST)
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack) == (40000, 80, 0xFFFFFFF0, 5)
    assert seg.flags == tcp.SYN | tcp.ACK and seg.window == 29200
    assert bytes(seg.payload) == b"hello"
    assert seg.mss == 1460 and seg.wscale == 7 and seg.sack_permitted
    assert (seg.ts_val, seg.ts_ecr) == (7, 9)
    assert seg.seg_len == 6


def test_build_parsed_by_dpkt() -> None:
    opts = tcp.build_options(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, 2))
    raw = tcp.build(SRC, DST, 1234, 80, 100, 200, tcp.SYN | tcp.ACK, 65535, opts, b"data!")
    theirs = dpkt.tcp.TCP(raw)
    assert (theirs.sport, theirs.dport, theirs.seq, theirs.ack, theirs.win) == (1234, 80, 100, 200, 65535)
    assert theirs.flags == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK and theirs.data == b"data!"
    parsed = dict((k, v) for k, v in dpkt.tcp.parse_opts(theirs.opts) if k not in (0, 1))
    assert parsed[dpkt.tcp.TCP_OPT_MSS] == struct.pack("!H", 1460)
    assert parsed[dpkt.tcp.TCP_OPT_WSCALE] == b"\x07"
    assert parsed[dpkt.tcp.TCP_OPT_TIMESTAMP] == struct.pack("!II", 1, 2)
    assert dpkt.tcp.TCP_OPT_SACKOK in parsed
    # dpkt recomputes the checksum of an IP packet whose sum field is zeroed: it must equal ours.
    theirs_sum = theirs.sum
    theirs.sum = 0
    ip2 = dpkt.ip.IP(src=SRC.to_bytes(4, "big"), dst=DST.to_bytes(4, "big"), p=6, data=theirs)
    assert dpkt.tcp.TCP(bytes(ip2)[20:]).sum == theirs_sum


@given(
    sport=st.integers(1, 65535), dport=st.integers(1, 65535), seq=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1), flags=st.integers(0, 255), win=st.integers(0, 65535),
    payload=st.binary(max_size=64), ts=st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    blocks=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=3),
)
def test_round_trip_and_checksum_agree_with_dpkt(sport, dport, seq, ack, flags, win, payload, ts, blocks) -> None:
    if ts is not None and len(blocks) > 2:
        blocks = blocks[:2]
    opts = tcp.build_options(timestamps=ts, sack_blocks=blocks)
    raw = tcp.build(SRC, DST, sport, dport, seq, ack, flags, win, opts, payload)
    assert raw == dpkt_segment(opts, payload, sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=win)
    seg = tcp.parse(raw, SRC, DST)
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window) == (sport, dport, seq, ack, flags, win)
    assert bytes(seg.payload) == payload
    assert seg.sack_blocks == tuple(blocks)
    assert (seg.ts_val, seg.ts_ecr) == (ts if ts is not None else (None, None))


def test_memoryview_payload_and_bytearray_input() -> None:
    raw = tcp.build(SRC, DST, 1, 2, 3, 4, tcp.ACK, 5, b"", memoryview(b"xyz"))
    seg = tcp.parse(bytearray(raw), SRC, DST)
    assert bytes(seg.payload) == b"xyz"


def test_bad_checksum_and_wrong_pseudo_header() -> None:
    raw = bytearray(tcp.build(SRC, DST, 1, 2, 3, 4, tcp.ACK, 5, b"", b"abc"))
    with pytest.raises(WireError, match="tcp.bad_checksum"):
        tcp.parse(raw, SRC, DST + 1)
    raw[-1] ^= 0x40
    with pytest.raises(WireError, match="tcp.bad_checksum"):
        tcp.parse(raw, SRC, DST)
    assert tcp.parse(raw, SRC, DST, verify_checksum=False).payload[-1] == ord("c") ^ 0x40


@pytest.mark.parametrize("offset_words", [0, 4, 6, 15])
def test_bad_data_offset(offset_words: int) -> None:
    raw = bytearray(tcp.build(SRC, DST, 1, 2, 3, 4, tcp.ACK, 5, b"", b""))  # 20 bytes, no options
    raw[12] = offset_words << 4
    with pytest.raises(WireError, match="tcp.bad_offset"):
        tcp.parse(raw, SRC, DST, verify_checksum=False)


def test_truncated_and_port_zero() -> None:
    with pytest.raises(WireError, match="tcp.truncated"):
        tcp.parse(b"\x00" * 19, SRC, DST)
    raw = tcp.build(SRC, DST, 0, 2, 3, 4, tcp.ACK, 5)
    with pytest.raises(WireError, match="tcp.port_zero"):
        tcp.parse(raw, SRC, DST)


@pytest.mark.parametrize(
    "opts",
    [
        b"\x02\x00\x00\x00",  # length 0
        b"\x02\x01\x00\x00",  # length 1
        b"\x01\x01\x01\x02",  # kind without a length byte at the end
        b"\x02\x08\x05\xb4",  # runs past the header
        b"\x02\x03\x05\x00",  # MSS must be 4 long
        b"\x03\x04\x07\x00",  # window scale must be 3 long
        b"\x08\x06\x00\x00\x00\x00\x00\x00",  # timestamps must be 10 long
        b"\x05\x02\x00\x00",  # SACK without a block
        b"\x05\x06\x00\x00\x00\x00\x00\x00",  # SACK with half a block
    ],
)
def test_bogus_option_lengths(opts: bytes) -> None:
    raw = dpkt_segment(opts, sport=1, dport=2, flags=dpkt.tcp.TH_ACK)
    with pytest.raises(WireError, match="tcp.bad_option"):
        tcp.parse(raw, SRC, DST)


def test_unknown_option_skipped_and_eol_stops() -> None:
    opts = b"\x1e\x04\xaa\xbb\x03\x03\x05\x00" + b"\x00\x02\x00\x00"  # unknown(30), wscale 5, EOL, junk
    seg = tcp.parse(dpkt_segment(opts, sport=1, dport=2, flags=dpkt.tcp.TH_SYN), SRC, DST)
    assert seg.wscale == 5 and seg.mss is None


def test_options_are_padded_and_bounded() -> None:
    assert len(tcp.build_options(wscale=7)) % 4 == 0
    assert tcp.build_options() == b""
    with pytest.raises(ValueError):
        tcp.build_options(timestamps=(1, 2), sack_blocks=[(1, 2)] * 4)
    with pytest.raises(ValueError):
        tcp.build(SRC, DST, 1, 2, 3, 4, 0, 0, b"\x01")


def test_timestamp_option_fast_layout() -> None:
    raw = tcp.build(SRC, DST, 1, 2, 3, 4, tcp.ACK, 5, tcp.timestamp_option(11, 22), b"p")
    seg = tcp.parse(raw, SRC, DST)
    assert (seg.ts_val, seg.ts_ecr) == (11, 22)
    assert seg.seg_len == 1
    assert "ts=11/22" in repr(seg)
