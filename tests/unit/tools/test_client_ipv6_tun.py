"""The client commands on a TUN speak IPv6 as on a TAP: ``--address6`` (and ``--gateway6``) reach the
session, which brings IPv6 up on the IP medium (no neighbour discovery, no DAD, no DHCPv6: its DUID-LL
needs a MAC) with the static address usable at once and every destination sent to the peer."""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterator

import pytest

from pystack.cli import _setup, build_parser, main
from pystack.config import StackConfig
from pystack.ip6.addresses import Origin
from pystack.link.socketpair import SocketPairLink
from pystack.medium import Medium
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.tools.narrator import Narrator
from pystack.tools.observe import WireNarration
from pystack.tools.session import ClientSession, Setup

TUN = ["--tun", "tun0", "--address", "192.0.2.2/24"]
ADDRESS6 = ipaddress.IPv6Interface("2001:db8::2/64")
ELSEWHERE = int(ipaddress.IPv6Address("2001:db8:5::80"))


@pytest.mark.parametrize("argv", [
    ["fetch", "http://[2001:db8::1]/", *TUN, "--address6", "2001:db8::2/64", "-6"],
    ["ping", "2001:db8::1", *TUN, "--address6", "2001:db8::2/64", "--gateway6", "2001:db8::1", "-6"],
    ["resolve", "h", *TUN, "--address6", "2001:db8::2/64"],
    ["exec", *TUN, "--address6", "2001:db8::2/64", "--", "-c", "pass"],
])
def test_address6_and_gateway6_reach_the_setup_on_a_tun(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    setup = _setup(build_parser().parse_args(argv))
    assert setup.medium is Medium.IP and setup.address6 == ADDRESS6
    assert setup.gateway6 == (ipaddress.IPv6Address("2001:db8::1") if "--gateway6" in argv else None)


@pytest.mark.parametrize("argv, needle", [
    (["fetch", "http://h/", *TUN, "--address6", "2001:db8::2/64", "-4"], "--address6 goes with IPv6, which -4"),
    (["ping", "h", *TUN, "--address6", "2001:db8::2/64", "--gateway6", "2001:db9::1"], "--gateway6 2001:db9::1 is "
                                                                                      "not on-link"),
    (["ping", "h", *TUN, "--gateway6", "2001:db8::1"], "not on-link"),
    (["resolve", "h", *TUN, "--address6", "2001:db8::2/64", "--mtu", "1200"], "MTU of at least 1280"),
    (["fetch", "http://h/", "--address6", "2001:db8::2/64", "--gateway6", "2001:db8::2"], "pystack's own"),
])
def test_bad_ipv6_flags_are_refused_in_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # checked before root and the device
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pystack: error:") and needle in err[0], err


def _session(medium: Medium, setup: Setup) -> Iterator[tuple[ClientSession, io.StringIO]]:
    link, other = SocketPairLink.pair()
    out = io.StringIO()
    narrator = Narrator(out)
    s = ClientSession(setup, narrator)
    s.stack = Stack(bytes.fromhex("020000000002"), StackConfig(medium=medium))
    s.wire = WireNarration(narrator, s.stack.mac, lambda: 0.0, medium)
    s.runtime = Runtime(s.stack, link)
    try:
        s._start_ipv6(medium)
        yield s, out
    finally:
        s.runtime.close()
        other.close()


@pytest.fixture
def tun_session() -> Iterator[tuple[ClientSession, io.StringIO]]:
    yield from _session(Medium.IP, Setup(medium=Medium.IP, address6=ADDRESS6))


def test_on_a_tun_ipv6_comes_up_with_the_static_address_usable_at_once(
        tun_session: tuple[ClientSession, io.StringIO]) -> None:
    s, out = tun_session
    assert s.ipv6_started is not None and s.stack is not None
    static = [a for a in s.stack.addresses6 if a.origin is Origin.STATIC]
    assert [(a.address, a.prefix_len, a.usable) for a in static] == [(int(ADDRESS6.ip), 64, True)]
    assert s._ipv6_ready() and s._family_usable(6)
    assert s.dhcp6 is None  # DHCPv6's DUID-LL needs the MAC a TUN has not
    text = out.getvalue()
    assert "not yet on a TUN" not in text and "RFC 7217" in text and "tentative" not in text


def test_on_a_tun_every_destination_goes_to_the_peer(tun_session: tuple[ClientSession, io.StringIO]) -> None:
    s, _out = tun_session
    assert s.stack is not None
    assert s.stack.nd.route(ELSEWHERE) == ELSEWHERE and s.stack.source_for6(ELSEWHERE) == int(ADDRESS6.ip)


def test_on_a_tap_address6_and_gateway6_are_configured_too() -> None:
    gateway = ipaddress.IPv6Address("fe80::1")
    for s, out in _session(Medium.ETHERNET, Setup(address6=ADDRESS6, gateway6=gateway)):
        assert s.stack is not None and s.dhcp6 is not None
        assert [a.address for a in s.stack.addresses6 if a.origin is Origin.STATIC] == [int(ADDRESS6.ip)]
        assert s.stack.gateway6 == int(gateway)
        assert f"static address: {ADDRESS6}, tentative" in out.getvalue()


def test_on_a_tap_a_static_address6_past_dad_is_ready_without_a_router() -> None:
    """As --address without --gateway: the user said how IPv6 is set up, so an IPv6 literal on the static
    address's network is not kept waiting for router advertisements that may never come."""
    for s, _out in _session(Medium.ETHERNET, Setup(address6=ADDRESS6)):
        assert s.stack is not None and s.ipv6_started is not None and not s._ipv6_ready()  # in DAD
        for second in range(1, 5):
            s.stack.handle_timer(s.ipv6_started + second)
        assert [a.usable for a in s.stack.addresses6 if a.origin is Origin.STATIC] == [True]
        assert s._ipv6_ready()
