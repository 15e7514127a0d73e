"""Usage errors of ``pystack fetch/resolve/ping`` and of ``run --dhcp``: one line on stderr, exit status 2,
and nothing opened (every case here is refused before a TAP would be)."""

from __future__ import annotations

import pytest

from pystack.cli import main


@pytest.mark.parametrize("argv", [
    ["fetch", "http://h/", "--dhcp", "--address", "192.0.2.2/24"],
    ["fetch", "http://h/", "--dhcp-timeout", "0"],
    ["fetch", "http://h/", "--dhcp-timeout", "soon"],
    ["fetch", "http://h/", "--dns", "not-an-ip"],
    ["fetch"],
    ["resolve"],
    ["ping", "h", "-c", "0"],
    ["ping", "h", "-s", "70000"],
    ["ping", "h", "-i", "-1"],
    ["fetch", "http://h/", "-4", "-6"],
    ["ping", "h", "-6", "-4"],
    ["exec", "--fd", "987654", "--", "-c", "pass"],
    ["run", "--fd", "-1", "--address", "192.0.2.2/24"],
    ["run", "--tap", "pst0", "--dhcp", "--address", "192.0.2.2/24"],
    ["run", "--tap", "pst0", "--dhcp", "--dhcp-timeout", "-5"],
    ["run", "--tap", "pst0", "--tun", "tun0", "--address", "192.0.2.2/24"],
    ["run", "--fd", "0", "--medium", "tun", "--address", "192.0.2.2/24"],
])
def test_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err


@pytest.mark.parametrize("argv, needle", [
    (["fetch", "https://www.example.test/", "--cacert", "/nonexistent/ca.pem"], "--cacert"),
    (["exec", "--address", "192.0.2.2/24"], "give the program"),
    (["exec", "--", "-m"], "-m needs a module"),
    (["exec", "--", "/nonexistent/program.py"], "no such script"),
    (["exec", "--fd", "0", "--address", "192.0.2.2/24", "--host-address", "192.0.2.1/24", "--", "-c", "pass"],
     "--host-address needs root"),
    (["fetch", "gopher://h/"], "http://"),
    (["fetch", "http://h/", "--gateway", "192.0.2.1"], "--gateway"),
    (["fetch", "http://h/", "--address", "192.0.2.2/24", "--gateway", "198.51.100.1"], "not on the local network"),
    (["fetch", "http://h/", "--address", "192.0.2.2/24", "--release"], "--release"),
    (["fetch", "http://h/", "--address", "192.0.2.2/24", "--host-address", "192.0.2.2/24"], "same as --address"),
    (["resolve", "bad..name"], "not a DNS name"),
    (["run", "--tap", "pst0", "--dhcp", "--gateway", "192.0.2.1"], "--gateway"),
    (["run", "--tun", "tun0", "--dhcp"], "DHCP needs Ethernet, so give --address"),
    (["ping", "h", "--tun", "tun0"], "DHCP needs Ethernet, so give --address"),
    (["ping", "h", "--tun", "tun0", "--address", "192.0.2.2/24", "--mac", "02:00:00:00:00:01"], "a TUN has no MAC"),
    (["run", "--tun", "tun0", "--address", "192.0.2.2/24", "--dhcp6"], "--dhcp6 goes with Ethernet"),
    (["run", "--tap", "pst0", "--medium", "ip", "--address", "192.0.2.2/24"], "--medium goes with --fd"),
    (["exec", "--tun", "tun0", "--address", "192.0.2.2/24", "--", "-c", "pass"], "mode tun user 1000"),
])
def test_refused_before_anything_is_opened(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # flags are checked before root and the TAP
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pystack: error:") and needle in err[0], err


def test_client_commands_need_root(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for argv in (["fetch", "http://h/"], ["resolve", "h"], ["ping", "h"], ["run", "--tap", "p", "--dhcp"],
                 ["exec", "--", "-c", "pass"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "needs root" in err[0], err


@pytest.mark.parametrize("value", ["0", "-1", "256", "lots", "2.5", ""])
def test_run_tcp_max_retries_refuses_a_bad_value(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--tap", "pst0", "--address", "192.0.2.2/24", "--tcp-max-retries", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --tcp-max-retries:" in err[0] and "Traceback" not in err[0], err


def test_run_tcp_max_retries_reaches_the_stack_config() -> None:
    from pystack.cli import _stack_config, build_parser
    from pystack.tcp.config import TcpConfig

    base = ["run", "--tap", "pst0", "--address", "192.0.2.2/24", "--mtu", "9000"]
    config = _stack_config(build_parser().parse_args([*base, "--tcp-max-retries", "3"]))
    assert config.tcp.max_retries == 3 and config.mtu == 9000
    assert config.tcp.syn_retries == TcpConfig().syn_retries  # only that one changed
    default = _stack_config(build_parser().parse_args(base))
    assert default.tcp.max_retries == TcpConfig().max_retries == 15


def test_run_congestion_reaches_the_stack_config(capsys: pytest.CaptureFixture[str]) -> None:
    from pystack.cli import _stack_config, build_parser

    base = ["run", "--tap", "pst0", "--address", "192.0.2.2/24"]
    assert _stack_config(build_parser().parse_args(base)).tcp.congestion_control == "cubic"  # as Linux
    assert _stack_config(build_parser().parse_args([*base, "--congestion", "newreno"])).tcp.congestion_control == "newreno"
    with pytest.raises(SystemExit) as exc:
        main([*base, "--congestion", "bbr"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --congestion:" in err[0], err


def test_run_help_explains_tcp_max_retries(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--tcp-max-retries N" in out and "ETIMEDOUT" in out and "(default 15," in out


@pytest.mark.parametrize("value", ["-1", "100001", "fast", "2.5"])
def test_run_busy_poll_refuses_a_bad_value(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--tap", "pst0", "--address", "192.0.2.2/24", "--busy-poll", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --busy-poll:" in err[0], err


def test_run_help_explains_busy_poll(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--busy-poll USEC|auto" in out and "auto (the default)" in out and "0: always sleep" in out


@pytest.mark.parametrize("argv, family", [
    (["fetch", "http://h/"], 0), (["fetch", "http://h/", "-4"], 4), (["resolve", "h", "-6"], 6),
    (["ping", "h", "-6"], 6), (["exec", "--", "-c", "pass"], 0),
])
def test_family_flags_reach_the_setup(argv: list[str], family: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """-4/-6 force one family; without them the client commands are dual-stack (Setup.family 0)."""
    from pystack.cli import _setup, build_parser

    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert _setup(build_parser().parse_args(argv)).family == family
