"""AF_INET6 sockets against the kernel: under ``pystack exec`` the stdlib's http.server bound to ``::``
serves the kernel's ``curl -6`` and ``curl -4`` (one dual-stack socket, IPv4 peers seen as
``::ffff:192.0.2.1``), an asyncio client connects over IPv6 to a kernel server, and ``pystack ss``
lists an IPv6 connection.

pystack takes its IPv6 address by SLAAC from the kernel side's router advertisement (dnsmasq, as in
test_ipv6_slaac.py), the kernel side holds 2001:db8::1 (docs/lab.md).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pystack_lab import lab
from tcp_lab import MiB, curl, random_file, sha256_file, wait_connectable
from test_exec import PROGRAMS, exec_argv, interrupt, last_json, wait_ready_line
from test_ipv6_slaac import MAC, SLAAC_ADDRESS, _ra_sender

pytestmark = pytest.mark.integration

WAIT = 30.0
"""Seconds a poll may take before the test fails instead of hanging."""


@pytest.fixture
def tap6(daemon_ready: None, require_tools: Callable[..., None], ns: lab.Namespace,
         tmp_path: Path) -> Iterator[lab.Namespace]:
    """``pst0`` made by the kernel before pystack attaches: 192.0.2.1/24 and 2001:db8::1/64 (no DAD wait),
    up, with dnsmasq advertising 2001:db8::/64 on it (pystack's SLAAC address is then SLAAC_ADDRESS)."""
    require_tools("dnsmasq", "curl")
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tap")
    ns.add_address(lab.TAP, lab.HOST_ADDRESS)
    ns.add_address6(lab.TAP, lab.HOST_ADDRESS6)
    ns.link_up(lab.TAP)
    ra = _ra_sender(ns, tmp_path)
    yield ns
    lab.stop_process(ra)


def _exec_argv(*program: str, extra: tuple[str, ...] = ()) -> list[str]:
    return exec_argv(*program, extra=("--mac", MAC, *extra))


def test_stdlib_http_server_on_the_ipv6_wildcard_serves_curl_6_and_curl_4(tap6: lab.Namespace,
                                                                         tmp_path: Path) -> None:
    """``python -m http.server --bind ::``, unmodified: its one AF_INET6 socket (IPV6_V6ONLY off, as the
    stdlib's DualStackServer asks) serves IPv6 and IPv4, and logs the IPv4 client as IPv4-mapped."""
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "file.bin", 5 * MiB)
    log = tmp_path / "server.log"
    with open(log, "wb") as err:
        server = tap6.spawn(_exec_argv("-m", "http.server", "8000", "--bind", "::", "--directory", str(www)),
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_connectable(tap6, (SLAAC_ADDRESS, 8000), server, WAIT)
        for flag, address, host in (("-6", SLAAC_ADDRESS, f"[{SLAAC_ADDRESS}]"), ("-4", lab.STACK_IP, lab.STACK_IP)):
            got = tmp_path / f"got{flag}.bin"
            proc = curl(tap6, flag, "-g", "-o", str(got), "-w", "%{http_code} %{remote_ip}",
                        f"http://{host}:8000/file.bin", timeout=120)
            assert proc.stdout.split() == ["200", address], proc.stdout
            assert sha256_file(got) == want, flag
        assert interrupt(server) == 0
    finally:
        lab.stop_process(server)
    text = log.read_text()
    assert f'{lab.HOST_IP6} - - ' in text and f'::ffff:{lab.HOST_IP} - - ' in text, text


def test_asyncio_client_over_ipv6_talks_to_a_kernel_server(tap6: lab.Namespace, tmp_path: Path) -> None:
    """asyncio.open_connection by name (the hosts table's IPv6 line) to the kernel's asyncio echo server
    on 2001:db8::1: the connection is IPv6 from pystack's SLAAC address, and the lines come back."""
    port = 7002
    kernel = tap6.spawn(["python3", str(PROGRAMS / "echo_servers.py"), lab.HOST_IP6, "--asyncio", str(port)],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_ready_line(kernel)
        hosts = tmp_path / "hosts"
        hosts.write_text(f"{lab.HOST_IP6} kernel6.test\n")
        proc = tap6.run(_exec_argv(str(PROGRAMS / "ipv6_client.py"), "kernel6.test", str(port), "5",
                                   extra=("--hosts", str(hosts))), timeout=120)
        result = last_json(proc)
    finally:
        lab.stop_process(kernel)
    assert result["socket_module"] == "pystack.socket" and result["family"] == socket.AF_INET6
    assert result["lines"] == [f"asyncio over IPv6, line {i}" for i in range(5)]
    assert result["peername"] == [lab.HOST_IP6, port, 0, 0]
    assert result["sockname"][0] == SLAAC_ADDRESS
    assert result["getaddrinfo"] == [[lab.HOST_IP6, port, 0, 0]]


def _pystack(ns: lab.Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    return ns.run([*lab.pystack_command(), *args], timeout=60)


def _ipv6_row(ns: lab.Namespace) -> dict[str, Any] | None:
    proc = _pystack(ns, "ss", "-t", "--json")
    assert proc.returncode == 0, proc.stderr
    for row in json.loads(proc.stdout):
        if row["local"] == f"[{lab.STACK_IP6}]:80" and row["peer"].startswith(f"[{lab.HOST_IP6}]:"):
            return row
    return None


def test_pystack_ss_lists_an_ipv6_connection(start_stack: Callable[..., lab.Daemon],
                                             require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("curl")
    www = tmp_path / "www"
    www.mkdir()
    random_file(www / "f.bin", 8 * MiB)
    daemon = start_stack("--http", str(www), "--address6", lab.STACK_ADDRESS6, "--host-address6",
                         lab.HOST_ADDRESS6, quiet_ipv6=False)
    daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured")
    # A slow reader keeps the connection open while we look.
    reader = daemon.ns.spawn(["curl", "-sS", "-6", "-g", "--noproxy", "*", "--limit-rate", "256k", "-o", "/dev/null",
                              f"http://[{lab.STACK_IP6}]/f.bin"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while (row := _ipv6_row(daemon.ns)) is None:
            if time.monotonic() > deadline:
                pytest.fail(f"pystack ss did not show curl's IPv6 connection within {WAIT} s")
            time.sleep(0.2)
        assert row["state"] == "ESTABLISHED", row
        text = _pystack(daemon.ns, "ss", "-t", "-n")
        line = next(ln for ln in text.stdout.splitlines() if f"[{lab.HOST_IP6}]:" in ln)
        assert line.split()[:2] == ["tcp", "ESTAB"] and f"[{lab.STACK_IP6}]:80" in line, text.stdout
        listening = _pystack(daemon.ns, "ss", "-tl")
        assert "[::]:http" in listening.stdout and "0.0.0.0:http" in listening.stdout, listening.stdout
    finally:
        lab.stop_process(reader)
    assert daemon.alive()
