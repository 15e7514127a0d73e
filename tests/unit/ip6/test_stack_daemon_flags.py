"""``pystack run``'s IPv6 flags: refused in one line (exit status 2) before anything is opened when they
cannot be right, and the ready line says what IPv6 will do."""

from __future__ import annotations

import argparse
import random

import pytest

from pystack.cli import _start_ipv6, build_parser, main
from pystack.config import StackConfig
from pystack.ip6.addresses import Origin
from pystack.stack import Stack

RUN = ["run", "--tap", "pst0", "--address", "192.0.2.2/24"]


@pytest.mark.parametrize("extra", [
    ["--address6", "2001:db8::2"],  # no prefix length
    ["--address6", "fe80::2/64"],  # link-local addresses are pystack's own to form
    ["--address6", "ff02::1/64"],
    ["--address6", "192.0.2.2/24"],
    ["--gateway6", "ff02::2"],
    ["--gateway6", "router"],
])
def test_bad_ipv6_values(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*RUN, *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0], err


@pytest.mark.parametrize("extra, needle", [
    (["--no-ipv6", "--address6", "2001:db8::2/64"], "--no-ipv6"),
    (["--no-ipv6", "--no-slaac"], "--no-ipv6"),
    (["--mtu", "1000", "--address6", "2001:db8::2/64"], "at least 1280"),
    (["--address6", "2001:db8::2/64", "--host-address6", "2001:db8::2/64"], "same as --address6"),
    (["--address6", "2001:db8::2/64", "--host-address6", "2001:db8:5::1/64"], "not on pystack's network"),
    (["--gateway6", "2001:db8:1::1"], "not on-link"),
    (["--address6", "2001:db8::2/64", "--gateway6", "2001:db8::2"], "own --address6"),
])
def test_contradictions_refused_before_anything_is_opened(extra: list[str], needle: str,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # flags are checked before root and the TAP
    assert main([*RUN, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pystack: error:") and needle in err[0], err


def _started(*extra: str, mtu: int = 1500) -> tuple[Stack, str]:
    args: argparse.Namespace = build_parser().parse_args([*RUN, "--mtu", str(mtu), *extra])
    stack = Stack(b"\x02\x00\x00\x00\x00\x02", StackConfig(mtu=mtu), rng=random.Random(0))
    return stack, _start_ipv6(stack, args, 0.0)


def test_ipv6_is_on_by_default_with_link_local_and_slaac() -> None:
    stack, note = _started()
    assert stack.ipv6_enabled and note == ", ipv6 link-local (SLAAC)"
    assert [e.origin for e in stack.addresses6] == [Origin.LINK_LOCAL]


def test_static_address_and_gateway_are_configured() -> None:
    stack, note = _started("--address6", "2001:db8::2/64", "--gateway6", "fe80::1", "--no-slaac")
    assert note == ", ipv6 link-local + 2001:db8::2/64 + gateway fe80::1 (no SLAAC)"
    assert {e.origin for e in stack.addresses6} == {Origin.LINK_LOCAL, Origin.STATIC}
    assert stack.gateway6 == 0xFE80 << 112 | 1


def test_no_ipv6_and_a_small_mtu_leave_it_off() -> None:
    stack, note = _started("--no-ipv6")
    assert not stack.ipv6_enabled and note == ", ipv6 off"
    stack, note = _started(mtu=576)
    assert not stack.ipv6_enabled and "mtu below 1280" in note
