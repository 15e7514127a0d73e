"""The client commands over a TUN with IPv6, judged by the kernel: ``pystack fetch -6`` gets a file from
the kernel's ``http.server`` on its side of the TUN (SHA-256 checked) and ``pystack ping -6`` gets the
kernel's echo replies, pystack with ``--address6`` (bare IPv6 packets, no neighbour discovery, no DAD)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import MiB, random_file, wait_listening

pytestmark = pytest.mark.integration

PORT = 8080


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


def _client(ns: lab.Namespace, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    setup: Sequence[str] = ("--tun", lab.TAP, "--address", lab.STACK_ADDRESS, "--address6", lab.STACK_ADDRESS6)
    proc = ns.run([*lab.pystack_command(), *argv, *setup], timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_fetch6_over_a_tun_gets_the_kernels_file(tun: lab.Namespace, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "file.bin", 4 * MiB)
    server = tun.spawn(["python3", "-m", "http.server", "--bind", lab.HOST_IP6, "--directory", str(www), str(PORT)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(tun, (lab.HOST_IP6, PORT), server)
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
