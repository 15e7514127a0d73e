"""The bulk send path (pystack.ip.tcp_path): one pack per segment, the same bytes as the layered path.

A burst of data segments from one connection leaves through a TcpPath that packs Ethernet, IPv4 and TCP
headers at once. Its frames must be byte for byte what Ethernet header + IPv4 frame_header + TCP build
make, and checksums an independent decoder (dpkt) accepts; and the stack must fall back to the layered
path whenever ARP has something to do.
"""

from __future__ import annotations

import dpkt
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pystack.counters import Counters
from pystack.ip.tcp_path import TcpPath
from pystack.wire import ipv4
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, FIN, PSH

from .conftest import A_IP, B_IP, connected, make_pair, transfer

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
addrs = st.integers(1, 0xFFFFFFFE)
macs = st.binary(min_size=6, max_size=6)
# The option layouts data segments carry: none, timestamps, timestamps with 1-3 SACK blocks.
options = st.one_of(
    st.just(b""),
    st.builds(wire.timestamp_option, u32, u32),
    st.builds(lambda tsv, tse, blocks: wire.timestamp_option(tsv, tse) + wire.build_options(sack_blocks=blocks),
              u32, u32, st.lists(st.tuples(u32, u32), min_size=1, max_size=3)),
)
payloads = st.binary(max_size=1460)


@given(macs, macs, addrs, addrs, u16, u16, u32, u32, st.sampled_from([ACK, ACK | PSH, ACK | PSH | FIN]), u16,
       options, payloads, st.integers(1, 255), u16)
@example(b"\xff" * 6, b"\xff" * 6, 0xFFFFFFFE, 0xFFFFFFFE, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, ACK | PSH | FIN,
         0xFFFF, b"", b"\xff" * 1459, 255, 0xFFFF)
@example(bytes(6), bytes(6), 1, 1, 0, 0, 0, 0, ACK, 0, b"", b"", 1, 0)
@settings(max_examples=200, deadline=None)
def test_path_frame_is_the_layered_frame_byte_for_byte(
    dst_mac: bytes, src_mac: bytes, src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int,
    window: int, opts: bytes, payload: bytes, ttl: int, ident: int,
) -> None:
    out: list[bytes] = []
    counters = Counters()
    path = TcpPath(out, counters, lambda: ident, dst_mac, src_mac, src, dst, sport, dport, ttl)
    path.send(seq, ack, flags, window, opts, memoryview(payload))
    segment = wire.build(src, dst, sport, dport, seq, ack, flags, window, opts, payload)
    layered = ipv4.frame_header(dst_mac, src_mac, 0, len(segment), ident, ipv4.FLAG_DF, ttl, ipv4.PROTO_TCP,
                                src, dst) + segment
    assert out == [layered]
    # An independent decoder agrees with both checksums.
    ip = dpkt.ethernet.Ethernet(out[0]).data
    assert isinstance(ip, dpkt.ip.IP)
    raw = out[0][14:]
    assert dpkt.in_cksum(raw[:20]) == 0
    pseudo = src.to_bytes(4, "big") + dst.to_bytes(4, "big") + bytes([0, 6]) + len(raw[20:]).to_bytes(2, "big")
    assert dpkt.in_cksum(pseudo + raw[20:]) == 0
    assert path.finish() == 1 and counters["frames_out"] == 1


def test_bulk_data_goes_out_one_frame_per_segment_and_counted() -> None:
    """A burst through the path: every frame is counted once as a frame and once as a TCP segment, the
    IPv4 identification advances per frame, and the peer takes every byte."""
    a, b, wire_ = make_pair()
    client, server = connected(a, b, wire_)
    start = len(wire_.log)
    before_frames, before_segs = a.counters["frames_out"], a.counters["tcp.out_segments"]
    data = bytes(range(256)) * 200  # 51,200 bytes: 36 segments, past the initial window
    assert transfer(client, server, wire_, data) == data
    sent = [frame for _t, sender, frame in wire_.log[start:] if sender == 0]
    assert sum(1 for f in sent if len(f) == 1514) >= len(data) // 1448 - 1  # full-sized frames
    idents = [int.from_bytes(f[18:20], "big") for f in sent]
    assert len(set(idents)) == len(idents)
    assert a.counters["frames_out"] - before_frames == len(sent)
    assert a.counters["tcp.out_segments"] - before_segs == len(sent)


def test_a_stale_neighbour_is_polled_while_the_burst_goes_out() -> None:
    """RFC 1122 2.3.2.1: a stale ARP entry is polled by unicast while still in use. The burst that finds
    it stale must send that poll (the layered path would), and the entry is fresh again afterwards."""
    a, b, wire_ = make_pair()
    client, server = connected(a, b, wire_)
    a.arp.entries[B_IP].expires = wire_.clock.now - 1.0
    start = len(wire_.log)
    data = bytes(5000)
    assert transfer(client, server, wire_, data) == data
    sent = [frame for _t, sender, frame in wire_.log[start:] if sender == 0]
    arp_requests = [f for f in sent if f[12:14] == b"\x08\x06" and f[21] == 1]
    assert len(arp_requests) == 1 and arp_requests[0][:6] == b.mac  # one poll, unicast to the known MAC
    assert a.arp.entries[B_IP].expires > wire_.clock.now  # B's reply refreshed it


def test_no_path_to_our_own_address_or_an_unresolved_or_unroutable_host() -> None:
    a, _b, wire_ = make_pair()
    now = wire_.clock.now
    assert a._tcp.path(A_IP, A_IP, 1, 2, now) is None  # loopback: never a frame
    assert a._tcp.path(A_IP, 0xC0000263, 1, 2, now) is None  # on-link, not in the ARP cache
    a.gateway = None
    assert a._tcp.path(A_IP, 0x0A000001, 1, 2, now) is None  # off-link with no gateway
