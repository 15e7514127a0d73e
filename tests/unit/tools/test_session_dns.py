"""The client session's DNS servers (ClientSession.dns_servers, dns_to_ask): every source in a Linux
host's order (DHCPv4 lease, the routers' RDNSS, DHCPv6), read live so that a server whose RDNSS lifetime
ended is no longer asked, -4/-6 choosing a family, --dns of either family."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from pystack.api.families import V4, V6, Where
from pystack.config import StackConfig
from pystack.dhcp import Bound
from pystack.link.socketpair import SocketPairLink
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.tools.narrator import Narrator
from pystack.tools.session import ClientSession, Setup
from pystack.wire.icmpv6 import NdOptions, Rdnss, RouterAdvertisement


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def v6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


ROUTER = v6("fe80::1")
LEASE_DNS = (v4("192.0.2.1"), v4("192.0.2.53"))


@pytest.fixture
def session() -> Iterator[ClientSession]:
    """A session whose stack has a lease naming two IPv4 servers and IPv6 started (no loop running)."""
    link, other = SocketPairLink.pair()
    s = ClientSession(Setup(), Narrator(enabled=False))
    s.stack = Stack(bytes.fromhex("020000000002"), StackConfig())
    s.runtime = Runtime(s.stack, link)
    s.stack.start_ipv6(0.0)
    s.ipv6_started = 0.0
    s.lease = Bound(v4("192.0.2.100"), 24, v4("192.0.2.1"), LEASE_DNS, None, 3600.0, 1800.0, 3150.0, v4("192.0.2.1"))
    try:
        yield s
    finally:
        s.runtime.close()
        other.close()


def advertise(s: ClientSession, lifetime: int, *servers: str, now: float = 0.0) -> None:
    ra = RouterAdvertisement(64, False, False, 0, 1800, 0, 0,
                             NdOptions(rdnss=[Rdnss(lifetime, tuple(v6(a) for a in servers))]))
    assert s.stack is not None
    s.stack.nd.routers.on_advertisement(ROUTER, ra, now)


def test_lease_then_rdnss_then_dhcpv6_as_a_linux_host_lists_them(session: ClientSession) -> None:
    advertise(session, 600, "2001:db8::53")
    session.dhcp6_dns = [v6("2001:db8::54"), v6("2001:db8::53")]  # one already advertised: listed once
    assert session.dns_servers() == [Where(V4, LEASE_DNS[0]), Where(V4, LEASE_DNS[1]),
                                     Where(V6, v6("2001:db8::53")), Where(V6, v6("2001:db8::54"))]
    # glibc asks at most MAXNS (3) of them.
    assert session.dns_to_ask() == session.dns_servers()[:3]


def test_an_rdnss_server_whose_lifetime_ended_is_no_longer_asked(session: ClientSession) -> None:
    session.setup.family = 6
    advertise(session, 30, "2001:db8::53")
    assert session.dns_to_ask() == [Where(V6, v6("2001:db8::53"))]
    assert session.stack is not None
    session.stack.nd.routers.poll(30.0)  # the loop's timer: RFC 8106 5.1, the lifetime is over
    assert session.dns_to_ask() == [Where(V4, a) for a in LEASE_DNS]  # -6 without an IPv6 server: IPv4's


def test_minus_6_asks_only_ipv6_servers_when_there_are_any(session: ClientSession) -> None:
    session.setup.family = 6
    advertise(session, 600, "2001:db8::53", "2001:db8::54")
    assert session.dns_to_ask() == [Where(V6, v6("2001:db8::53")), Where(V6, v6("2001:db8::54"))]


def test_minus_4_asks_only_ipv4_servers(session: ClientSession) -> None:
    session.setup.family = 4
    advertise(session, 600, "2001:db8::53")
    assert session.dns_to_ask() == [Where(V4, a) for a in LEASE_DNS]


def test_dns_flag_of_either_family_replaces_every_other_source(session: ClientSession) -> None:
    advertise(session, 600, "2001:db8::53")
    session.setup.dns = [Where(V6, v6("2001:db8::99")), Where(V4, v4("192.0.2.99"))]
    assert session.dns_to_ask() == session.setup.dns


def test_a_lost_lease_takes_its_servers_with_it(session: ClientSession) -> None:
    advertise(session, 600, "2001:db8::53")
    session.lease = None
    assert session.dns_to_ask() == [Where(V6, v6("2001:db8::53"))]


@pytest.mark.parametrize("text, server", [
    ("192.0.2.1", Where(V4, v4("192.0.2.1"))), ("2001:db8::1", Where(V6, v6("2001:db8::1"))),
    ("fe80::1%pst0", Where(V6, v6("fe80::1"))),
])
def test_dns_flag_takes_an_ipv4_or_ipv6_address(text: str, server: Where, monkeypatch: pytest.MonkeyPatch) -> None:
    from pystack.cli import _setup, build_parser

    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert _setup(build_parser().parse_args(["fetch", "http://h/", "--dns", text])).dns == [server]
