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

from pystack.wire import WireError, arp, dhcp, dhcp6, dns, ethernet, icmp, icmpv6, ipv4, ipv6, tcp, udp

from .corpus import A6, A_IP, B6, B_IP, corpus, corpus6, examples
from .mutate import ETH_LEN, ip_layout, ipv6_layout, mutate
from .mutate6 import MUTATIONS6
from .strategies import arp_packets, ethernet_frames, ipv4_datagrams, ipv6_frames, tcp_segments, udp_datagrams

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


@FUZZ
@given(data=st.binary(max_size=600), cut=st.integers(0, 200), flips=st.lists(st.tuples(st.integers(0, 199),
                                                                                      st.integers(0, 255)), max_size=8))
def test_dhcp6_messages(data: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    """DHCPv6 replies arrive from the network (the client of pystack.dhcp6 parses them): a valid reply cut,
    bytes of it changed, or anything after its header."""
    reply = dhcp6.Dhcp6Message(dhcp6.REPLY, 1, client_id=dhcp6.duid_ll(bytes(6)), server_id=b"\x00\x03\x00\x01ab",
                               ia_na=(dhcp6.IaNa(1, 10, 20, (dhcp6.IaAddress(1 << 127 | 1, 30, 60),)),),
                               dns_servers=(1,), domains=("example.test",))
    raw = bytearray(dhcp6.build(reply))
    for at, value in flips:
        raw[at % len(raw)] = value
    for candidate in (bytes(raw), bytes(raw[:cut]), bytes(raw[:4]) + data, data):
        msg = only_wire_errors(dhcp6.parse, candidate)
        if msg is not None:
            assert len(msg.ia_na) <= dhcp6.MAX_IA_ADDRESSES
            assert all(len(ia.addresses) <= dhcp6.MAX_IA_ADDRESSES for ia in msg.ia_na)
            assert len(msg.dns_servers) <= dhcp6.MAX_NAME_SERVERS and len(msg.domains) <= dhcp6.MAX_DOMAINS


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


# --- IPv6: the fixed header, the extension headers, ICMPv6 and every ND and MLD message -------------------


def check_icmpv6(data: bytes, src: int = B6, dst: int = A6, hop_limit: int = 255) -> None:
    """ICMPv6, then every message parser on it whatever its type says (RFC 4443, 4861, 3810, 2710)."""
    msg = only_wire_errors(lambda d: icmpv6.parse(d, src, dst), data)
    if msg is None:
        return
    assert len(msg.body) == len(data) - 4 - 4
    for parse in (lambda: icmpv6.parse_rs(msg, src=src, hop_limit=hop_limit),
                  lambda: icmpv6.parse_ra(msg, src=src, hop_limit=hop_limit),
                  lambda: icmpv6.parse_ns(msg, src=src, dst=dst, hop_limit=hop_limit),
                  lambda: icmpv6.parse_na(msg, dst=dst, hop_limit=hop_limit),
                  lambda: icmpv6.parse_redirect(msg, src=src, hop_limit=hop_limit),
                  lambda: icmpv6.parse_mld_query(msg, src=src, hop_limit=1, router_alert=True),
                  lambda: icmpv6.parse_mld_report(msg, src=src, hop_limit=1, router_alert=True),
                  lambda: icmpv6.parse_mldv1_report(msg, src=src, hop_limit=1, router_alert=True),
                  lambda: icmpv6.parse_quote(msg.body)):
        only_wire_errors(lambda _d: parse(), b"")
    for skip in (0, 4, 8, 12, 20, 36):
        opts = only_wire_errors(icmpv6.parse_options, bytes(msg.body[skip:]))
        if opts is not None:
            assert all(0 <= p.prefix_len <= 128 and p.prefix >> 128 == 0 for p in opts.prefixes)
            assert all(len(mac) == 6 for mac in (opts.source_lladdr, opts.target_lladdr) if mac is not None)


def check_ipv6_layers(frame: bytes) -> None:
    """The fixed header, the walk of the extension headers (as received and as reassembled), and the
    upper layer the reference walker finds, at every parser."""
    pkt = only_wire_errors(ipv6.parse, frame[ETH_LEN:])
    if pkt is not None:
        assert len(pkt.datagram) == 40 + len(pkt.payload) <= len(frame) - ETH_LEN
        for reassembled in (False, True):
            chain = only_wire_errors(lambda _d: ipv6.walk(pkt, reassembled=reassembled), b"")
            if chain is not None:
                assert 40 <= chain.offset <= len(pkt.datagram) and 6 <= chain.next_header_at < chain.offset
    layout = ipv6_layout(frame)
    if layout is not None:
        start, end, _nh, _fragment = layout
        upper = bytes(frame[start:end])
        check_tcp(upper, B6, A6)
        check_udp(upper, B6, A6)
        check_icmpv6(upper, hop_limit=frame[ETH_LEN + 7])


@FUZZ
@given(frame=ipv6_frames())
def test_structured_ipv6_frames_at_every_layer(frame: bytes) -> None:
    check_ethernet(frame)
    check_ipv6_layers(frame)


@FUZZ
@given(data=st.binary(max_size=600))
def test_raw_bytes_at_every_ipv6_parser(data: bytes) -> None:
    only_wire_errors(ipv6.parse, data)
    check_icmpv6(data)
    only_wire_errors(icmpv6.parse_options, data)
    only_wire_errors(icmpv6.parse_quote, data)


def test_ipv6_corpus_is_a_real_session() -> None:
    """The IPv6 seeds hold what the mutations need: ND of each kind, MLD, echo, errors, TCP and UDP,
    fragments, and extension headers before the upper layer."""
    frames = corpus6()
    laid_out = [(f, layout) for f in frames if (layout := ipv6_layout(f)) is not None]
    assert {6, 17, 58} <= {nh for _f, (_s, _e, nh, _frag) in laid_out}
    icmp_types = {f[s] for f, (s, e, nh, frag) in laid_out if nh == 58 and not frag and s < e}
    assert {1, 2, 4, 128, 129, 130, 133, 134, 135, 136, 137, 143} <= icmp_types, sorted(icmp_types)
    assert any(frag for _f, (*_x, frag) in laid_out)
    assert {0, 43, 44, 60} <= {f[ETH_LEN + 6] for f in frames if f[12:14] == b"\x86\xdd"}
    for frame in frames:
        check_ipv6_layers(frame)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_ipv6_corpus_at_every_layer(seed: int) -> None:
    frames = corpus6()
    rng = random.Random(seed)
    for _ in range(examples(2500)):
        frame, _names = mutate(rng, rng.choice(frames), frames, table=MUTATIONS6)
        check_ipv6_layers(frame)
