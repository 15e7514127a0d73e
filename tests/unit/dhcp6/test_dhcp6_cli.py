"""``pystack run --dhcp6``: DHCPv6 from start-up; without it the host still waits for an RA's M or O flag."""

from __future__ import annotations

import argparse
import random

import pytest

from pystack.cli import _start_ipv6, build_parser, main
from pystack.config import StackConfig
from pystack.dhcp6 import Mode
from pystack.dhcp6.host import Dhcp6Host
from pystack.stack import Stack

RUN = ["run", "--tap", "pst0", "--address", "192.0.2.2/24"]


def _started(*extra: str) -> tuple[Stack, str, Dhcp6Host]:
    args: argparse.Namespace = build_parser().parse_args([*RUN, *extra])
    stack = Stack(b"\x02\x00\x00\x00\x00\x02", StackConfig(), rng=random.Random(0))
    note = _start_ipv6(stack, args, 0.0)
    (host,) = [t for t in stack.timer_sources if isinstance(t, Dhcp6Host)]
    return stack, note, host


def test_dhcp6_starts_a_stateful_exchange_once_the_link_local_address_is_usable() -> None:
    stack, note, host = _started("--dhcp6")
    assert note.endswith("(SLAAC, DHCPv6)")
    assert host._wanted is Mode.STATEFUL and host.client.mode is None  # link-local still in DAD
    assert host.on_router_advertisement in stack.nd.ra_observers


def test_without_dhcp6_the_host_waits_for_a_router_advertisement() -> None:
    _stack, note, host = _started()
    assert "DHCPv6" not in note and host._wanted is None and host.client.mode is None


def test_dhcp6_without_ipv6_is_refused(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main([*RUN, "--no-ipv6", "--dhcp6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dhcp6" in err[0] and "--no-ipv6" in err[0], err


def test_help_says_what_starts_dhcp6(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--dhcp6" in text and "M flag leases an address" in text and "O flag asks for DNS servers only" in text


def test_a_recorded_run_takes_no_dhcp6_lease(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """pystack replay cannot replay a lease yet: --record leaves DHCPv6 off, and refuses --dhcp6."""
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main([*RUN, "--record", "/tmp/x.rec", "--dhcp6"]) == 2
    assert "--dhcp6" in capsys.readouterr().err
    args: argparse.Namespace = build_parser().parse_args([*RUN, "--record", "/tmp/x.rec"])
    stack = Stack(b"\x02\x00\x00\x00\x00\x02", StackConfig(), rng=random.Random(0))
    assert "no DHCPv6 while recording" in _start_ipv6(stack, args, 0.0)
    assert not [t for t in stack.timer_sources if isinstance(t, Dhcp6Host)]


class _Runtime:
    """What ``_leaving`` uses of a Runtime: its tick hooks, wake and stop."""

    def __init__(self) -> None:
        self.tick_hooks: list = []
        self.stopped = False

    def wake(self) -> None:
        pass

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize("answered", [True, False])
def test_stopped_the_daemon_releases_and_waits_for_the_reply_or_the_first_timeout(answered: bool) -> None:
    """RFC 8415 18.2.7 on the way out: the loop runs on after the Release until the Reply comes, or the
    first REL_TIMEOUT passes with none, and not for the RFC's four tries."""
    from pystack.cli import _leaving
    from pystack.ip6.addresses import State as AddressState

    from .fake_server import LEASED
    from .test_dhcp6_over_stack import _advertise, _entry, _pair

    a, b, wire, host, server = _pair()
    _advertise(b, wire, managed=True, other=False)
    wire.run(until=lambda: (e := _entry(a, LEASED)) is not None and e.state is AddressState.PREFERRED, limit=30)
    runtime = _Runtime()
    leave = _leaving(a, runtime, None)  # type: ignore[arg-type]
    (tick,) = runtime.tick_hooks
    server.silent = not answered
    started = wire.clock.now
    tick(started)
    assert not runtime.stopped  # no signal yet
    leave()
    tick(wire.clock.now)
    assert host.releasing and not runtime.stopped and _entry(a, LEASED) is None
    wire.run(until=lambda: not host.releasing, limit=5)
    tick(wire.clock.now)
    assert runtime.stopped and server.types().count("Release") == 1
    assert a.counters["dhcp6.releases_acknowledged" if answered else "dhcp6.releases_unanswered"] == 1
    assert wire.clock.now - started <= 1.1  # the first REL_TIMEOUT at most (fake clock)


def test_help_says_how_long_the_release_waits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "waits for the server's Reply or the first REL_TIMEOUT (1 s)" in text
