"""IPv6 on a TUN against the kernel: ``pystack run --tun`` with ``--address6`` (bare IPv6 packets, no
neighbour discovery and no DAD, as Linux runs IPv6 on a point-to-point IFF_NOARP device). The kernel's
``ping -6`` reaches the static and the link-local address at every size (fragments both ways), ``curl -6``
downloads and uploads through pystack's HTTP server (SHA-256 checked) with the TUN's offload and without,
and UDP echo and port unreachable work over it."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import MiB, curl, random_file, sha256_file

pytestmark = pytest.mark.integration

URL6 = f"http://[{lab.STACK_IP6}]"


@pytest.fixture(params=["offload", "no-offload"])
def tun6(request: pytest.FixtureRequest, daemon_ready: None, ns: lab.Namespace,
         tmp_path: Path) -> Iterator[tuple[lab.Daemon, Path, str]]:
    """pystack on a TUN with IPv4 and IPv6 addresses, the kernel's side given its own; (the daemon, its
    document root, its link-local address)."""
    www = tmp_path / "www"
    www.mkdir()
    extra = ["--no-offload"] if request.param == "no-offload" else []
    argv = [*lab.pystack_command(), "run", "--tun", lab.TAP, "--address", lab.STACK_ADDRESS, "--host-address",
            lab.HOST_ADDRESS, "--address6", lab.STACK_ADDRESS6, "--host-address6", lab.HOST_ADDRESS6, "--echo",
            "--http", str(www), "--stats-json", str(tmp_path / "stats.json"), *extra]
    daemon = lab.Daemon(ns, argv, tmp_path / "stats.json")
    try:
        daemon.wait_ready(20)
        daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured")
        found = daemon.wait_for_line(r"IPv6 address (fe80::[0-9a-f:]+)/64 \(link-local\) configured")
        daemon.offload = request.param == "offload"  # type: ignore[attr-defined]
        yield daemon, www, found.group(1)
    finally:
        daemon.stop()


def _no_neighbour_discovery(counters: dict[str, int]) -> None:
    for name in ("ndisc.dad_probes_sent", "ndisc.ns_sent", "ndisc.na_sent", "drop.internal_error"):
        assert counters.get(name, 0) == 0, (name, counters)
    assert counters.get("drop.ip_link.ipv6_unsupported", 0) == 0, counters


@pytest.mark.parametrize("size", [56, 1452, 4000])
def test_the_kernels_ping6_reaches_the_static_and_link_local_address(tun6, size: int) -> None:
    daemon, _www, link_local = tun6
    for dst in (lab.STACK_IP6, f"{link_local}%{lab.TAP}"):
        result = lab.ping(daemon.ns, dst, count=3, size=size)
        assert result["received"] == 3, result["output"]
    counters = daemon.stop()
    assert counters.get("icmpv6.echo_replies_sent", 0) >= 6, counters
    _no_neighbour_discovery(counters)


def test_curl6_over_the_tun_downloads_and_uploads(tun6) -> None:
    daemon, www, _ll = tun6
    with tempfile.TemporaryDirectory(prefix="pystack-tun6-") as scratch:
        served, got, body = www / "file.bin", Path(scratch) / "got.bin", Path(scratch) / "up.bin"
        want = random_file(served, 20 * MiB)
        proc = curl(daemon.ns, "-6", "-g", "-o", str(got), "-w", "%{http_code}", f"{URL6}/file.bin", timeout=300)
        assert proc.stdout == "200" and sha256_file(got) == want
        want_up = random_file(body, 20 * MiB)
        proc = curl(daemon.ns, "-6", "-g", "--data-binary", f"@{body}", "-w", "%{http_code}", f"{URL6}/sha256",
                    timeout=300)
        assert proc.stdout == want_up + "\n200", proc.stdout
        served.unlink()
    counters = daemon.stop()
    assert counters.get("tcp.passive_opens") == 2, counters
    _no_neighbour_discovery(counters)
    # With offload the TUN carries TCP super-packets both ways (GSO_TCPV6, TUN_F_TSO6), as over IPv4.
    offload = daemon.offload  # type: ignore[attr-defined]
    assert (counters.get("gso_frames_out", 0) > 0) == offload, counters
    assert (counters.get("link.super_frames_in", 0) > 0) == offload, counters


def test_udp_echo_and_port_unreachable_over_the_tun(tun6) -> None:
    daemon, _www, _ll = tun6
    for size in (1, 1452, 8000):
        payload = os.urandom(size)
        with daemon.ns.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.connect((lab.STACK_IP6, 7))
            sock.send(payload)
            assert sock.recv(65535) == payload
    with daemon.ns.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock, pytest.raises(ConnectionRefusedError):
        sock.settimeout(3)
        sock.connect((lab.STACK_IP6, 9))
        sock.send(b"anyone there?")
        sock.recv(100)
    _no_neighbour_discovery(daemon.stop())
