"""TCP and UDP over IPv6 against the kernel: ``curl -6`` downloads and uploads 200 MiB from pystack's HTTP
server (SHA-256 checked), with the TAP's offload and without, and UDP echo and port unreachable over IPv6.

The random files live in the test's tmp directory and are removed as soon as they are checked, so four
200 MiB transfers do not leave 1.6 GB behind in pytest's kept tmp directories."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import MiB, curl, random_file, sha256_file

pytestmark = pytest.mark.integration

URL6 = f"http://[{lab.STACK_IP6}]"
SIZE = 200 * MiB
# Generous: 200 MiB without offload on a loaded 2-core machine; curl's own bound, not a timing claim.
CURL_TIMEOUT = 900


@pytest.fixture(params=["offload", "no-offload"])
def http6(request: pytest.FixtureRequest, start_stack: Callable[..., lab.Daemon], www: Path) -> lab.Daemon:
    extra = ("--no-offload",) if request.param == "no-offload" else ()
    daemon = start_stack("--echo", "--http", str(www), "--address6", lab.STACK_ADDRESS6,
                         "--host-address6", lab.HOST_ADDRESS6, *extra, quiet_ipv6=False)
    daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured")
    daemon.offload = request.param == "offload"  # type: ignore[attr-defined]
    return daemon


def test_curl6_download_200mib_matches(http6: lab.Daemon, www: Path, tmp_path: Path) -> None:
    served = www / "file.bin"
    out = tmp_path / "got.bin"
    try:
        want = random_file(served, SIZE)
        proc = curl(http6.ns, "-6", "-g", "-o", str(out), "-w", "%{http_code} %{size_download}",
                    f"{URL6}/file.bin", timeout=CURL_TIMEOUT)
        assert proc.stdout.split() == ["200", str(SIZE)], proc.stdout
        assert sha256_file(out) == want
    finally:
        served.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    counters = http6.stop()
    assert counters.get("tcp.passive_opens") == 1 and counters.get("drop.internal_error", 0) == 0, counters
    # With offload, pystack's segments leave as 64 KiB super-frames the kernel cuts (GSO_TCPV6).
    assert (counters.get("gso_frames_out", 0) > 0) == http6.offload, counters  # type: ignore[attr-defined]


def test_curl6_upload_200mib_digest_matches(http6: lab.Daemon, tmp_path: Path) -> None:
    """``POST /sha256`` answers the SHA-256 of the body pystack received; it must be the file's."""
    body = tmp_path / "upload.bin"
    try:
        want = random_file(body, SIZE)
        proc = curl(http6.ns, "-6", "-g", "--data-binary", f"@{body}", "-w", "%{http_code}",
                    f"{URL6}/sha256", timeout=CURL_TIMEOUT)
    finally:
        body.unlink(missing_ok=True)
    assert proc.stdout == want + "\n200", proc.stdout
    counters = http6.stop()
    # With offload, the kernel hands pystack its segments as super-frames too (TUN_F_TSO6).
    assert (counters.get("link.super_frames_in", 0) > 0) == http6.offload, counters  # type: ignore[attr-defined]


def _exchange6(ns: lab.Namespace, payload: bytes, port: int) -> bytes:
    sock = ns.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(3)
        sock.connect((lab.STACK_IP6, port))
        sock.send(payload)
        return sock.recv(65535)


@pytest.mark.parametrize("size", [1, 1452, 8000, 65527])
def test_udp_echo_over_ipv6(http6: lab.Daemon, size: int) -> None:
    """1452 fills a 1500-byte packet; 8000 bytes go in fragments both ways; 65527 is the largest datagram
    over IPv6 (65535 - 8: its Payload Length counts no IPv6 header, RFC 8200 3)."""
    payload = os.urandom(size)
    assert _exchange6(http6.ns, payload, 7) == payload


def test_closed_udp_port_over_ipv6_is_refused(http6: lab.Daemon) -> None:
    """pystack's ICMPv6 port unreachable reaches the kernel's connected socket as ECONNREFUSED."""
    with pytest.raises(ConnectionRefusedError):
        _exchange6(http6.ns, b"anyone there?", 9)
    counters = http6.stop()
    assert counters.get("icmpv6.errors_sent", 0) >= 1, counters
