"""The client commands over a TUN with IPv6, judged by the kernel: ``pystack fetch -6`` gets a file from
the kernel's ``http.server`` on its side of the TUN (SHA-256 checked) and ``pystack ping -6`` gets the
kernel's echo replies, pystack with ``--address6`` (bare IPv6 packets, no neighbour discovery, no DAD);
a name answered by the kernel's dnsmasq over IPv6 is fetched over IPv6 (AAAA first, RFC 8305), and a
program under ``pystack exec`` downloads over IPv6 too."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import MiB, random_file, wait_listening

pytestmark = pytest.mark.integration

PORT = 8080
NAME = "www.example.test"


@pytest.fixture
def tun(daemon_ready: None, ns: lab.Namespace) -> lab.Namespace:
    """A persistent TUN ``pst0`` made by the kernel before pystack attaches to it (as a client command does
    without --host-address): 192.0.2.1/24 and 2001:db8::1/64 (nodad: usable at once), up."""
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tun")
    ns.add_address(lab.TAP, lab.HOST_ADDRESS)
    ns.add_address6(lab.TAP, lab.HOST_ADDRESS6)
    ns.link_up(lab.TAP)
    return ns


def _client(ns: lab.Namespace, command: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``pystack COMMAND`` on the TUN with --address and --address6, then ``argv``."""
    setup: Sequence[str] = ("--tun", lab.TAP, "--address", lab.STACK_ADDRESS, "--address6", lab.STACK_ADDRESS6)
    proc = ns.run([*lab.pystack_command(), command, *setup, *argv], timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _web(ns: lab.Namespace, tmp_path: Path, bind: str = lab.HOST_IP6) -> tuple[str, Path]:
    """The kernel's http.server on ``bind`` serving a 4 MiB file.bin; (its SHA-256, the server's log)."""
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "file.bin", 4 * MiB)
    log = tmp_path / "http.log"
    server = ns.spawn([sys.executable, "-m", "http.server", "--bind", bind, "--directory", str(www), str(PORT)],
                      stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    wait_listening(ns, ("*" if bind == "::" else bind, PORT), server)  # ss shows a dual-stack listener so
    return want, log


def test_fetch6_over_a_tun_gets_the_kernels_file(tun: lab.Namespace, tmp_path: Path) -> None:
    want, _log = _web(tun, tmp_path)
    got = tmp_path / "got.bin"
    proc = _client(tun, "fetch", "-6", "-o", str(got), f"http://[{lab.HOST_IP6}]:{PORT}/file.bin")
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(got.read_bytes()).hexdigest() == want
    assert "IPv6 up on the TUN" in proc.stderr and "2001:db8::2/64 (static) configured" in proc.stderr
    assert "DAD" not in proc.stderr.replace("no DAD", ""), proc.stderr


@pytest.mark.parametrize("size", [56, 4000])
def test_ping6_over_a_tun_gets_the_kernels_replies(tun: lab.Namespace, size: int) -> None:
    proc = _client(tun, "ping", "-6", "-c", "3", "-i", "0.2", "-s", str(size), lab.HOST_IP6)
    assert proc.returncode == 0, proc.stderr
    replies = re.findall(rf"^{size + 8} bytes from {re.escape(lab.HOST_IP6)}: icmp_seq=(\d+)", proc.stdout, re.M)
    assert sorted(map(int, replies)) == [1, 2, 3], proc.stdout
    assert "3 packets transmitted, 3 received" in proc.stdout


def _dns(ns: lab.Namespace, tmp_path: Path) -> None:
    """The kernel's dnsmasq answering on 2001:db8::1 port 53: AAAA 2001:db8::1 and A 192.0.2.1 for NAME."""
    ns.spawn(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
              f"--listen-address={lab.HOST_IP6}", "--bind-interfaces", "--user=root", "--group=root",
              f"--pid-file={tmp_path / 'dnsmasq.pid'}", f"--host-record={NAME},{lab.HOST_IP},{lab.HOST_IP6}",
              "--log-facility=-", "--log-queries"],
             stdout=subprocess.DEVNULL, stderr=(tmp_path / "dnsmasq.log").open("wb"))
    deadline = time.monotonic() + 15
    while f"[{lab.HOST_IP6}]:53 " not in ns.run(["ss", "-ulnH"], timeout=15).stdout + " ":
        assert time.monotonic() < deadline, "dnsmasq did not listen on port 53"
        time.sleep(0.1)


def test_a_name_over_a_tun_is_asked_and_fetched_over_ipv6(tun: lab.Namespace, tmp_path: Path,
                                                          require_tools: Callable[..., None]) -> None:
    """No -6: AAAA and A asked of the kernel's dnsmasq over IPv6, the families raced, IPv6 first."""
    require_tools("dnsmasq")
    _dns(tun, tmp_path)
    want, log = _web(tun, tmp_path, bind="::")
    got = tmp_path / "got.bin"
    proc = _client(tun, "fetch", "--dns", lab.HOST_IP6, "-o", str(got), f"http://{NAME}:{PORT}/file.bin")
    assert proc.returncode == 0, proc.stderr + (tmp_path / "dnsmasq.log").read_text()
    assert hashlib.sha256(got.read_bytes()).hexdigest() == want
    assert f"{lab.STACK_IP6} - - " in log.read_text(), log.read_text()  # the kernel saw it come over IPv6
    queries = (tmp_path / "dnsmasq.log").read_text()
    assert re.search(rf"query\[AAAA\] {NAME} from {re.escape(lab.STACK_IP6)}", queries), queries


def test_a_program_under_exec_downloads_over_ipv6_on_a_tun(tun: lab.Namespace, tmp_path: Path) -> None:
    want, log = _web(tun, tmp_path)
    code = ("import hashlib, urllib.request; "
            f"print(hashlib.sha256(urllib.request.urlopen('http://[{lab.HOST_IP6}]:{PORT}/file.bin').read())"
            ".hexdigest())")
    proc = _client(tun, "exec", "-q", "--", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == want
    assert f"{lab.STACK_IP6} - - " in log.read_text(), log.read_text()


def test_address6_on_a_tap_too_pings_the_kernel(daemon_ready: None, ns: lab.Namespace) -> None:
    """The same flag on a TAP: DAD for 2001:db8::2, neighbour discovery for the kernel's address, replies;
    no router advertises anything, and the static address is enough for the kernel on its network."""
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tap")
    ns.add_address6(lab.TAP, lab.HOST_ADDRESS6)
    ns.link_up(lab.TAP)
    proc = ns.run([*lab.pystack_command(), "ping", "-6", "-c", "3", "-i", "0.2", lab.HOST_IP6, "--tap", lab.TAP,
                   "--address", lab.STACK_ADDRESS, "--address6", lab.STACK_ADDRESS6], timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "3 packets transmitted, 3 received" in proc.stdout, proc.stdout
    assert "2001:db8::2/64 (static) passed DAD: configured" in proc.stderr
    assert "IPv6 ready after" in proc.stderr and "IPv6 not ready" not in proc.stderr, proc.stderr  # DAD only
