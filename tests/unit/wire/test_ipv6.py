"""IPv6 (RFC 8200): the fixed header and extension headers against dpkt, the chain walk's verdicts
against a real Linux kernel's answers to the same packets, fragmentation, the pseudo-header sum, and
fuzz (nothing but WireError ever escapes)."""

from __future__ import annotations

import ipaddress
import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import icmpv6, ipv6
from pystack.wire.checksum import internet_checksum, ones_sum, pseudo_header_sum6
from pystack.wire.errors import WireError
from pystack.wire.ipv6 import ParameterProblem

from .linux_ipv6 import ANSWERS, ECHO_3000_FRAGMENTS
from .reference import FUZZ, PROPERTY, parses_or_rejects, rejects, u8

A = ipv6.addr_to_int("2001:db8::a")
B = ipv6.addr_to_int("2001:db8::1")
PROTO_EXPERIMENT = 253  # RFC 3692: dpkt has no decoder for it, so its payload comes back as bytes

addrs = st.integers(min_value=0, max_value=(1 << 128) - 1).filter(
    lambda a: a >> 120 != 0xFF and a != ipv6.LOOPBACK)
payloads = st.binary(max_size=1500)
flow_labels = st.integers(min_value=0, max_value=0xFFFFF)
# Option types that walk() skips: not padding, not Router Alert, action bits 00 (RFC 8200 section 4.2).
skipped_option_types = st.integers(min_value=2, max_value=0x3F).filter(lambda t: t != ipv6.OPT_ROUTER_ALERT)


def packet(*, src: int = A, dst: int = B, nh: int = PROTO_EXPERIMENT, payload: bytes = b"x" * 8) -> ipv6.Ipv6Packet:
    return ipv6.parse(ipv6.build(src, dst, nh, payload))


def icmp_echo(src: int = A, dst: int = B) -> bytes:
    return icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x12340001, b"ping", src, dst)


# --- the fixed header ---------------------------------------------------------------------------------


@given(addrs, addrs, u8, payloads, u8, u8, flow_labels)
@PROPERTY
def test_build_parse_round_trip(src: int, dst: int, nh: int, payload: bytes, hlim: int, tc: int, flow: int) -> None:
    raw = ipv6.build(src, dst, nh, payload, hop_limit=hlim, traffic_class=tc, flow_label=flow)
    p = ipv6.parse(raw)
    assert (p.src, p.dst, p.next_header, p.hop_limit, p.traffic_class, p.flow_label) == (src, dst, nh, hlim, tc, flow)
    assert bytes(p.payload) == payload and bytes(p.datagram) == raw


@given(addrs, addrs, payloads, u8, u8, flow_labels)
@PROPERTY
def test_dpkt_reads_what_we_build(src: int, dst: int, payload: bytes, hlim: int, tc: int, flow: int) -> None:
    raw = ipv6.build(src, dst, PROTO_EXPERIMENT, payload, hop_limit=hlim, traffic_class=tc, flow_label=flow)
    d = dpkt.ip6.IP6(raw)
    assert (d.v, d.fc, d.flow, d.plen, d.nxt, d.hlim) == (6, tc, flow, len(payload), PROTO_EXPERIMENT, hlim)
    assert d.src == src.to_bytes(16, "big") and d.dst == dst.to_bytes(16, "big") and d.data == payload


@given(addrs, addrs, payloads, u8, u8, flow_labels)
@PROPERTY
def test_we_read_what_dpkt_builds(src: int, dst: int, payload: bytes, hlim: int, tc: int, flow: int) -> None:
    d = dpkt.ip6.IP6(src=src.to_bytes(16, "big"), dst=dst.to_bytes(16, "big"), nxt=PROTO_EXPERIMENT, hlim=hlim,
                     plen=len(payload), data=payload)
    d.fc, d.flow = tc, flow
    p = ipv6.parse(bytes(d))
    assert (p.src, p.dst, p.hop_limit, p.traffic_class, p.flow_label) == (src, dst, hlim, tc, flow)
    assert bytes(p.payload) == payload


@given(st.binary(min_size=1, max_size=40))
@PROPERTY
def test_link_padding_past_the_payload_length_is_cut(pad: bytes) -> None:
    raw = ipv6.build(A, B, PROTO_EXPERIMENT, b"data")
    p = ipv6.parse(raw + pad)
    assert bytes(p.payload) == b"data" and bytes(p.datagram) == raw


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda r: r[:39], "ipv6.truncated"),
    (lambda r: b"\x40" + r[1:], "ipv6.bad_version"),
    (lambda r: r[:4] + struct.pack("!H", 9) + r[6:], "ipv6.truncated"),  # payload length beyond the frame
    (lambda r: r[:8] + ipv6.ALL_NODES.to_bytes(16, "big") + r[24:], "ipv6.multicast_source"),
    (lambda r: r[:24] + ipv6.LOOPBACK.to_bytes(16, "big") + r[40:], "ipv6.loopback_address"),
    (lambda r: r[:8] + ipv6.LOOPBACK.to_bytes(16, "big") + r[24:], "ipv6.loopback_address"),
    (lambda r: r[:24] + (0xFF01 << 112 | 1).to_bytes(16, "big") + r[40:], "ipv6.bad_multicast_scope"),
    (lambda r: r[:24] + (0xFF00 << 112 | 1).to_bytes(16, "big") + r[40:], "ipv6.bad_multicast_scope"),
], ids=["short", "version4", "payload_length", "multicast_src", "loopback_dst", "loopback_src", "if_local",
        "scope0"])
def test_malformed_fixed_headers_are_refused(edit, reason: str) -> None:  # type: ignore[no-untyped-def]
    rejects(ipv6.parse, edit(ipv6.build(A, B, PROTO_EXPERIMENT, b"12345678")), {reason})


def test_payload_length_zero_is_an_empty_packet_not_a_jumbogram() -> None:
    p = ipv6.parse(ipv6.build(A, B, ipv6.NH_NONE, b"") + b"trailing")
    assert len(p.payload) == 0 and ipv6.walk(p).protocol == ipv6.NH_NONE


# --- extension headers against dpkt ---------------------------------------------------------------------


@given(st.lists(st.tuples(skipped_option_types, st.binary(max_size=12)), max_size=8), st.booleans())
@PROPERTY
def test_options_headers_read_by_dpkt_and_skipped_by_walk(options: list[tuple[int, bytes]], hop_by_hop: bool) -> None:
    header = ipv6.options_header(ipv6.NH_ICMPV6, options)
    assert len(header) % 8 == 0
    nh = ipv6.NH_HOP_BY_HOP if hop_by_hop else ipv6.NH_DEST_OPTS
    raw = ipv6.build(A, B, nh, header + icmp_echo())
    d = dpkt.ip6.IP6(raw)
    ext = d.all_extension_headers[0]
    assert (ext.nxt, ext.length) == (ipv6.NH_ICMPV6, len(header))
    assert [(o["type"], o["data"]) for o in ext.options] == options
    chain = ipv6.walk(ipv6.parse(raw))
    assert (chain.protocol, chain.offset, chain.next_header_at) == (ipv6.NH_ICMPV6, 40 + len(header), 40)
    assert chain.router_alert is None


@given(u8, st.integers(min_value=0, max_value=0xFFF8).map(lambda o: o & ~7), st.booleans(),
       st.integers(min_value=0, max_value=0xFFFFFFFF))
@PROPERTY
def test_fragment_header_read_by_dpkt(nh: int, offset: int, more: bool, ident: int) -> None:
    d = dpkt.ip6.IP6FragmentHeader(ipv6.fragment_header(nh, offset, more, ident))
    assert (d.nxt, d.frag_off * 8, bool(d.m_flag), d.id) == (nh, offset, more, ident)


def test_routing_header_read_by_dpkt() -> None:
    hop = ipv6.addr_to_int("2001:db8:2::5")
    header = ipv6.routing_header(ipv6.NH_ICMPV6, 0, 0, bytes(4) + hop.to_bytes(16, "big"))
    d = dpkt.ip6.IP6(ipv6.build(A, B, ipv6.NH_ROUTING, header + icmp_echo()))
    rt = d.all_extension_headers[0]
    assert (rt.nxt, rt.type, rt.segs_left, rt.addresses) == (ipv6.NH_ICMPV6, 0, 0, [hop.to_bytes(16, "big")])


# --- the walk, judged by Linux ---------------------------------------------------------------------------


def _linux_verdict(answer_hex: str | None) -> tuple[int, int, int] | None:
    if answer_hex is None:
        return None
    answer = ipv6.parse(bytes.fromhex(answer_hex))
    msg = icmpv6.parse(answer.payload, answer.src, answer.dst)
    return msg.type, msg.code, msg.rest


# Linux 6.18 drops a segment routing header (type 4) silently while seg6_enabled is 0; RFC 8200
# section 4.4 answers an unrecognised routing type with a Parameter Problem, and so does pystack.
RFC_OVER_LINUX = {"routing_type4_segments_left"}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_walk_answers_what_linux_answers(name: str) -> None:
    invoking_hex, answer_hex = ANSWERS[name]
    pkt = ipv6.parse(bytes.fromhex(invoking_hex))
    linux = _linux_verdict(answer_hex)
    try:
        chain = ipv6.walk(pkt)
    except ParameterProblem as problem:
        allowed = icmpv6.error_allowed(icmpv6.TYPE_PARAMETER_PROBLEM, problem.code, pkt.src, pkt.dst,
                                       multicast_ok=problem.multicast_ok)
        ours = (icmpv6.TYPE_PARAMETER_PROBLEM, problem.code, problem.pointer) if allowed else None
        if name in RFC_OVER_LINUX:
            assert linux is None and ours == (icmpv6.TYPE_PARAMETER_PROBLEM, 0, 42)
        else:
            assert ours == linux
        return
    except WireError as err:
        assert linux is None, f"Linux answered {linux}, pystack dropped ({err.reason})"
        return
    # Accepted: Linux answered an echo, or a later stage did (time exceeded, too big), or nothing (59).
    assert linux is None or linux[0] in (icmpv6.TYPE_ECHO_REPLY, icmpv6.TYPE_TIME_EXCEEDED,
                                         icmpv6.TYPE_PACKET_TOO_BIG)
    if linux is None:
        assert chain.protocol == ipv6.NH_NONE
    if linux is not None and linux[:2] == (icmpv6.TYPE_TIME_EXCEEDED, icmpv6.CODE_REASSEMBLY_TIMEOUT):
        assert chain.fragment is not None and chain.fragment.offset == 0 and chain.fragment.more


def test_atomic_fragment_is_processed_in_place() -> None:
    # RFC 6946: offset 0 and M clear is a whole packet, kept out of reassembly.
    chain = ipv6.walk(ipv6.parse(bytes.fromhex(ANSWERS["atomic_fragment"][0])))
    assert chain.atomic_fragment and chain.fragment is None
    assert (chain.protocol, chain.offset, chain.next_header_at) == (ipv6.NH_ICMPV6, 48, 40)


def test_hop_by_hop_router_alert_value_is_reported() -> None:
    chain = ipv6.walk(ipv6.parse(bytes.fromhex(ANSWERS["hbh_router_alert"][0])))
    assert chain.router_alert == ipv6.ROUTER_ALERT_MLD


def test_router_alert_in_destination_options_is_an_unknown_option_and_skipped() -> None:
    header = ipv6.options_header(ipv6.NH_ICMPV6, [(ipv6.OPT_ROUTER_ALERT, b"\x00\x00")])
    chain = ipv6.walk(ipv6.parse(ipv6.build(A, B, ipv6.NH_DEST_OPTS, header + icmp_echo())))
    assert chain.router_alert is None and chain.protocol == ipv6.NH_ICMPV6


@pytest.mark.parametrize("count", [1, 7, 8, 9, 40])
def test_extension_header_chain_is_bounded(count: int) -> None:
    chain = b""
    for i in range(count):
        chain += ipv6.options_header(ipv6.NH_DEST_OPTS if i < count - 1 else ipv6.NH_ICMPV6)
    pkt = ipv6.parse(ipv6.build(A, B, ipv6.NH_DEST_OPTS, chain + icmp_echo()))
    if count <= 8:
        assert ipv6.walk(pkt).offset == 40 + 8 * count
    else:
        with pytest.raises(WireError, match="ipv6.chain_too_long"):
            ipv6.walk(pkt)
    assert ipv6.walk(pkt, max_headers=count).offset == 40 + 8 * count


def test_options_per_header_bound_is_the_callers() -> None:
    header = ipv6.options_header(ipv6.NH_ICMPV6, [(0x1E, b"")] * 3)
    pkt = ipv6.parse(ipv6.build(A, B, ipv6.NH_DEST_OPTS, header + icmp_echo()))
    assert ipv6.walk(pkt, max_options=3).protocol == ipv6.NH_ICMPV6
    with pytest.raises(WireError, match="ipv6.too_many_options"):
        ipv6.walk(pkt, max_options=2)


@pytest.mark.parametrize("cut", [41, 47, 55])
def test_chain_cut_by_the_payload_length_is_dropped_without_an_answer(cut: int) -> None:
    raw = ipv6.build(A, B, ipv6.NH_DEST_OPTS, ipv6.options_header(ipv6.NH_DEST_OPTS, [(0x1E, bytes(10))])
                     + ipv6.options_header(ipv6.NH_ICMPV6) + icmp_echo())
    short = raw[:4] + struct.pack("!H", cut - 40) + raw[6:cut]
    with pytest.raises(WireError) as info:
        ipv6.walk(ipv6.parse(short))
    assert not isinstance(info.value, ParameterProblem) and info.value.reason == "ipv6.truncated_chain"


def test_upper_layers_outside_the_given_set_are_unknown_next_headers() -> None:
    pkt = packet(nh=ipv6.NH_TCP)
    assert ipv6.walk(pkt).protocol == ipv6.NH_TCP
    with pytest.raises(ParameterProblem) as info:
        ipv6.walk(pkt, upper_layers=frozenset({ipv6.NH_ICMPV6}))
    assert (info.value.code, info.value.pointer) == (ipv6.PP_UNKNOWN_NEXT_HEADER, 6)


@pytest.mark.parametrize("nh", [ipv6.NH_ESP, ipv6.NH_AH, 135, 139, 140])
def test_unsupported_extension_headers_are_unknown_next_headers(nh: int) -> None:
    with pytest.raises(ParameterProblem) as info:
        ipv6.walk(packet(nh=nh))
    assert (info.value.code, info.value.pointer, info.value.reason) == (1, 6, "ipv6.unknown_next_header")


# --- fragments ----------------------------------------------------------------------------------------


def _frag(offset: int, more: bool, data: bytes, nh: int = ipv6.NH_ICMPV6, ident: int = 7) -> ipv6.Ipv6Packet:
    return ipv6.parse(ipv6.build(A, B, ipv6.NH_FRAGMENT, ipv6.fragment_header(nh, offset, more, ident) + data))


def test_later_fragment_stops_the_walk_at_its_data() -> None:
    chain = ipv6.walk(_frag(1232, True, bytes(16)))
    assert chain.protocol == ipv6.NH_FRAGMENT and chain.offset == 48 and chain.next_header_at == 6
    assert chain.fragment == ipv6.FragmentHeader(ipv6.NH_ICMPV6, 1232, True, 7)


def test_fragment_without_data_is_left_to_reassembly() -> None:
    assert ipv6.walk(_frag(8, True, b"")).fragment is not None


def test_first_fragment_with_the_whole_chain_after_its_fragment_header_passes() -> None:
    dest = ipv6.options_header(ipv6.NH_UDP)
    chain = ipv6.walk(_frag(0, True, dest + bytes(8), nh=ipv6.NH_DEST_OPTS))
    assert chain.fragment is not None and chain.fragment.next_header == ipv6.NH_DEST_OPTS


@pytest.mark.parametrize(("nh", "after"), [
    (ipv6.NH_UDP, b""),  # a UDP header needs 8 bytes
    (ipv6.NH_ICMPV6, b""),  # an ICMPv6 header too
    (ipv6.NH_TCP, bytes(16)),  # a TCP header needs 20 (Linux asks as much)
    (ipv6.NH_DEST_OPTS, b"\x11\x03" + bytes(6)),  # a 32-byte destination options header cut at 8
    (ipv6.NH_DEST_OPTS, ipv6.options_header(ipv6.NH_TCP)),  # nothing of the TCP header
])
def test_first_fragment_without_the_whole_chain_answers_code_3(nh: int, after: bytes) -> None:
    with pytest.raises(ParameterProblem) as info:
        ipv6.walk(_frag(0, True, after + bytes(-len(after) % 8), nh=nh))
    assert (info.value.code, info.value.pointer) == (ipv6.PP_INCOMPLETE_CHAIN, 0)


def test_fragment_header_in_a_reassembled_packet_is_refused() -> None:
    with pytest.raises(ParameterProblem) as info:
        ipv6.walk(_frag(0, False, icmp_echo()), reassembled=True)
    assert (info.value.code, info.value.pointer, info.value.reason) == (0, 40, "ipv6.nested_fragment")


@given(st.binary(min_size=0, max_size=6000), st.integers(min_value=1280, max_value=9000),
       st.integers(min_value=0, max_value=0xFFFFFFFF))
@PROPERTY
def test_fragment_then_join_gives_back_the_packet(payload: bytes, mtu: int, ident: int) -> None:
    whole = ipv6.build(A, B, PROTO_EXPERIMENT, payload)
    pieces = ipv6.fragment(A, B, PROTO_EXPERIMENT, payload, mtu, ident=ident)
    if len(whole) <= mtu:
        assert pieces == [whole]
        return
    data = b""
    first = None
    for i, piece in enumerate(pieces):
        assert len(piece) <= mtu
        d = dpkt.ip6.IP6(piece)
        frag = d.all_extension_headers[0]
        assert (frag.nxt, frag.frag_off * 8, frag.m_flag, frag.id) == (
            PROTO_EXPERIMENT, len(data), int(i < len(pieces) - 1), ident)
        chain = ipv6.walk(ipv6.parse(piece), upper_layers=frozenset({PROTO_EXPERIMENT}))
        assert chain.fragment is not None and chain.fragment.offset == len(data)
        if i < len(pieces) - 1:
            assert (len(piece) - 48) % 8 == 0
        if i == 0:
            first = (piece, chain)
        data += piece[48:]
    assert first is not None
    assert ipv6.join_fragments(first[0], first[1], data) == whole


def test_fragment_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(ValueError):
        ipv6.fragment(A, B, PROTO_EXPERIMENT, bytes(2000), 1279, ident=1)
    with pytest.raises(ValueError):
        ipv6.fragment(A, B, PROTO_EXPERIMENT, bytes(65536), 1500, ident=1)


def test_linux_fragments_of_a_3000_byte_ping_join_into_an_echo_request() -> None:
    packets = [ipv6.parse(bytes.fromhex(h)) for h in ECHO_3000_FRAGMENTS]
    chains = [ipv6.walk(p) for p in packets]
    assert [c.fragment.offset for c in chains if c.fragment] == [0, 1352, 2704]
    data = b"".join(bytes(p.datagram[c.offset:]) for p, c in zip(packets, chains, strict=True))
    whole = ipv6.parse(ipv6.join_fragments(packets[0].datagram, chains[0], data))
    chain = ipv6.walk(whole, reassembled=True)
    msg = icmpv6.parse(whole.datagram[chain.offset:], whole.src, whole.dst)
    assert msg.type == icmpv6.TYPE_ECHO_REQUEST and len(msg.body) == 3000


# --- the pseudo-header sum --------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=(1 << 128) - 1), st.integers(min_value=0, max_value=(1 << 128) - 1),
       u8, st.integers(min_value=0, max_value=0xFFFFFFFF))
@PROPERTY
def test_pseudo_header_sum6_equals_summing_the_rfc_8200_layout(src: int, dst: int, nh: int, length: int) -> None:
    layout = src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!I3xB", length, nh)
    assert ones_sum(b"", pseudo_header_sum6(src, dst, nh, length)) == ~dpkt.in_cksum(layout) & 0xFFFF


@given(addrs, addrs, st.integers(min_value=1, max_value=0xFFFF), st.integers(min_value=1, max_value=0xFFFF),
       payloads)
@PROPERTY
def test_udp_checksum_over_the_ipv6_pseudo_header_equals_dpkts(src: int, dst: int, sport: int, dport: int,
                                                              payload: bytes) -> None:
    d = dpkt.ip6.IP6(src=src.to_bytes(16, "big"), dst=dst.to_bytes(16, "big"), nxt=ipv6.NH_UDP, hlim=64,
                     data=dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload))
    d.plen = len(d.data)
    udp = bytes(d)[40:]
    assert ones_sum(udp, pseudo_header_sum6(src, dst, ipv6.NH_UDP, len(udp))) == 0xFFFF
    zeroed = udp[:6] + b"\x00\x00" + udp[8:]
    assert internet_checksum(zeroed, pseudo_header_sum6(src, dst, ipv6.NH_UDP, len(udp))) == d.data.sum


# --- addresses (RFC 4291) -----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
@PROPERTY
def test_address_predicates_agree_with_ipaddress(value: int) -> None:
    addr = ipaddress.IPv6Address(value)
    assert ipv6.is_multicast(value) == addr.is_multicast
    assert ipv6.is_link_local(value) == addr.is_link_local
    group = ipaddress.IPv6Address(ipv6.solicited_node(value))
    assert group in ipaddress.IPv6Network("ff02::1:ff00:0/104") and int(group) & 0xFFFFFF == value & 0xFFFFFF
    assert ipv6.int_to_addr(value) == str(addr) and ipv6.addr_to_int(str(addr)) == value


def test_multicast_mac_is_33_33_and_the_low_32_bits() -> None:
    # RFC 2464 section 7; the kernel's DAD probe for fe80::ff:fe00:b went to 33:33:ff:00:00:0b.
    assert ipv6.multicast_mac(ipv6.solicited_node(ipv6.addr_to_int("fe80::ff:fe00:b"))) == bytes.fromhex("3333ff00000b")


# --- fuzz ----------------------------------------------------------------------------------------------


def _walk_everything(data: bytes) -> None:
    pkt = parses_or_rejects(ipv6.parse, data, "ipv6")
    if pkt is None:
        return
    for reassembled in (False, True):
        chain = parses_or_rejects(lambda p: ipv6.walk(p, reassembled=reassembled), pkt, "ipv6")
        if chain is not None:
            assert ipv6.HEADER_LEN <= chain.offset <= len(pkt.datagram)
            assert chain.next_header_at < chain.offset


@given(st.binary(max_size=200))
@FUZZ
def test_fuzz_random_bytes(data: bytes) -> None:
    _walk_everything(b"\x60" + data)


@given(st.sampled_from(sorted(ANSWERS)), st.lists(st.tuples(st.integers(min_value=0, max_value=200), u8), max_size=6),
       st.integers(min_value=0, max_value=300))
@FUZZ
def test_fuzz_mutated_linux_packets(name: str, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray.fromhex(ANSWERS[name][0])
    for at, value in edits:
        if at < len(data):
            data[at] = value
    _walk_everything(bytes(data[:len(data) - cut % 64]))
