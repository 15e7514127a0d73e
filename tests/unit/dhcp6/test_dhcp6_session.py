"""What the client session does with DHCPv6's outcome: DNS servers from a Reply join the list the resolver
asks (after the lease's and the routers'), and the narration says what was learnt."""

from __future__ import annotations

import io
import ipaddress
import math
from collections.abc import Iterator

import pytest

from pystack.api.families import V4, V6, Where
from pystack.config import StackConfig
from pystack.dhcp6 import Informed, Leased, Mode
from pystack.link.socketpair import SocketPairLink
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.tools.narrator import Narrator
from pystack.tools.observe import WireNarration
from pystack.tools.session import ClientSession, Setup

DNS4 = int(ipaddress.IPv4Address("192.0.2.1"))
DNS6 = int(ipaddress.IPv6Address("2001:db8::53"))
LEASED = int(ipaddress.IPv6Address("2001:db8::142"))


@pytest.fixture
def session() -> Iterator[tuple[ClientSession, io.StringIO]]:
    """A session with IPv6 started the way it starts it (no loop running), static IPv4 DNS 192.0.2.1."""
    link, other = SocketPairLink.pair()
    out = io.StringIO()
    narrator = Narrator(out)
    s = ClientSession(Setup(dns=[]), narrator)
    s.stack = Stack(bytes.fromhex("020000000002"), StackConfig())
    s.wire = WireNarration(narrator, s.stack.mac, lambda: 0.0)
    s.runtime = Runtime(s.stack, link)
    s._start_ipv6(s.stack.config.medium)
    try:
        yield s, out
    finally:
        s.runtime.close()
        other.close()


def test_the_session_runs_a_dhcp6_host_that_follows_router_advertisements(
        session: tuple[ClientSession, io.StringIO]) -> None:
    s, _out = session
    assert s.dhcp6 is not None and s.stack is not None
    assert s.dhcp6.on_router_advertisement in s.stack.nd.ra_observers
    assert not s.dhcp6.acquiring()
    s.dhcp6.start(Mode.STATEFUL, 0.0)  # before the link-local address passed DAD: wanted, not yet sent
    assert s.dhcp6.acquiring()


def test_dns_servers_from_a_reply_are_asked_and_told(session: tuple[ClientSession, io.StringIO]) -> None:
    s, out = session
    assert s.dhcp6 is not None and s.dhcp6.on_event is not None
    s.dhcp6.on_event(Informed((DNS6,), ("example.test",), math.inf, b"\x00\x03\x00\x01abcdef"))
    assert Where(V6, DNS6) in s.dns_servers()
    assert "DHCPv6: DNS 2001:db8::53, search example.test" in out.getvalue()
    s.dhcp6.on_event(Leased(LEASED, 600.0, 900.0, 300.0, 480.0, b"x"))
    assert "DHCPv6 lease: 2001:db8::142, preferred 600 s" in out.getvalue()
    assert Where(V4, DNS4) not in s.dns_servers()  # only what was learnt: no lease, no RDNSS here
