"""ICMPv6 (RFC 4443), neighbour discovery (RFC 4861) and MLDv2 (RFC 3810): round trips, checksums and
echo/error layouts against dpkt, every ND and MLD message byte for byte against what a Linux kernel
(and dnsmasq, for the RA) sent, each validation rule, and fuzz."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pystack.wire import icmpv6, ipv6
from pystack.wire.errors import WireError
from pystack.wire.icmpv6 import Icmpv6Message, MulticastRecord, PrefixInfo

from .linux_ipv6 import ANSWERS, FRAMES
from .reference import FUZZ, PROPERTY, flip_bit, parses_or_rejects, rejects, u8

A = ipv6.addr_to_int("2001:db8::a")
B = ipv6.addr_to_int("2001:db8::1")
LL_A = ipv6.addr_to_int("fe80::ff:fe00:a")
LL_B = ipv6.addr_to_int("fe80::ff:fe00:b")
MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")

addrs = st.integers(min_value=0, max_value=(1 << 128) - 1)
bodies = st.binary(max_size=1500)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


def frame(name: str) -> tuple[ipv6.Ipv6Packet, ipv6.HeaderChain, Icmpv6Message]:
    """A captured packet, its chain and its ICMPv6 message (checksum verified on the way)."""
    pkt = ipv6.parse(bytes.fromhex(FRAMES[name]))
    chain = ipv6.walk(pkt)
    return pkt, chain, icmpv6.parse(pkt.datagram[chain.offset:], pkt.src, pkt.dst)


def dpkt_checksum(message: bytes, src: int, dst: int) -> int:
    """The checksum dpkt computes for ``message`` (its own zeroed) in an IPv6 packet from ``src`` to ``dst``."""
    icmp = dpkt.icmp6.ICMP6(message[:2] + b"\x00\x00" + message[4:])
    icmp.sum = 0
    packet = dpkt.ip6.IP6(src=src.to_bytes(16, "big"), dst=dst.to_bytes(16, "big"), nxt=ipv6.NH_ICMPV6, hlim=64,
                          data=icmp, plen=len(message))
    bytes(packet)
    return int(icmp.sum)


# --- the message and its checksum -------------------------------------------------------------------------


@given(u8, u8, u32, bodies, addrs, addrs)
@PROPERTY
def test_build_parse_round_trip_with_dpkts_checksum(mtype: int, code: int, rest: int, body: bytes, src: int,
                                                    dst: int) -> None:
    raw = icmpv6.build(mtype, code, rest, body, src, dst)
    msg = icmpv6.parse(raw, src, dst)
    assert (msg.type, msg.code, msg.rest, bytes(msg.body)) == (mtype, code, rest, body)
    assert int.from_bytes(raw[2:4], "big") == dpkt_checksum(raw, src, dst)


@given(bodies, addrs, addrs, st.integers(min_value=0, max_value=8 * 1500 - 1))
@PROPERTY
def test_any_flipped_bit_or_other_address_fails_the_checksum(body: bytes, src: int, dst: int, bit: int) -> None:
    raw = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 1, body, src, dst)
    rejects(icmpv6.parse, flip_bit(raw, bit % (8 * len(raw))), {"icmpv6.bad_checksum"}, src, dst)
    rejects(icmpv6.parse, raw, {"icmpv6.bad_checksum"}, src ^ 1, dst)


def test_shorter_than_the_8_byte_header_is_truncated() -> None:
    raw = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0, b"", A, B)
    rejects(icmpv6.parse, raw[:7], {"icmpv6.truncated"}, A, B)


# --- echo ---------------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=0xFFFF), st.integers(min_value=0, max_value=0xFFFF), bodies, addrs, addrs)
@PROPERTY
def test_echo_reply_from_request_equals_a_built_reply(ident: int, seq: int, data: bytes, src: int, dst: int) -> None:
    request = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, ident << 16 | seq, data, src, dst)
    d = dpkt.icmp6.ICMP6(request)
    assert (d.echo.id, d.echo.seq, d.echo.data) == (ident, seq, data)
    reply = icmpv6.echo_reply_from_request(request)
    assert reply == icmpv6.build(icmpv6.TYPE_ECHO_REPLY, 0, ident << 16 | seq, data, dst, src)
    assert icmpv6.parse(reply, dst, src).type == icmpv6.TYPE_ECHO_REPLY


def test_echo_reply_is_the_kernels() -> None:
    request, request_chain, _ = frame("echo_request_link_local")
    reply, reply_chain, _ = frame("echo_reply_link_local")
    message = request.datagram[request_chain.offset:]
    assert icmpv6.echo_reply_from_request(message) == bytes(reply.datagram[reply_chain.offset:])


def test_echo_to_all_nodes_is_answered_from_our_own_address() -> None:
    # The kernel answers a ping to ff02::1 from its unicast address, so the pseudo-header changes: the
    # reply is built whole (echo_reply_from_request is for replies from the address pinged).
    request_hex, reply_hex = ANSWERS["echo_all_nodes"]
    request = ipv6.parse(bytes.fromhex(request_hex))
    reply = ipv6.parse(bytes.fromhex(reply_hex or ""))
    msg = icmpv6.parse(request.payload, request.src, request.dst)
    assert icmpv6.build(icmpv6.TYPE_ECHO_REPLY, 0, msg.rest, msg.body, reply.src, reply.dst) == bytes(reply.payload)


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, (_, a) in ANSWERS.items()
                                        if a and ipv6.parse(bytes.fromhex(a)).payload[0] < 128))
def test_errors_built_byte_for_byte_as_linux_built_them(name: str) -> None:
    invoking_hex, answer_hex = ANSWERS[name]
    answer = ipv6.parse(bytes.fromhex(answer_hex or ""))
    msg = icmpv6.parse(answer.payload, answer.src, answer.dst)
    invoking = bytes.fromhex(invoking_hex)
    ours = icmpv6.build_error(msg.type, msg.code, msg.rest, invoking, answer.src, answer.dst)
    assert ours == bytes(answer.payload)
    assert len(ours) + ipv6.HEADER_LEN <= ipv6.MIN_MTU
    if invoking[6] == ipv6.NH_FRAGMENT:
        return  # dpkt cannot read a quoted fragment (its IP6.unpack fails on it); the bytes above are checked
    d = dpkt.icmp6.ICMP6(ours)
    assert isinstance(d.data, {1: d.Unreach, 2: d.TooBig, 3: d.TimeExceed, 4: d.ParamProb}[msg.type])
    if msg.type == icmpv6.TYPE_PACKET_TOO_BIG:
        assert d.data.mtu == 1280
    if msg.type == icmpv6.TYPE_PARAMETER_PROBLEM:
        assert d.data.ptr == msg.rest


def test_port_unreachable_is_the_kernels_and_its_quote_names_the_port() -> None:
    udp = ipv6.parse(bytes.fromhex(FRAMES["udp_to_closed_port"]))
    pkt, _, msg = frame("port_unreachable")
    built = icmpv6.build_error(icmpv6.TYPE_DEST_UNREACHABLE, icmpv6.CODE_PORT_UNREACHABLE, 0, udp.datagram,
                               pkt.src, pkt.dst)
    assert built == bytes(pkt.payload)
    quote = icmpv6.parse_quote(msg.body)
    assert (quote.src, quote.dst, quote.protocol) == (udp.src, udp.dst, ipv6.NH_UDP)
    assert int.from_bytes(quote.upper[2:4], "big") == 9


def test_quote_skips_extension_headers_and_stops_at_a_later_fragment() -> None:
    dest = ipv6.options_header(ipv6.NH_TCP)
    quote = icmpv6.parse_quote(ipv6.build(A, B, ipv6.NH_DEST_OPTS, dest + bytes(20))[:60])
    assert quote.protocol == ipv6.NH_TCP and len(quote.upper) == 12
    later = ipv6.build(A, B, ipv6.NH_FRAGMENT, ipv6.fragment_header(ipv6.NH_TCP, 1232, False, 1) + bytes(8))
    assert icmpv6.parse_quote(later).protocol == ipv6.NH_FRAGMENT
    rejects(icmpv6.parse_quote, b"\x45" + bytes(59), {"icmpv6.bad_quote"})


@pytest.mark.parametrize(("args", "kwargs", "allowed"), [
    ((icmpv6.TYPE_DEST_UNREACHABLE, 4, A, B), {}, True),
    ((icmpv6.TYPE_DEST_UNREACHABLE, 4, A, ipv6.ALL_NODES), {}, False),  # e.3
    ((icmpv6.TYPE_DEST_UNREACHABLE, 4, A, B), {"link_multicast": True}, False),  # e.4
    ((icmpv6.TYPE_PACKET_TOO_BIG, 0, A, ipv6.ALL_NODES), {}, True),  # e.3's exception
    ((icmpv6.TYPE_PARAMETER_PROBLEM, 2, A, ipv6.ALL_NODES), {"multicast_ok": True}, True),
    ((icmpv6.TYPE_PARAMETER_PROBLEM, 2, A, ipv6.ALL_NODES), {}, False),
    ((icmpv6.TYPE_PARAMETER_PROBLEM, 1, A, ipv6.ALL_NODES), {"multicast_ok": True}, False),
    ((icmpv6.TYPE_DEST_UNREACHABLE, 4, ipv6.UNSPECIFIED, B), {}, False),  # e.6
    ((icmpv6.TYPE_PARAMETER_PROBLEM, 0, A, B), {"invoking_icmp_type": icmpv6.TYPE_TIME_EXCEEDED}, False),  # e.1
    ((icmpv6.TYPE_PARAMETER_PROBLEM, 0, A, B), {"invoking_icmp_type": icmpv6.TYPE_REDIRECT}, False),  # e.2
    ((icmpv6.TYPE_PARAMETER_PROBLEM, 0, A, B), {"invoking_icmp_type": icmpv6.TYPE_ECHO_REQUEST}, True),
])
def test_error_allowed_follows_rfc_4443_2_4_e(args: tuple[int, int, int, int], kwargs: dict[str, Any],
                                              allowed: bool) -> None:
    assert icmpv6.error_allowed(*args, **kwargs) is allowed


# --- neighbour discovery: the kernel's messages, read and rebuilt ------------------------------------------


def test_router_solicitation_is_the_kernels() -> None:
    pkt, _, msg = frame("router_solicitation")
    rs = icmpv6.parse_rs(msg, src=pkt.src, hop_limit=pkt.hop_limit)
    assert rs.options.source_lladdr == MAC_B
    assert icmpv6.build_rs(pkt.src, source_lladdr=MAC_B) == bytes(pkt.payload)


def test_router_advertisement_is_dnsmasqs() -> None:
    pkt, _, msg = frame("router_advertisement")
    ra = icmpv6.parse_ra(msg, src=pkt.src, hop_limit=pkt.hop_limit)
    prefix = PrefixInfo(ipv6.addr_to_int("2001:db8::"), 64, True, True, 600, 600)
    assert (ra.cur_hop_limit, ra.managed, ra.other, ra.preference, ra.router_lifetime, ra.reachable_time,
            ra.retrans_timer) == (64, False, True, icmpv6.PREFERENCE_MEDIUM, 1800, 0, 0)
    o = ra.options
    assert (o.source_lladdr, o.mtu, o.prefixes, o.invalid) == (MAC_B, 1400, [prefix], 0)
    assert o.rdnss == [icmpv6.Rdnss(600, (ipv6.addr_to_int("2001:db8::53"),))]
    options = (icmpv6.prefix_option(prefix) + icmpv6.mtu_option(1400)
               + icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, MAC_B)
               + icmpv6.rdnss_option(600, [ipv6.addr_to_int("2001:db8::53")]))
    assert icmpv6.build_ra(pkt.src, other=True, router_lifetime=1800, options=options) == bytes(pkt.payload)


def test_neighbour_solicitation_and_advertisement_are_the_kernels() -> None:
    pkt, _, msg = frame("neighbour_solicitation")
    ns = icmpv6.parse_ns(msg, src=pkt.src, dst=pkt.dst, hop_limit=pkt.hop_limit)
    assert (ns.target, ns.options.source_lladdr) == (LL_A, MAC_B)
    assert pkt.dst == ipv6.solicited_node(LL_A)
    assert icmpv6.build_ns(LL_B, pkt.dst, LL_A, source_lladdr=MAC_B) == bytes(pkt.payload)
    pkt, _, msg = frame("neighbour_advertisement")
    na = icmpv6.parse_na(msg, dst=pkt.dst, hop_limit=pkt.hop_limit)
    assert (na.target, na.router, na.solicited, na.override, na.options.target_lladdr) == (
        LL_A, False, True, True, MAC_A)
    assert icmpv6.build_na(LL_A, LL_B, LL_A, solicited=True, target_lladdr=MAC_A) == bytes(pkt.payload)


def test_dad_probe_is_the_kernels_with_its_nonce() -> None:
    pkt, _, msg = frame("dad_ns_with_nonce")
    ns = icmpv6.parse_ns(msg, src=pkt.src, dst=pkt.dst, hop_limit=pkt.hop_limit)
    assert pkt.src == ipv6.UNSPECIFIED and ns.target == LL_B and ns.options.source_lladdr is None
    assert ns.options.nonce is not None and len(ns.options.nonce) == 6
    assert icmpv6.build_ns(ipv6.UNSPECIFIED, pkt.dst, LL_B, nonce=ns.options.nonce) == bytes(pkt.payload)


def test_nd_messages_carry_dpkts_checksum() -> None:
    for name in ("router_solicitation", "router_advertisement", "neighbour_solicitation",
                 "neighbour_advertisement", "dad_ns_with_nonce", "mld_report_two_groups"):
        pkt, chain, _ = frame(name)
        message = bytes(pkt.datagram[chain.offset:])
        assert int.from_bytes(message[2:4], "big") == dpkt_checksum(message, pkt.src, pkt.dst), name


@given(addrs.filter(lambda a: not ipv6.is_multicast(a)), st.booleans(), st.booleans(), st.booleans(),
       st.one_of(st.none(), st.binary(min_size=6, max_size=6)))
@PROPERTY
def test_na_round_trip(target: int, router: bool, solicited: bool, override: bool, mac: bytes | None) -> None:
    raw = icmpv6.build_na(LL_A, LL_B, target, router=router, solicited=solicited, override=override,
                          target_lladdr=mac)
    na = icmpv6.parse_na(icmpv6.parse(raw, LL_A, LL_B), dst=LL_B, hop_limit=255)
    assert (na.target, na.router, na.solicited, na.override, na.options.target_lladdr) == (
        target, router, solicited, override, mac)


@given(st.lists(st.tuples(addrs, st.integers(min_value=0, max_value=128), st.booleans(), st.booleans(), u32, u32),
                max_size=5),
       st.lists(st.tuples(u32, st.lists(addrs, min_size=1, max_size=4)), max_size=3),
       st.one_of(st.none(), u32), u8, st.sampled_from([-1, 0, 1]), st.booleans(), st.booleans(),
       st.integers(min_value=0, max_value=0xFFFF), u32, u32)
@PROPERTY
def test_ra_round_trip(prefixes: list[tuple[int, int, bool, bool, int, int]], servers: list[tuple[int, list[int]]],
                       mtu: int | None, hop: int, prf: int, managed: bool, other: bool, lifetime: int,
                       reachable: int, retrans: int) -> None:
    infos = [PrefixInfo(p & ~((1 << (128 - n)) - 1), n, on, auto, v, pr) for p, n, on, auto, v, pr in prefixes]
    options = b"".join(icmpv6.prefix_option(i) for i in infos)
    options += b"".join(icmpv6.rdnss_option(life, s) for life, s in servers)
    options += icmpv6.mtu_option(mtu) if mtu is not None else b""
    raw = icmpv6.build_ra(LL_B, cur_hop_limit=hop, managed=managed, other=other, preference=prf,
                          router_lifetime=lifetime, reachable_time=reachable, retrans_timer=retrans, options=options)
    ra = icmpv6.parse_ra(icmpv6.parse(raw, LL_B, ipv6.ALL_NODES), src=LL_B, hop_limit=255)
    assert (ra.cur_hop_limit, ra.managed, ra.other, ra.preference, ra.router_lifetime, ra.reachable_time,
            ra.retrans_timer) == (hop, managed, other, prf, lifetime, reachable, retrans)
    assert ra.options.prefixes == infos and ra.options.mtu == mtu
    assert ra.options.rdnss == [icmpv6.Rdnss(life, tuple(s)) for life, s in servers]


def test_redirect_round_trip_and_its_redirected_header_fits_1280() -> None:
    target = ipv6.addr_to_int("fe80::1")
    destination = ipv6.addr_to_int("2001:db8:5::9")
    original = ipv6.build(A, destination, ipv6.NH_UDP, bytes(3000))
    raw = icmpv6.build_redirect(LL_B, A, target, destination, target_lladdr=MAC_A, redirected=original)
    assert ipv6.HEADER_LEN + len(raw) == ipv6.MIN_MTU
    r = icmpv6.parse_redirect(icmpv6.parse(raw, LL_B, A), src=LL_B, hop_limit=255)
    assert (r.target, r.destination, r.options.target_lladdr) == (target, destination, MAC_A)
    assert r.options.redirected is not None and original.startswith(r.options.redirected)


# --- neighbour discovery: every validation rule ---------------------------------------------------------


def _ns(src: int = LL_B, dst: int = ipv6.solicited_node(LL_A), target: int = LL_A, **kw: Any) -> bytes:
    return icmpv6.build_ns(src, dst, target, **kw)


def _nd_parser(name: str) -> Callable[..., Any]:
    def run(raw: bytes, src: int, dst: int, hop: int, fragmented: bool = False) -> Any:
        msg = icmpv6.parse(raw, src, dst)
        if name == "ns":
            return icmpv6.parse_ns(msg, src=src, dst=dst, hop_limit=hop, fragmented=fragmented)
        if name == "na":
            return icmpv6.parse_na(msg, dst=dst, hop_limit=hop, fragmented=fragmented)
        if name == "ra":
            return icmpv6.parse_ra(msg, src=src, hop_limit=hop, fragmented=fragmented)
        if name == "rs":
            return icmpv6.parse_rs(msg, src=src, hop_limit=hop, fragmented=fragmented)
        return icmpv6.parse_redirect(msg, src=src, hop_limit=hop, fragmented=fragmented)
    return run


def _with_code(raw: bytes, code: int, src: int, dst: int) -> bytes:
    msg = icmpv6.parse(raw, src, dst)
    return icmpv6.build(msg.type, code, msg.rest, msg.body, src, dst)


ND_SAMPLES = {
    "ns": (_ns(source_lladdr=MAC_B), LL_B, ipv6.solicited_node(LL_A)),
    "na": (icmpv6.build_na(LL_A, LL_B, LL_A, solicited=True, target_lladdr=MAC_A), LL_A, LL_B),
    "ra": (icmpv6.build_ra(LL_B), LL_B, ipv6.ALL_NODES),
    "rs": (icmpv6.build_rs(LL_A, source_lladdr=MAC_A), LL_A, ipv6.ALL_ROUTERS),
    "redirect": (icmpv6.build_redirect(LL_B, A, ipv6.addr_to_int("fe80::1"), ipv6.addr_to_int("2001:db8:5::9")),
                 LL_B, A),
}


@pytest.mark.parametrize("kind", sorted(ND_SAMPLES))
def test_every_nd_message_needs_hop_limit_255_code_0_and_no_fragmentation(kind: str) -> None:
    raw, src, dst = ND_SAMPLES[kind]
    parse = _nd_parser(kind)
    assert parse(raw, src, dst, 255) is not None
    for hop in (0, 1, 64, 254):
        rejects(parse, raw, {"ndisc.bad_hop_limit"}, src, dst, hop)  # RFC 4861 6.1, 7.1, 8.1
    rejects(parse, _with_code(raw, 1, src, dst), {"ndisc.bad_code"}, src, dst, 255)
    rejects(lambda *a: parse(*a, fragmented=True), raw, {"ndisc.fragmented"}, src, dst, 255)  # RFC 6980


@pytest.mark.parametrize(("kind", "minimum"), [("rs", 8), ("ra", 16), ("ns", 24), ("na", 24), ("redirect", 40)])
def test_every_nd_message_has_a_minimum_length(kind: str, minimum: int) -> None:
    raw, src, dst = ND_SAMPLES[kind]
    msg = icmpv6.parse(raw, src, dst)
    short = icmpv6.build(msg.type, 0, msg.rest, msg.body[:minimum - 9], src, dst)
    if minimum > 8:
        rejects(_nd_parser(kind), short, {"ndisc.truncated"}, src, dst, 255)


def test_ns_rules_of_rfc_4861_7_1_1() -> None:
    parse = _nd_parser("ns")
    group = ipv6.solicited_node(LL_A)
    rejects(parse, _ns(target=ipv6.ALL_NODES), {"ndisc.multicast_target"}, LL_B, group, 255)
    dad = _ns(src=ipv6.UNSPECIFIED)
    assert parse(dad, ipv6.UNSPECIFIED, group, 255).target == LL_A
    rejects(parse, _ns(src=ipv6.UNSPECIFIED, dst=LL_A), {"ndisc.dad_not_to_solicited_node"}, ipv6.UNSPECIFIED, LL_A,
            255)
    rejects(parse, _ns(src=ipv6.UNSPECIFIED, source_lladdr=MAC_B), {"ndisc.unspecified_with_lladdr"},
            ipv6.UNSPECIFIED, group, 255)


def test_na_rules_of_rfc_4861_7_1_2() -> None:
    parse = _nd_parser("na")
    rejects(parse, icmpv6.build_na(LL_A, ipv6.ALL_NODES, LL_A, solicited=True), {"ndisc.solicited_to_multicast"},
            LL_A, ipv6.ALL_NODES, 255)
    assert parse(icmpv6.build_na(LL_A, ipv6.ALL_NODES, LL_A), LL_A, ipv6.ALL_NODES, 255).solicited is False
    rejects(parse, icmpv6.build_na(LL_A, LL_B, ipv6.ALL_NODES), {"ndisc.multicast_target"}, LL_A, LL_B, 255)


def test_ra_and_redirect_come_from_link_local_addresses() -> None:
    rejects(_nd_parser("ra"), icmpv6.build_ra(B), {"ndisc.source_not_link_local"}, B, ipv6.ALL_NODES, 255)
    destination = ipv6.addr_to_int("2001:db8:5::9")
    parse = _nd_parser("redirect")
    rejects(parse, icmpv6.build_redirect(B, A, destination, destination), {"ndisc.source_not_link_local"}, B, A, 255)
    # RFC 4861 8.1: the target is link-local or the destination itself (on-link); never multicast destinations.
    assert parse(icmpv6.build_redirect(LL_B, A, destination, destination), LL_B, A, 255).target == destination
    rejects(parse, icmpv6.build_redirect(LL_B, A, B, destination), {"ndisc.bad_redirect_target"}, LL_B, A, 255)
    rejects(parse, icmpv6.build_redirect(LL_B, A, LL_B, ipv6.ALL_NODES), {"ndisc.multicast_destination"}, LL_B, A,
            255)


def test_rs_from_the_unspecified_address_carries_no_lladdr() -> None:
    rejects(_nd_parser("rs"), icmpv6.build_rs(ipv6.UNSPECIFIED, source_lladdr=MAC_A),
            {"ndisc.unspecified_with_lladdr"}, ipv6.UNSPECIFIED, ipv6.ALL_ROUTERS, 255)
    assert _nd_parser("rs")(icmpv6.build_rs(ipv6.UNSPECIFIED), ipv6.UNSPECIFIED, ipv6.ALL_ROUTERS, 255)


@pytest.mark.parametrize("options", [b"\x01\x00" + bytes(6), b"\x01\x02" + bytes(6), b"\x01"],
                         ids=["length_zero", "past_the_end", "half_an_option"])
def test_option_of_length_zero_or_past_the_end_drops_the_message(options: bytes) -> None:
    raw = icmpv6.build(icmpv6.TYPE_NEIGHBOUR_SOLICITATION, 0, 0, LL_A.to_bytes(16, "big") + options, LL_B, LL_A)
    rejects(_nd_parser("ns"), raw, {"ndisc.bad_option_length"}, LL_B, LL_A, 255)


def test_options_of_wrong_length_and_repeats_are_counted_and_unknown_ones_skipped() -> None:
    opts = icmpv6.parse_options(
        icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, MAC_A)
        + icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, MAC_B)  # a repeat: the first one stands
        + bytes((icmpv6.OPT_TARGET_LLADDR, 2)) + bytes(14)  # 14 bytes is no Ethernet address
        + bytes((icmpv6.OPT_PREFIX_INFO, 3)) + bytes(22)  # a prefix option is 32 bytes
        + bytes((icmpv6.OPT_PREFIX_INFO, 4, 129)) + bytes(29)  # a prefix longer than 128 bits
        + bytes((icmpv6.OPT_MTU, 2)) + bytes(14)
        + bytes((icmpv6.OPT_RDNSS, 2)) + bytes(14)  # RFC 8106: length 3 at least
        + bytes((icmpv6.OPT_RDNSS, 4)) + bytes(30)  # and odd
        + bytes((31, 1)) + bytes(6)  # DNSSL: unknown here, skipped silently
    )
    assert opts.source_lladdr == MAC_A and opts.target_lladdr is None and opts.mtu is None
    assert opts.prefixes == [] and opts.rdnss == [] and opts.invalid == 7


def test_prefix_bits_past_the_length_are_ignored() -> None:
    raw = icmpv6.prefix_option(PrefixInfo(ipv6.addr_to_int("2001:db8:0:0:ffff::1"), 64, True, True, 1, 1))
    assert icmpv6.parse_options(raw).prefixes[0].prefix == ipv6.addr_to_int("2001:db8::")


# --- MLDv2 -----------------------------------------------------------------------------------------------


def test_mld_report_is_the_kernels_whole_packet() -> None:
    pkt, chain, msg = frame("mld_report_two_groups")
    records = icmpv6.parse_mld_report(msg, src=pkt.src, hop_limit=pkt.hop_limit,
                                      router_alert=chain.router_alert == ipv6.ROUTER_ALERT_MLD)
    groups = [ipv6.solicited_node(ipv6.addr_to_int("2001:db8::1")), ipv6.solicited_node(LL_B)]
    assert records == [MulticastRecord(icmpv6.CHANGE_TO_EXCLUDE, g) for g in groups]
    message = icmpv6.build_mld_report(ipv6.UNSPECIFIED, records)
    assert icmpv6.mld_packet(ipv6.UNSPECIFIED, ipv6.ALL_MLDV2_ROUTERS, message) == bytes(pkt.datagram)


@pytest.mark.parametrize(("name", "expected"), [
    ("mld_report_allow_source", [(icmpv6.ALLOW_NEW_SOURCES, "ff05::1234", ("2001:db8::99",)),
                                 (icmpv6.CHANGE_TO_EXCLUDE, "ff02::1:3", ())]),
    ("mld_report_to_in_block", [(icmpv6.CHANGE_TO_INCLUDE, "ff02::1:3", ()),
                                (icmpv6.BLOCK_OLD_SOURCES, "ff05::1234", ("2001:db8::99",))]),
])
def test_mld_reports_with_sources_are_the_kernels(name: str, expected: list[tuple[int, str, tuple[str, ...]]]) -> None:
    pkt, chain, msg = frame(name)
    records = icmpv6.parse_mld_report(msg, src=pkt.src, hop_limit=1, router_alert=chain.router_alert == 0)
    assert records == [MulticastRecord(t, ipv6.addr_to_int(g), tuple(ipv6.addr_to_int(s) for s in srcs))
                       for t, g, srcs in expected]
    assert icmpv6.build_mld_report(pkt.src, records) == bytes(pkt.datagram[chain.offset:])


def test_mld_query_is_the_bridges() -> None:
    pkt, chain, msg = frame("mld_query_group_specific")
    query = icmpv6.parse_mld_query(msg, src=pkt.src, hop_limit=pkt.hop_limit, router_alert=chain.router_alert == 0)
    group = ipv6.addr_to_int("ff02::1:3")
    assert query == icmpv6.MldQuery(2, 1000, group, False, 2, 125, ())
    assert icmpv6.build_mld_query(pkt.src, pkt.dst, max_response_delay=1000, group=group) == bytes(
        pkt.datagram[chain.offset:])


@given(st.integers(min_value=0, max_value=0x7FFFFF), st.integers(min_value=0, max_value=(1 << 120) - 1).map(
    lambda low: 0xFF << 120 | low),
       st.lists(addrs, max_size=5), st.booleans(), st.integers(min_value=0, max_value=7),
       st.integers(min_value=0, max_value=31744))
@PROPERTY
def test_mld_query_round_trip(delay: int, group: int, sources: list[int], suppress: bool, qrv: int, qqi: int) -> None:
    raw = icmpv6.build_mld_query(LL_B, group, max_response_delay=delay, group=group, sources=sources,
                                 suppress=suppress, robustness=qrv, query_interval=qqi)
    q = icmpv6.parse_mld_query(icmpv6.parse(raw, LL_B, group), src=LL_B, hop_limit=1, router_alert=True)
    assert (q.version, q.group, q.sources, q.suppress, q.robustness) == (2, group, tuple(sources), suppress, qrv)
    # The exponential codes keep 13 (delay) and 5 (interval) significant bits: a little is rounded down.
    assert delay - (delay >> 12) <= q.max_response_delay <= delay
    assert qqi - (qqi >> 4) <= q.query_interval <= qqi


@pytest.mark.parametrize(("bits", "limit"), [(12, 1 << 16), (4, 1 << 8)])
def test_every_exponential_code_decodes_and_encodes_back(bits: int, limit: int) -> None:
    # RFC 3810 5.1.3 (Max Resp Code, 12 mantissa bits) and 5.1.9 (QQIC, 4): one code per value it can say.
    values = [icmpv6.decode_exponential(code, bits) for code in range(limit)]
    assert values == sorted(values) and len(set(values)) == limit
    assert all(icmpv6.encode_exponential(v, bits) == code for code, v in enumerate(values))
    assert values[-1] == (0x1FFF << 10 if bits == 12 else 0x1F << 10)  # 8,387,584 ms and 31,744 s
    assert icmpv6.encode_exponential(values[-1] + 12345, bits) == limit - 1


def test_mld_v1_query_is_recognised_by_its_24_bytes() -> None:
    raw = icmpv6.build(icmpv6.TYPE_MLD_QUERY, 0, 10000 << 16, bytes(16), LL_B, ipv6.ALL_NODES)
    q = icmpv6.parse_mld_query(icmpv6.parse(raw, LL_B, ipv6.ALL_NODES), src=LL_B, hop_limit=1, router_alert=True)
    assert (q.version, q.max_response_delay, q.group) == (1, 10000, 0)


def test_mld_validation_rules() -> None:
    query = icmpv6.build_mld_query(LL_B, ipv6.ALL_NODES, max_response_delay=10000)

    def parse_query(raw: bytes, src: int = LL_B, hop: int = 1, alert: bool = True) -> icmpv6.MldQuery:
        return icmpv6.parse_mld_query(icmpv6.parse(raw, src, ipv6.ALL_NODES), src=src, hop_limit=hop,
                                      router_alert=alert)
    assert parse_query(query).version == 2
    rejects(lambda r: parse_query(r, hop=2), query, {"mld.bad_hop_limit"})
    rejects(lambda r: parse_query(r, alert=False), query, {"mld.no_router_alert"})
    rejects(lambda r: parse_query(r, src=B), icmpv6.build_mld_query(B, ipv6.ALL_NODES, max_response_delay=1),
            {"mld.source_not_link_local"})
    msg = icmpv6.parse(query, LL_B, ipv6.ALL_NODES)
    for size in (20, 25, 26, 27):
        rejects(parse_query, icmpv6.build(msg.type, 0, msg.rest, msg.body[:size - 8], LL_B, ipv6.ALL_NODES),
                {"mld.bad_length"})
    more_sources = bytes(msg.body[:18]) + b"\x00\x02" + bytes(16)
    rejects(parse_query, icmpv6.build(msg.type, 0, msg.rest, more_sources, LL_B, ipv6.ALL_NODES), {"mld.truncated"})
    rejects(parse_query, icmpv6.build_mld_query(LL_B, ipv6.ALL_NODES, max_response_delay=1, group=A),
            {"mld.bad_group"})

    def parse_report(raw: bytes, src: int = LL_B) -> list[MulticastRecord]:
        return icmpv6.parse_mld_report(icmpv6.parse(raw, src, ipv6.ALL_MLDV2_ROUTERS), src=src, hop_limit=1,
                                       router_alert=True)
    records = [MulticastRecord(icmpv6.MODE_IS_EXCLUDE, ipv6.ALL_NODES, (A,), b"\x01\x02\x03\x04")]
    assert parse_report(icmpv6.build_mld_report(LL_B, records)) == records
    rejects(lambda r: parse_report(r, B), icmpv6.build_mld_report(B, records), {"mld.source_not_link_local"})
    rejects(parse_report, icmpv6.build_mld_report(LL_B, [MulticastRecord(4, A)]), {"mld.bad_group"})
    report = icmpv6.parse(icmpv6.build_mld_report(LL_B, records), LL_B, ipv6.ALL_MLDV2_ROUTERS)
    rejects(parse_report, icmpv6.build(report.type, 0, report.rest, report.body[:-1], LL_B, ipv6.ALL_MLDV2_ROUTERS),
            {"mld.truncated"})
    rejects(parse_report, icmpv6.build(report.type, 0, 2, report.body, LL_B, ipv6.ALL_MLDV2_ROUTERS),
            {"mld.truncated"})


# --- fuzz ------------------------------------------------------------------------------------------------


def _every_parser(raw: bytes, src: int, dst: int, hop: int) -> None:
    msg = parses_or_rejects(icmpv6.parse, raw, "icmpv6", src, dst)
    if msg is None:
        return
    prefixes = ("ndisc.", "mld.", "icmpv6.")
    for call in (lambda: icmpv6.parse_rs(msg, src=src, hop_limit=hop),
                 lambda: icmpv6.parse_ra(msg, src=src, hop_limit=hop),
                 lambda: icmpv6.parse_ns(msg, src=src, dst=dst, hop_limit=hop),
                 lambda: icmpv6.parse_na(msg, dst=dst, hop_limit=hop),
                 lambda: icmpv6.parse_redirect(msg, src=src, hop_limit=hop),
                 lambda: icmpv6.parse_mld_query(msg, src=src, hop_limit=hop, router_alert=True),
                 lambda: icmpv6.parse_mld_report(msg, src=src, hop_limit=hop, router_alert=True),
                 lambda: icmpv6.parse_options(msg.body),
                 lambda: icmpv6.parse_quote(msg.body)):
        try:
            call()
        except WireError as err:
            assert err.reason.startswith(prefixes), err.reason


@given(u8, st.binary(max_size=300), st.sampled_from([1, 255]))
@FUZZ
def test_fuzz_random_messages(mtype: int, body: bytes, hop: int) -> None:
    # Built with a valid checksum so the fuzz reaches the typed parsers rather than dying at the checksum.
    raw = icmpv6.build(mtype, 0, int.from_bytes(body[:4].ljust(4, b"\x00"), "big"), body[4:], LL_B, LL_A)
    _every_parser(raw, LL_B, LL_A, hop)


@given(st.sampled_from(sorted(FRAMES)), st.lists(st.tuples(st.integers(min_value=0, max_value=120), u8), max_size=6),
       st.integers(min_value=0, max_value=60))
@FUZZ
def test_fuzz_mutated_kernel_messages(name: str, edits: list[tuple[int, int]], cut: int) -> None:
    pkt = ipv6.parse(bytes.fromhex(FRAMES[name]))
    chain = ipv6.walk(pkt)
    message = bytearray(pkt.datagram[chain.offset:])
    for at, value in edits:
        if 4 <= at < len(message):  # past the checksum, which is then made good again
            message[at] = value
    rebuilt = icmpv6.build(message[0], message[1], int.from_bytes(message[4:8], "big"),
                           bytes(message[8:len(message) - cut % max(1, len(message) - 7)]), pkt.src, pkt.dst)
    _every_parser(rebuilt, pkt.src, pkt.dst, pkt.hop_limit)
