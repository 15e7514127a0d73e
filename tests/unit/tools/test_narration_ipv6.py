"""The narration of IPv6 frames: router solicitation and advertisement, DAD, neighbour solicitation and
advertisement (IPv6's ARP), MLD, ICMPv6 echo, AAAA answers and TCP over IPv6; and what is not ours to tell.

Frames are built with pystack's wire builders (cross-checked against dpkt in tests/unit/wire), addressed
as in the dual-stack campus lab: pystack's SLAAC address in 2001:db8::/64, the router's link-local
address, the web server 2001:db8:1::80.
"""

from __future__ import annotations

import io
import ipaddress
import re

from pystack.tools.narrator import MULTICAST, US, Narrator, describe_resolution
from pystack.tools.observe import IN, OUT, WireNarration
from pystack.wire import dns, ethernet, ipv4, ipv6, tcp, udp
from pystack.wire import icmpv6 as icmp6
from pystack.wire.icmpv6 import MulticastRecord, PrefixInfo

MAC = bytes.fromhex("0200000000aa")
ROUTER_MAC = bytes.fromhex("5e0000000001")
OTHER_MAC = bytes.fromhex("5e0000000099")


def a6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


US_LL = a6("fe80::ff:fe00:aa")
US6 = a6("2001:db8::ff:fe00:aa")
ROUTER_LL = a6("fe80::5c00:ff:fe00:1")
WEB6 = a6("2001:db8:1::80")
DNS4 = 0xC0000201


class Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def __call__(self) -> float:
        return self.t


def _setup() -> tuple[WireNarration, Narrator, io.StringIO]:
    clock = Clock()
    out = io.StringIO()
    narrator = Narrator(out, clock)
    wire = WireNarration(narrator, MAC, clock)
    wire.addresses6 = {US_LL, US6}
    return wire, narrator, out


def _lines(out: io.StringIO) -> list[str]:
    return [re.sub(r"^\[\s*[\d.]+\] ", "", line) for line in out.getvalue().splitlines()]


def _frame(src_mac: bytes, dst_mac: bytes, packet: bytes) -> bytes:
    return ethernet.build(dst_mac, src_mac, ethernet.ETHERTYPE_IPV6, packet)


def _nd(src: int, dst: int, message: bytes) -> bytes:
    return ipv6.build(src, dst, ipv6.NH_ICMPV6, message, hop_limit=255)


def _ra() -> bytes:
    options = (icmp6.prefix_option(PrefixInfo(a6("2001:db8::"), 64, True, True, 3600, 1800))
               + icmp6.mtu_option(1500) + icmp6.rdnss_option(600, [ROUTER_LL])
               + icmp6.lladdr_option(icmp6.OPT_SOURCE_LLADDR, ROUTER_MAC))
    return _nd(ROUTER_LL, ipv6.ALL_NODES, icmp6.build_ra(ROUTER_LL, router_lifetime=1800, options=options))


def test_router_solicitation_and_advertisement() -> None:
    wire, narrator, out = _setup()
    rs = _nd(US_LL, ipv6.ALL_ROUTERS, icmp6.build_rs(US_LL, source_lladdr=MAC))
    wire.frame(OUT, _frame(MAC, ipv6.multicast_mac(ipv6.ALL_ROUTERS), rs))
    wire.frame(IN, _frame(ROUTER_MAC, ipv6.multicast_mac(ipv6.ALL_NODES), _ra()))
    lines = _lines(out)
    assert lines[0].startswith("-> router solicitation from fe80::ff:fe00:aa to ff02::2 (all routers)")
    assert lines[1] == ("<- router advertisement from fe80::5c00:ff:fe00:1: prefix 2001:db8::/64 (on-link, "
                        "autonomous: SLAAC), router lifetime 1800 s, MTU 1500, DNS fe80::5c00:ff:fe00:1 (RDNSS, "
                        "RFC 8106), its MAC 5e:00:00:00:00:01 (so no neighbour solicitation is needed for it)")
    assert narrator.roles_of("fe80::5c00:ff:fe00:1") == ["router"]
    assert [(a.src, a.dst, a.label) for a in narrator.arrows] == [
        (US, MULTICAST, "RS (all routers)"), ("fe80::5c00:ff:fe00:1", US, "RA 2001:db8::/64")]


def test_dad_probe_and_address_resolution_both_ways() -> None:
    wire, narrator, out = _setup()
    group = ipv6.solicited_node(US6)
    dad = _nd(0, group, icmp6.build_ns(0, group, US6, nonce=b"\x01" * 6))
    wire.frame(OUT, _frame(MAC, ipv6.multicast_mac(group), dad))
    # The router resolves our address: its NS to our solicited-node group, our NA back.
    ns_in = _nd(ROUTER_LL, group, icmp6.build_ns(ROUTER_LL, group, US6, source_lladdr=ROUTER_MAC))
    wire.frame(IN, _frame(ROUTER_MAC, ipv6.multicast_mac(group), ns_in))
    na_out = _nd(US6, ROUTER_LL, icmp6.build_na(US6, ROUTER_LL, US6, solicited=True, target_lladdr=MAC))
    wire.frame(OUT, _frame(MAC, ROUTER_MAC, na_out))
    # We resolve the router (IPv6's ARP), and it answers.
    rgroup = ipv6.solicited_node(ROUTER_LL)
    ns_out = _nd(US_LL, rgroup, icmp6.build_ns(US_LL, rgroup, ROUTER_LL, source_lladdr=MAC))
    wire.frame(OUT, _frame(MAC, ipv6.multicast_mac(rgroup), ns_out))
    na_in = _nd(ROUTER_LL, US_LL, icmp6.build_na(ROUTER_LL, US_LL, ROUTER_LL, router=True, solicited=True,
                                                 target_lladdr=ROUTER_MAC))
    wire.frame(IN, _frame(ROUTER_MAC, MAC, na_in))
    lines = _lines(out)
    assert lines[0].startswith("-> DAD probe: is 2001:db8::ff:fe00:aa in use? (neighbour solicitation from :: "
                               "to ff02::1:ff00:aa")
    assert lines[1] == "<- neighbour solicitation from fe80::5c00:ff:fe00:1: who has 2001:db8::ff:fe00:aa?"
    assert lines[2] == ("-> neighbour advertisement to fe80::5c00:ff:fe00:1: 2001:db8::ff:fe00:aa is at "
                        "02:00:00:00:00:aa (solicited, override)")
    assert lines[3] == ("-> neighbour solicitation: who has fe80::5c00:ff:fe00:1? (IPv6's ARP, to its "
                        "solicited-node group ff02::1:ff00:1)")
    assert lines[4] == ("<- neighbour advertisement: fe80::5c00:ff:fe00:1 is at 5e:00:00:00:00:01 (router, "
                        "solicited, override)")
    assert [a.label for a in narrator.arrows] == [
        "DAD NS 2001:db8::ff:fe00:aa?", "NS who-has 2001:db8::ff:fe00:aa", "NA 2001:db8::ff:fe00:aa is-at",
        "NS who-has fe80::5c00:ff:fe00:1", "NA fe80::5c00:ff:fe00:1 is-at"]
    assert narrator.arrows[0].dst == MULTICAST and narrator.arrows[3].dst == MULTICAST


def test_another_nodes_dad_for_our_address_is_told() -> None:
    wire, _narrator, out = _setup()
    group = ipv6.solicited_node(US6)
    dad = _nd(0, group, icmp6.build_ns(0, group, US6, nonce=b"\x02" * 6))
    wire.frame(IN, _frame(OTHER_MAC, ipv6.multicast_mac(group), dad))
    assert _lines(out) == ["<- another node's DAD probe for 2001:db8::ff:fe00:aa: it wants our address too"]


def test_mld_report_names_the_groups_joined() -> None:
    wire, narrator, out = _setup()
    group = ipv6.solicited_node(US6)
    report = icmp6.mld_packet(US_LL, ipv6.ALL_MLDV2_ROUTERS,
                              icmp6.build_mld_report(US_LL, [MulticastRecord(icmp6.CHANGE_TO_EXCLUDE, group)]))
    wire.frame(OUT, _frame(MAC, ipv6.multicast_mac(ipv6.ALL_MLDV2_ROUTERS), report))
    assert _lines(out)[0].startswith("-> MLDv2 report: listening to ff02::1:ff00:aa (RFC 3810")
    assert (narrator.arrows[0].dst, narrator.arrows[0].bulk) == (MULTICAST, "MLD report")


def test_the_kernels_own_traffic_on_the_link_is_not_told() -> None:
    """Its router solicitations, its MLD reports, its DAD for its own address, a solicitation for another
    node, and unicast to an address that is not ours."""
    wire, narrator, out = _setup()
    k_ll = a6("fe80::5c00:ff:fe00:99")
    frames = [
        _nd(k_ll, ipv6.ALL_ROUTERS, icmp6.build_rs(k_ll, source_lladdr=OTHER_MAC)),
        icmp6.mld_packet(k_ll, ipv6.ALL_MLDV2_ROUTERS, icmp6.build_mld_report(
            k_ll, [MulticastRecord(icmp6.CHANGE_TO_EXCLUDE, ipv6.solicited_node(k_ll))])),
        _nd(0, ipv6.solicited_node(k_ll), icmp6.build_ns(0, ipv6.solicited_node(k_ll), k_ll, nonce=b"\x03" * 6)),
        _nd(k_ll, ipv6.solicited_node(ROUTER_LL), icmp6.build_ns(k_ll, ipv6.solicited_node(ROUTER_LL), ROUTER_LL,
                                                                 source_lladdr=OTHER_MAC)),
        ipv6.build(WEB6, a6("2001:db8::77"), ipv6.NH_TCP, tcp.build(WEB6, a6("2001:db8::77"), 80, 4000, 1, 0, tcp.SYN,
                                                                    1000, checksum=False)),
    ]
    for packet in frames:
        dst = ipv6.parse(packet).dst
        mac = ipv6.multicast_mac(dst) if ipv6.is_multicast(dst) else OTHER_MAC
        wire.frame(IN, _frame(OTHER_MAC, mac, packet))
    assert out.getvalue() == "" and narrator.arrows == []


def test_tcp_over_ipv6_uses_bracketed_endpoints() -> None:
    wire, narrator, out = _setup()
    syn = tcp.build(US6, WEB6, 40000, 80, 1000, 0, tcp.SYN, 65535, tcp.build_options(mss=1440), checksum=False)
    wire.frame(OUT, _frame(MAC, ROUTER_MAC, ipv6.build(US6, WEB6, ipv6.NH_TCP, syn)))
    synack = tcp.build(WEB6, US6, 80, 40000, 5000, 1001, tcp.SYN | tcp.ACK, 64000, checksum=False)
    wire.frame(IN, _frame(ROUTER_MAC, MAC, ipv6.build(WEB6, US6, ipv6.NH_TCP, synack)))
    data = tcp.build(WEB6, US6, 80, 40000, 5001, 1001, tcp.ACK, 64000, payload=b"x" * 100, checksum=False)
    for _ in range(3):
        wire.frame(IN, _frame(ROUTER_MAC, MAC, ipv6.build(WEB6, US6, ipv6.NH_TCP, data)))
    wire.flush()
    lines = _lines(out)
    assert lines[0] == ("-> TCP [2001:db8::ff:fe00:aa]:40000 > [2001:db8:1::80]:80 [SYN] seq 1000 win 65535 "
                        "<mss 1440>")
    assert lines[1].startswith("<- TCP [2001:db8:1::80]:80 > [2001:db8::ff:fe00:aa]:40000 [SYN,ACK] seq 5000 ack 1001")
    assert lines[2].startswith("<- TCP [2001:db8:1::80]:80 > [2001:db8::ff:fe00:aa]:40000 [ACK] seq 1 ack 1")
    assert lines[3] == "   ... 2 more data segments in (200 bytes) (port 40000 <-> [2001:db8:1::80]:80)"
    assert narrator.arrows[0].dst == "2001:db8:1::80"


def test_icmpv6_echo_and_a_fragmented_one_are_told_once() -> None:
    wire, _narrator, out = _setup()
    request = icmp6.build(icmp6.TYPE_ECHO_REQUEST, 0, 7 << 16 | 1, b"p" * 56, US6, WEB6)
    wire.frame(OUT, _frame(MAC, ROUTER_MAC, ipv6.build(US6, WEB6, ipv6.NH_ICMPV6, request)))
    big = icmp6.build(icmp6.TYPE_ECHO_REPLY, 0, 7 << 16 | 2, b"q" * 3000, WEB6, US6)
    for piece in ipv6.fragment(WEB6, US6, ipv6.NH_ICMPV6, big, 1500, ident=9):
        wire.frame(IN, _frame(ROUTER_MAC, MAC, piece))
    assert _lines(out) == ["-> ICMPv6 echo request 2001:db8::ff:fe00:aa > 2001:db8:1::80, id 7 seq 1",
                           "<- ICMPv6 echo reply 2001:db8:1::80 > 2001:db8::ff:fe00:aa, id 7 seq 2"]


def test_aaaa_answers_and_their_resolution_line() -> None:
    wire, _narrator, out = _setup()
    question = dns.Question("www.example.test", dns.TYPE_AAAA)
    answer = dns.Record("www.example.test", dns.TYPE_AAAA, dns.CLASS_IN, 600, ipaddress.IPv6Address(WEB6))
    msg = dns.build(dns.DnsMessage(0xBEEF, dns.FLAG_QR | dns.FLAG_RD | dns.FLAG_RA, [question], [answer]))
    wire.address = 0xC0000232
    segment = udp.build(DNS4, 0xC0000232, 53, 53000, msg)
    wire.frame(IN, ethernet.build(MAC, ROUTER_MAC, ethernet.ETHERTYPE_IPV4,
                                  ipv4.build(DNS4, 0xC0000232, ipv4.PROTO_UDP, segment)))
    assert _lines(out) == ["<- DNS answer id 0xbeef from 192.0.2.1: NOERROR, www.example.test AAAA 2001:db8:1::80 "
                           "(ttl 600)"]
    assert describe_resolution("www.example.test", [], [WEB6], 600, False, family=6) == (
        "www.example.test -> AAAA 2001:db8:1::80 (ttl 600 s)")


def test_the_ladder_puts_multicast_beside_broadcast() -> None:
    narrator = Narrator(io.StringIO(), Clock())
    narrator.arrow("198.51.100.80", US, "SYN,ACK")
    narrator.arrow(US, MULTICAST, "RS (all routers)")
    narrator.arrow(US, "broadcast", "ARP who-has 192.0.2.1")
    keys = [p.key for p in narrator.ladder_parts()[0]]
    assert keys == [US, "broadcast", MULTICAST, "198.51.100.80"]
