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
    ["run", "--tap", "pst0", "--dhcp", "--address", "192.0.2.2/24"],
    ["run", "--tap", "pst0", "--dhcp", "--dhcp-timeout", "-5"],
])
def test_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err


@pytest.mark.parametrize("argv, needle", [
    (["fetch", "https://www.example.test/"], "https"),
    (["fetch", "gopher://h/"], "http://"),
    (["fetch", "http://h/", "--gateway", "192.0.2.1"], "--gateway"),
    (["fetch", "http://h/", "--address", "192.0.2.2/24", "--gateway", "198.51.100.1"], "not on the local network"),
    (["fetch", "http://h/", "--address", "192.0.2.2/24", "--release"], "--release"),
    (["fetch", "http://h/", "--address", "192.0.2.2/24", "--host-address", "192.0.2.2/24"], "same as --address"),
    (["resolve", "bad..name"], "not a DNS name"),
    (["run", "--tap", "pst0", "--dhcp", "--gateway", "192.0.2.1"], "--gateway"),
])
def test_refused_before_anything_is_opened(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # flags are checked before root and the TAP
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pystack: error:") and needle in err[0], err


def test_client_commands_need_root(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for argv in (["fetch", "http://h/"], ["resolve", "h"], ["ping", "h"], ["run", "--tap", "p", "--dhcp"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "needs root" in err[0], err
