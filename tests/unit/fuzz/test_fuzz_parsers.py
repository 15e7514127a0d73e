"""Every wire parser, fed random and mutated input: it returns a consistent result or raises WireError
with a reason, never anything else (IndexError, struct.error, ValueError ... would escape as internal
errors, or worse, as a crash of whatever called the parser outside the stack's safety net).

Inputs: raw bytes, structured frames from :mod:`fuzz.strategies`, and mutations of the recorded
session (:mod:`fuzz.corpus`), each cut at the layer the parser reads.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystack.wire import WireError, arp, dhcp, dns, ethernet, icmp, ipv4, tcp, udp

from .corpus import A_IP, B_IP, corpus, examples
from .mutate import ETH_LEN, ip_layout, mutate
from .strategies import arp_packets, ethernet_frames, ipv4_datagrams, tcp_segments, udp_datagrams

REASON = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
FUZZ = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_wire_errors(parse: Callable[[bytes], Any], data: bytes) -> Any:
    """Run ``parse``; a WireError must carry a ``layer.reason``; anything else fails the test."""
    try:
        return parse(data)
    except WireError as exc:
        assert REASON.match(exc.reason), f"malformed drop reason {exc.reason!r}"
        return None


def check_ipv4(data: bytes) -> None:
    pkt = only_wire_errors(ipv4.parse, data)
    if pkt is not None:
        assert 20 <= pkt.header_len <= 60 and pkt.header_len <= pkt.total_length <= len(data)
        assert len(pkt.payload) == pkt.total_length - pkt.header_len
        assert len(pkt.options) == pkt.header_len - 20


def check_tcp(data: bytes, src: int = B_IP, dst: int = A_IP) -> None:
    seg = only_wire_errors(lambda d: tcp.parse(d, src, dst), data)
    if seg is not None:
        hlen = (data[12] >> 4) * 4
        assert 20 <= hlen <= len(data) and len(seg.payload) == len(data) - hlen
        assert seg.src_port and seg.dst_port
        assert seg.mss is None or 0 <= seg.mss <= 0xFFFF
        assert seg.wscale is None or 0 <= seg.wscale <= 0xFF
        assert all(0 <= x <= 0xFFFFFFFF for block in seg.sack_blocks for x in block)
        assert len(seg.sack_blocks) <= 4  # 40 option bytes hold at most four blocks


def check_udp(data: bytes, src: int = B_IP, dst: int = A_IP) -> None:
    got = only_wire_errors(lambda d: udp.parse(d, src, dst), data)
    if got is not None:
        length = struct.unpack_from("!H", data, 4)[0]
        assert len(got[2]) == length - 8 <= len(data) - 8


def check_icmp(data: bytes) -> None:
    msg = only_wire_errors(icmp.parse, data)
    if msg is not None:
        assert len(msg.body) == len(data) - 8


def check_arp(data: bytes) -> None:
    pkt = only_wire_errors(arp.parse, data)
    if pkt is not None:
        assert len(pkt.sender_mac) == 6 and len(pkt.target_mac) == 6


def check_ethernet(data: bytes) -> None:
    got = only_wire_errors(ethernet.parse, data)
    if got is not None:
        assert got.ethertype >= 0x0600 and len(got.payload) == len(data) - 14


def check_frame_layers(frame: bytes) -> None:
    """Every parser on the part of ``frame`` it would be handed, whatever the outer headers say."""
    check_ethernet(frame)
    body = frame[ETH_LEN:]
    check_arp(body)
    check_ipv4(body)
    layout = ip_layout(frame)
    if layout is not None:
        ihl, end, _proto = layout
        inner = frame[ETH_LEN + ihl:end]
        check_tcp(inner)
        check_udp(inner)
        check_icmp(inner)
        if len(inner) > 8:
            only_wire_errors(dhcp.parse, inner[8:])
            only_wire_errors(dns.parse, inner[8:])


# --- raw and structured input ------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2000))
def test_raw_bytes_at_every_layer(data: bytes) -> None:
    check_ethernet(data)
    check_arp(data)
    check_ipv4(data)
    check_tcp(data)
    check_udp(data)
    check_icmp(data)
    only_wire_errors(dhcp.parse, data)
    only_wire_errors(dns.parse, data)


@FUZZ
@given(frame=ethernet_frames())
def test_structured_frames_at_every_layer(frame: bytes) -> None:
    check_frame_layers(frame)


@FUZZ
@given(data=ipv4_datagrams())
def test_ipv4_datagrams(data: bytes) -> None:
    check_ipv4(data)


@FUZZ
@given(data=st.data())
def test_tcp_segments_with_hostile_options(data: st.DataObject) -> None:
    seg = data.draw(tcp_segments(B_IP, A_IP))
    check_tcp(seg)
    check_tcp(seg[:data.draw(st.integers(0, len(seg)))])


@FUZZ
@given(data=st.data())
def test_udp_datagrams(data: st.DataObject) -> None:
    check_udp(data.draw(udp_datagrams(B_IP, A_IP)))


@FUZZ
@given(data=arp_packets())
def test_arp_packets(data: bytes) -> None:
    check_arp(data)


@FUZZ
@given(data=st.binary(max_size=600), qname=st.text(alphabet="abc.-", max_size=40))
def test_dns_and_dhcp_messages(data: bytes, qname: str) -> None:
    """DNS answers and DHCP offers arrive from the network too (issue 4's clients parse them)."""
    try:
        query = bytearray(dns.build_query(1, qname or "a"))
    except ValueError:
        query = bytearray(12)
    cut = len(data) % (len(query) + 1)
    only_wire_errors(dns.parse, bytes(query[:cut]) + data)
    offer = bytearray(dhcp.build(dhcp.DhcpMessage(dhcp.OP_REPLY, 1, bytes(6), {dhcp.OPT_MESSAGE_TYPE: b"\x02"})))
    offer[240:] = data  # options area replaced by anything
    only_wire_errors(dhcp.parse, bytes(offer))


# --- mutations of the recorded session ---------------------------------------------------------


def test_corpus_is_a_real_session() -> None:
    """The seed corpus holds what the mutations need: ARP, ICMP, UDP, fragments, TCP with options."""
    frames = corpus()
    protos = {ip_layout(f)[2] for f in frames if ip_layout(f)}
    assert {1, 6, 17} <= protos
    assert any(f[12:14] == b"\x08\x06" for f in frames)
    assert any(ip_layout(f) and struct.unpack_from("!H", f, 20)[0] & 0x3FFF for f in frames)
    syns = [f for f in frames if ip_layout(f) and ip_layout(f)[2] == 6 and len(f) > 54 and f[14 + 20 + 13] & 0x02]
    assert syns and all((f[14 + 20 + 12] >> 4) * 4 > 20 for f in syns), "SYNs carry options"
    for frame in frames:  # and every frame of it parses cleanly
        check_frame_layers(frame)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_corpus_at_every_layer(seed: int) -> None:
    frames = corpus()
    rng = random.Random(seed)
    for _ in range(examples(2500)):
        frame, _names = mutate(rng, rng.choice(frames), frames)
        check_frame_layers(frame)
