"""Segment sizes, flow control and connection reuse against the kernel: other MTUs, a slow kernel
reader, a 4-tuple reused straight out of pystack's TIME-WAIT, and a connection reset mid-transfer.
(Slow readers on pystack's side are in test_tcp_client.py.)
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, curl, kernel_distrust, kernel_mib, random_file, sha256_file, wait_state

pytestmark = pytest.mark.integration


def _get(ns: lab.Namespace, path: str, source_port: int = 0, close: bool = True) -> bytes:
    """GET ``path`` from pystack over a kernel socket (optionally from a fixed port); return the body."""
    sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(30)
        if source_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((lab.HOST_IP, source_port))
        sock.connect((lab.STACK_IP, 80))
        connection = "close" if close else "keep-alive"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {lab.STACK_IP}\r\nConnection: {connection}\r\n\r\n".encode())
        parts = []
        while chunk := sock.recv(65536):
            parts.append(chunk)
    head, _, body = b"".join(parts).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body


@pytest.mark.parametrize("mtu", [576, 9000])
def test_other_mtus_both_ways(start_stack: Callable[..., lab.Daemon], www: Path, tmp_path: Path, mtu: int) -> None:
    """With ``--mtu`` 576 (MSS 536) and 9000 (MSS 8960) on both sides of the TAP, 6 MiB go down and up
    intact and the kernel refuses none of pystack's segments (each fits the MSS the kernel announced).
    Plain frames (``--no-offload``), so that every segment crosses the TAP at its real size."""
    daemon = start_stack("--http", str(www), "--mtu", str(mtu), "--no-offload")
    before = kernel_mib(daemon.ns)
    want = random_file(www / "f.bin", 6 * MiB)
    got = tmp_path / "got.bin"
    curl(daemon.ns, "-o", str(got), f"{HTTP_URL}/f.bin")
    assert sha256_file(got) == want
    proc = curl(daemon.ns, "--data-binary", f"@{www / 'f.bin'}", f"{HTTP_URL}/sha256")
    assert proc.stdout == want + "\n"
    after = kernel_mib(daemon.ns)
    assert not kernel_distrust(before, after)
    # Full-sized segments really were used: far fewer than 6 MiB / 536 at MTU 9000, and more at 576.
    segments = after["Tcp.InSegs"] - before["Tcp.InSegs"]
    if mtu == 9000:
        assert segments < 6 * MiB // 1448, segments
    else:
        assert segments > 6 * MiB // 1448, segments


def test_curl_slow_reader(start_stack: Callable[..., lab.Daemon], www: Path, tmp_path: Path) -> None:
    """curl reading at 3 MB/s (``--limit-rate``) makes the kernel's window the limit: pystack waits for
    window updates instead of overrunning it, and 6 MiB arrive intact."""
    daemon = start_stack("--http", str(www))
    before = kernel_mib(daemon.ns)
    want = random_file(www / "f.bin", 6 * MiB)
    got = tmp_path / "got.bin"
    curl(daemon.ns, "--limit-rate", "3M", "-o", str(got), f"{HTTP_URL}/f.bin")
    assert sha256_file(got) == want
    assert not kernel_distrust(before, kernel_mib(daemon.ns))


def test_four_tuple_reused_out_of_time_wait(start_stack: Callable[..., lab.Daemon], www: Path) -> None:
    """pystack closes first (Connection: close) and holds TIME-WAIT; the kernel connects again from the
    same port at once. Its new SYN is above the old sequence space, so pystack ends TIME-WAIT and
    accepts (RFC 9293 3.6.1, as BSD and Linux do); three rounds on one 4-tuple all succeed."""
    daemon = start_stack("--http", str(www))
    want = random_file(www / "f.bin", 200 * 1024)
    port = 40000 + secrets.randbelow(10000)
    for _ in range(3):
        body = _get(daemon.ns, "/f.bin", source_port=port)
        assert hashlib.sha256(body).hexdigest() == want
        # The kernel's socket (LAST-ACK) is gone once pystack ACKed its FIN: pystack is in TIME-WAIT.
        assert wait_state(daemon.ns, (lab.HOST_IP, port), (lab.STACK_IP, 80), None) is None
    counters = daemon.stop()
    assert counters.get("tcp.state.TIME_WAIT") == 3, counters
    assert counters.get("tcp.passive_opens") == 3, counters


def test_reset_mid_transfer_then_next_connection(start_stack: Callable[..., lab.Daemon], www: Path,
                                                 tmp_path: Path) -> None:
    """The kernel aborts a download with RST (SO_LINGER 0): pystack drops the connection (ECONNRESET)
    at once, and the next connection is served intact."""
    daemon = start_stack("--http", str(www))
    want = random_file(www / "f.bin", 6 * MiB)
    sock = daemon.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(10)
        sock.connect((lab.STACK_IP, 80))
        sock.sendall(b"GET /f.bin HTTP/1.1\r\nHost: 192.0.2.2\r\n\r\n")
        assert sock.recv(65536)  # the transfer is under way
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    got = tmp_path / "got.bin"
    curl(daemon.ns, "-o", str(got), f"{HTTP_URL}/f.bin")
    assert sha256_file(got) == want
    counters = daemon.stop()
    assert counters.get("tcp.rst_received") == 1, counters
    assert counters.get("tcp.error.ECONNRESET") == 1, counters
    assert counters.get("tcp.passive_opens") == 2, counters
