"""The narration of DHCPv6 (pystack fetch): our Solicit and Request, the server's Advertise and Reply with
the address, its lifetimes and DNS servers, arrows for the ladder; other clients' messages go untold."""

from __future__ import annotations

import io
import re

from pystack.tools.narrator import MULTICAST, US, Narrator
from pystack.tools.observe import IN, OUT, WireNarration
from pystack.wire import dhcp6, ethernet, ipv6, udp
from pystack.wire.dhcp6 import Dhcp6Message, IaAddress, IaNa

MAC = bytes.fromhex("0200000000aa")
ROUTER_MAC = bytes.fromhex("5e0000000001")
US_LL = ipv6.addr_to_int("fe80::ff:fe00:aa")
SERVER_LL = ipv6.addr_to_int("fe80::5c00:ff:fe00:1")
LEASED = ipv6.addr_to_int("2001:db8::142")
DNS = ipv6.addr_to_int("2001:db8::1")
SERVER_DUID = bytes.fromhex("00030001") + ROUTER_MAC


def _setup() -> tuple[WireNarration, Narrator, io.StringIO]:
    out = io.StringIO()
    narrator = Narrator(out, lambda: 10.0)
    wire = WireNarration(narrator, MAC, lambda: 10.0)
    wire.addresses6 = {US_LL}
    return wire, narrator, out


def _frame(src: int, dst: int, msg: Dhcp6Message, src_mac: bytes, dst_mac: bytes) -> bytes:
    sport, dport = (546, 547) if src == US_LL else (547, 546)
    segment = udp.build(src, dst, sport, dport, dhcp6.build(msg))
    return ethernet.build(dst_mac, src_mac, ethernet.ETHERTYPE_IPV6, ipv6.build(src, dst, ipv6.NH_UDP, segment))


def _lines(out: io.StringIO) -> list[str]:
    return [re.sub(r"^\[\s*[\d.]+\] ", "", line) for line in out.getvalue().splitlines()]


def test_a_stateful_exchange_is_told_message_by_message() -> None:
    wire, narrator, out = _setup()
    ours = dhcp6.duid_ll(MAC)
    group = dhcp6.ALL_DHCP_RELAY_AGENTS_AND_SERVERS
    ia = (IaNa(1, 300, 480, (IaAddress(LEASED, 600, 900),)),)
    wire.frame(OUT, _frame(US_LL, group, Dhcp6Message(dhcp6.SOLICIT, 0x0A0B0C, client_id=ours, ia_na=(IaNa(1),)),
                           MAC, ipv6.multicast_mac(group)))
    wire.frame(IN, _frame(SERVER_LL, US_LL, Dhcp6Message(dhcp6.ADVERTISE, 0x0A0B0C, client_id=ours,
                                                         server_id=SERVER_DUID, ia_na=ia, preference=7),
                          ROUTER_MAC, MAC))
    wire.frame(IN, _frame(SERVER_LL, US_LL, Dhcp6Message(dhcp6.REPLY, 2, client_id=ours, server_id=SERVER_DUID,
                                                         ia_na=ia, dns_servers=(DNS,)), ROUTER_MAC, MAC))
    assert _lines(out) == [
        "-> DHCPv6 Solicit to ff02::1:2 (all DHCP servers), xid 0x0a0b0c: is there a DHCPv6 server for an "
        "address? (RFC 8415 18.2.1)",
        "<- DHCPv6 Advertise from fe80::5c00:ff:fe00:1 (server DUID 00:03:00:01:5e:00:00:00:00:01): address "
        "2001:db8::142, preferred 600 s, valid 900 s; renew at T1 300 s, rebind at T2 480 s; preference 7",
        "<- DHCPv6 Reply from fe80::5c00:ff:fe00:1 (server DUID 00:03:00:01:5e:00:00:00:00:01): address "
        "2001:db8::142, preferred 600 s, valid 900 s; renew at T1 300 s, rebind at T2 480 s; DNS 2001:db8::1",
    ]
    assert [(a.src, a.dst, a.label) for a in narrator.arrows] == [
        (US, MULTICAST, "DHCPv6 Solicit"),
        ("fe80::5c00:ff:fe00:1", US, "DHCPv6 Advertise 2001:db8::142"),
        ("fe80::5c00:ff:fe00:1", US, "DHCPv6 Reply 2001:db8::142"),
    ]


def test_another_clients_reply_is_not_told() -> None:
    wire, narrator, out = _setup()
    other = dhcp6.duid_ll(bytes.fromhex("0200000000bb"))
    wire.frame(IN, _frame(SERVER_LL, US_LL, Dhcp6Message(dhcp6.REPLY, 2, client_id=other, server_id=SERVER_DUID),
                          ROUTER_MAC, MAC))
    assert out.getvalue() == "" and narrator.arrows == []
