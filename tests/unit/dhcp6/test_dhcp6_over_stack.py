"""The DHCPv6 host on a real Stack, through Ethernet frames on the in-memory wire: a router advertisement
from B with the M flag makes A lease an address from B's scripted server over UDP 546/547, configure it
with origin DHCPv6 after DAD (a /128: on-link is the advertised prefixes' word, RFC 5942), and answer B's
ping there; the O flag asks for DNS servers only; a leased address another node uses is declined; the
address goes when the lease ends."""

from __future__ import annotations

import logging
import random

import pytest

from pystack.config import StackConfig
from pystack.dhcp6 import Mode
from pystack.dhcp6.host import Dhcp6Host
from pystack.ip6.addresses import Origin, State
from pystack.link.memory import FakeClock, MemoryWire
from pystack.stack import Stack
from pystack.wire import dhcp6, icmpv6, ipv6

from ip6.stack_pair import A_LL, A_MAC, B6, B_LL, B_MAC, ping6
from .fake_server import DNS, LEASED

PREFIX = ipv6.addr_to_int("2001:db8::")


class Server:
    """B's DHCPv6 server: answers Solicit, Request, Renew, Rebind, Decline, Release and Information-Request with
    ``answer``'s defaults and whatever the test sets in ``reply``."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.seen: list[dhcp6.Dhcp6Message] = []
        self.sources: list[tuple[int, int]] = []
        self.reply: dict[str, object] = {}
        self.silent = False
        self.endpoint = stack.udp6.bind(0, dhcp6.SERVER_PORT)
        self.endpoint.on_event = lambda _ep: self.serve()
        stack.nd.mld.join(dhcp6.ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 0.0)

    def serve(self) -> None:
        from .fake_server import answer
        while (item := self.endpoint.recvfrom()) is not None:
            data, source = item
            msg = dhcp6.parse(data)
            self.seen.append(msg)
            self.sources.append(source)
            if self.silent:
                continue
            mtype = dhcp6.ADVERTISE if msg.msg_type == dhcp6.SOLICIT else dhcp6.REPLY
            self.endpoint.sendto(answer(data, mtype, **self.reply), source, self.stack.now)  # type: ignore[arg-type]

    def types(self) -> list[str]:
        return [m.name for m in self.seen]


def _pair(*, b_holds: int | None = None) -> tuple[Stack, Stack, MemoryWire, Dhcp6Host, Server]:
    clock = FakeClock()
    a = Stack(A_MAC, StackConfig(), rng=random.Random(1))
    b = Stack(B_MAC, StackConfig(), rng=random.Random(2))
    for stack in (a, b):
        stack.start_ipv6(clock.now)
    b.add_address6(B6, 64, clock.now)
    if b_holds is not None:
        b.add_address6(b_holds, 128, clock.now)
    host = Dhcp6Host.attach(a)
    server = Server(b)
    wire = MemoryWire(a, b, clock=clock)
    wire.run(duration=5.0)  # both past DAD for their link-local addresses
    return a, b, wire, host, server


def _advertise(b: Stack, wire: MemoryWire, *, managed: bool, other: bool, prefix: bool = True,
               valid: int = 86400) -> None:
    options = icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, B_MAC)
    if prefix:  # on-link, not autonomous: addresses come from DHCPv6 only (dnsmasq's RA for a DHCP range)
        options += icmpv6.prefix_option(icmpv6.PrefixInfo(PREFIX, 64, True, False, valid, min(valid, 14400)))
    ra = icmpv6.build_ra(B_LL, managed=managed, other=other, options=options)
    b.send_ip6(ipv6.ALL_NODES, ipv6.NH_ICMPV6, ra, wire.clock.now, src=B_LL, hop_limit=255)


def _entry(stack: Stack, address: int):
    return next((e for e in stack.addresses6 if e.address == address), None)


def test_the_m_flag_leases_an_address_that_b_then_pings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pystack")
    a, b, wire, host, server = _pair()
    _advertise(b, wire, managed=True, other=False)
    wire.run(until=lambda: (e := _entry(a, LEASED)) is not None and e.state is State.PREFERRED, limit=30)
    entry = _entry(a, LEASED)
    assert entry is not None and entry.origin is Origin.DHCPV6 and entry.prefix_len == 128
    assert server.types() == ["Solicit", "Request"]
    assert {src for src, port in server.sources} == {A_LL} and {port for _, port in server.sources} == {546}
    assert 7190 < entry.valid_until - wire.clock.now <= 7200  # the Reply's valid lifetime, DAD's second ago
    assert host.dns_servers == (DNS,)
    assert f"IPv6 address {ipv6.int_to_addr(LEASED)}/128 (DHCPv6) configured" in caplog.text
    replies = ping6(b, wire, LEASED, 100)
    assert replies and replies[0][0] == LEASED


def test_without_an_on_link_prefix_the_lease_is_a_128() -> None:
    a, b, wire, _host, _server = _pair()
    _advertise(b, wire, managed=True, other=False, prefix=False)
    wire.run(until=lambda: (e := _entry(a, LEASED)) is not None and e.state is State.PREFERRED, limit=30)
    entry = _entry(a, LEASED)
    assert entry is not None and entry.prefix_len == 128


def test_on_link_follows_the_advertised_prefixes_not_the_lease() -> None:
    """RFC 5942 5 and RFC 4861 5.2: an address says nothing of what is on-link, the prefixes with the L flag
    do, as they come and go. Leased before any prefix was advertised, A reaches B's 2001:db8::1 directly
    once an advertisement names 2001:db8::/64 on-link, and no longer once that prefix's lifetime ends."""
    a, b, wire, _host, _server = _pair()
    _advertise(b, wire, managed=True, other=False, prefix=False)
    wire.run(until=lambda: (e := _entry(a, LEASED)) is not None and e.state is State.PREFERRED, limit=30)
    assert not a.nd.is_on_link(B6)
    assert a.nd.route(B6) == B_LL  # the advertising router, B, is the way to anything off-link
    _advertise(b, wire, managed=True, other=False, valid=60)
    wire.run(duration=1.0)
    assert a.nd.is_on_link(B6) and a.nd.route(B6) == B6 and _entry(a, LEASED).prefix_len == 128
    replies = ping6(a, wire, B6, 100)
    assert replies and replies[0][0] == B6 and a.nd.neighbours.lookup(B6) is not None  # resolved B6 itself
    wire.run(duration=60.0)  # the prefix's valid lifetime runs out (the lease's does not)
    assert _entry(a, LEASED) is not None and not a.nd.is_on_link(B6)


def test_the_lease_renews_at_t1_and_the_address_goes_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pystack")
    a, b, wire, _host, server = _pair()
    server.reply = {"t1": 60, "t2": 90, "preferred": 100, "valid": 120}
    _advertise(b, wire, managed=True, other=False)
    wire.run(until=lambda: (e := _entry(a, LEASED)) is not None and e.state is State.PREFERRED, limit=30)
    wire.run(until=lambda: "Renew" in server.types(), limit=70)
    wire.run(duration=0.5)  # the Reply reaches A
    entry = _entry(a, LEASED)
    assert entry is not None and entry.valid_until > wire.clock.now + 100  # renewed: 120 s from the Renew
    server.silent = True  # the server goes away: Renew, then Rebind, then the lease ends
    wire.run(until=lambda: _entry(a, LEASED) is None, limit=200)
    assert "Rebind" in server.types()
    assert f"IPv6 address {ipv6.int_to_addr(LEASED)}/128 (DHCPv6) removed" in caplog.text


def test_release_takes_the_address_out_at_once_and_ends_with_the_servers_reply(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pystack")
    a, b, wire, host, server = _pair()
    _advertise(b, wire, managed=True, other=False)
    wire.run(until=lambda: (e := _entry(a, LEASED)) is not None and e.state is State.PREFERRED, limit=30)
    host.release(wire.clock.now, attempts=1)
    assert _entry(a, LEASED) is None and not host.leased and host.releasing  # gone before any answer
    wire.run(until=lambda: not host.releasing, limit=5)
    assert server.types()[-1] == "Release" and server.types().count("Release") == 1
    assert f"DHCPv6: Release of {ipv6.int_to_addr(LEASED)} acknowledged by the server (Success)" in caplog.text


def test_a_release_nobody_answers_is_given_up_at_the_first_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pystack")
    a, b, wire, host, server = _pair()
    _advertise(b, wire, managed=True, other=False)
    wire.run(until=lambda: (e := _entry(a, LEASED)) is not None and e.state is State.PREFERRED, limit=30)
    server.silent = True
    host.release(wire.clock.now, attempts=1)
    wire.run(until=lambda: not host.releasing, limit=5)
    assert server.types().count("Release") == 1
    assert f"DHCPv6: no Reply to the Release of {ipv6.int_to_addr(LEASED)}" in caplog.text


def test_the_o_flag_asks_only_for_dns_servers() -> None:
    a, b, wire, host, server = _pair()
    _advertise(b, wire, managed=False, other=True)
    wire.run(until=lambda: bool(host.dns_servers), limit=30)
    assert host.dns_servers == (DNS,) and server.types() == ["Information-Request"]
    assert not [e for e in a.addresses6 if e.origin is Origin.DHCPV6]


def test_an_address_another_node_uses_is_declined() -> None:
    a, b, wire, host, server = _pair(b_holds=LEASED)
    _advertise(b, wire, managed=True, other=False)
    wire.run(until=lambda: "Decline" in server.types(), limit=30)
    decline = server.seen[server.types().index("Decline")]
    assert [x.address for x in decline.ia_na[0].addresses] == [LEASED]
    assert _entry(a, LEASED) is None and a.counters["dhcp6.declines_sent"] == 1
    assert LEASED not in host.leased


def test_dhcp6_started_by_hand_waits_for_the_link_local_address() -> None:
    clock = FakeClock()
    a = Stack(A_MAC, StackConfig(), rng=random.Random(1))
    b = Stack(B_MAC, StackConfig(), rng=random.Random(2))
    a.start_ipv6(clock.now)
    b.start_ipv6(clock.now)
    host = Dhcp6Host.attach(a)
    host.start(Mode.STATEFUL, clock.now)  # the link-local address is still tentative
    server = Server(b)
    wire = MemoryWire(a, b, clock=clock)
    wire.run(until=lambda: bool(host.leased), limit=30)
    assert server.types()[:2] == ["Solicit", "Request"] and set(server.sources) == {(A_LL, 546)}
    assert a.counters["drop.dhcp6.no_link_local"] == 0


def test_a_reply_from_a_wrong_port_is_dropped() -> None:
    a, b, wire, host, _server = _pair()
    host.start(Mode.STATELESS, wire.clock.now)
    rogue = b.udp6.bind(0, 9999)
    rogue.sendto(b"\x07\x00\x00\x01", (A_LL, 546), wire.clock.now)
    wire.run(duration=0.5)
    assert a.counters["drop.dhcp6.wrong_source_port"] == 1
