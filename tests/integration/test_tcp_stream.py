"""Raw TCP against kernel peers: echo with half-close (nc -N, shutdown(SHUT_WR)), refused connects,
and the close states the kernel's ``ss -tan`` shows for either side closing first (RFC 9293 3.6).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import MiB, random_file, sha256_file, ss_tcp, wait_state

pytestmark = pytest.mark.integration


@pytest.fixture
def tcp_stack(start_stack: Callable[..., lab.Daemon], www: Path) -> lab.Daemon:
    return start_stack("--echo", "--discard", "--http", str(www))


def _kernel_socket(ns: lab.Namespace, port: int, timeout: float = 10.0) -> socket.socket:
    sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((lab.STACK_IP, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _recv_all(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


# --- half-close ---------------------------------------------------------------------------------


def test_nc_half_close_still_gets_the_echo(tcp_stack: lab.Daemon) -> None:
    """``nc -N`` sends, shuts down its write side at end of input and still reads the whole echo
    until pystack, having echoed everything, closes too."""
    payload = os.urandom(256 * 1024)
    proc = tcp_stack.ns.run(["nc", "-N", "-w", "10", lab.STACK_IP, "7"], input=payload, text=False,
                            timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) == len(payload)
    assert hashlib.sha256(proc.stdout).hexdigest() == hashlib.sha256(payload).hexdigest()
    counters = tcp_stack.stop()
    # pystack saw the FIN first (passive close) and closed after the echo.
    assert counters.get("tcp.state.CLOSE_WAIT", 0) >= 1 and counters.get("tcp.state.LAST_ACK", 0) >= 1, counters


def test_kernel_socket_shutdown_write_then_recv(tcp_stack: lab.Daemon) -> None:
    """A kernel socket sends 4 MiB while reading (a thread writes), then ``shutdown(SHUT_WR)``: the
    echo keeps coming after its FIN and ends with pystack's FIN (recv returns b"")."""
    payload = os.urandom(4 * MiB)
    sock = _kernel_socket(tcp_stack.ns, 7)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    with sock:
        thread.start()
        echoed = _recv_all(sock)
        thread.join(30)
    assert not thread.is_alive() and not errors, errors
    assert len(echoed) == len(payload)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


def test_discard_reads_everything_and_closes_after_our_fin(tcp_stack: lab.Daemon) -> None:
    """Discard (RFC 863) swallows 8 MiB; after our shutdown(SHUT_WR) pystack closes: recv gives b""."""
    payload = os.urandom(8 * MiB)
    with _kernel_socket(tcp_stack.ns, 9) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""
    counters = tcp_stack.stop()
    assert counters.get("tcp.passive_opens") == 1, counters


# --- refused ------------------------------------------------------------------------------------


def test_connect_to_closed_port_is_refused_at_once(tcp_stack: lab.Daemon) -> None:
    """pystack answers a SYN to a port nobody listens on with RST (RFC 9293 3.10.7.1): the kernel
    reports ECONNREFUSED; a lost or ignored SYN would be retried for a second and time out here."""
    sock = tcp_stack.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(1.0)
        with pytest.raises(ConnectionRefusedError):
            sock.connect((lab.STACK_IP, 81))
    counters = tcp_stack.stop()
    assert counters.get("tcp.rst_sent", 0) >= 1, counters
    assert counters.get("drop.tcp.no_socket", 0) >= 1, counters


# --- who closes first ---------------------------------------------------------------------------


def test_kernel_closes_first_fin_wait_2_then_time_wait(tcp_stack: lab.Daemon, www: Path) -> None:
    """The kernel half-closes while pystack still sends a 20 MiB response it does not read yet:
    pystack ACKs the FIN and keeps sending (CLOSE-WAIT), so ``ss`` shows FIN-WAIT-2. Once everything
    is read pystack closes too and ``ss`` shows TIME-WAIT on the kernel's side."""
    want = random_file(www / "big.bin", 20 * MiB)
    with _kernel_socket(tcp_stack.ns, 80, timeout=30) as sock:
        local, peer = sock.getsockname(), sock.getpeername()
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 192.0.2.2\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        state = wait_state(tcp_stack.ns, local, peer, "FIN-WAIT-2")
        assert state == "FIN-WAIT-2", state
        response = _recv_all(sock)
        state = wait_state(tcp_stack.ns, local, peer, "TIME-WAIT")
        assert state == "TIME-WAIT", state
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert hashlib.sha256(body).hexdigest() == want
    counters = tcp_stack.stop()
    for st in ("CLOSE_WAIT", "LAST_ACK", "CLOSED"):
        assert counters.get(f"tcp.state.{st}", 0) >= 1, (st, counters)
    assert counters.get("tcp.state.TIME_WAIT", 0) == 0, counters  # the kernel holds TIME-WAIT, not us


def test_pystack_closes_first_close_wait_then_time_wait(tcp_stack: lab.Daemon, www: Path) -> None:
    """``Connection: close``: pystack sends the file and closes first. The kernel, which has read
    to the end but not closed, shows CLOSE-WAIT; after its close pystack goes through FIN-WAIT-1
    and FIN-WAIT-2 to TIME-WAIT (its counters), and the kernel keeps no socket in TIME-WAIT."""
    want = random_file(www / "small.bin", 300 * 1024)
    with _kernel_socket(tcp_stack.ns, 80) as sock:
        local, peer = sock.getsockname(), sock.getpeername()
        sock.sendall(b"GET /small.bin HTTP/1.1\r\nHost: 192.0.2.2\r\nConnection: close\r\n\r\n")
        response = _recv_all(sock)  # ends with pystack's FIN
        state = wait_state(tcp_stack.ns, local, peer, "CLOSE-WAIT")
        assert state == "CLOSE-WAIT", state
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"connection: close" in head.lower()
    assert hashlib.sha256(body).hexdigest() == want
    # The kernel's LAST-ACK ends with pystack's ACK: no trace of the connection remains on its side.
    state = wait_state(tcp_stack.ns, local, peer, None)
    assert state is None, state
    counters = tcp_stack.stop()
    for st in ("FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"):
        assert counters.get(f"tcp.state.{st}", 0) >= 1, (st, counters)
    assert counters.get("tcp.state.CLOSE_WAIT", 0) == 0, counters


def test_curl_closes_first_kernel_keeps_time_wait(tcp_stack: lab.Daemon, www: Path, tmp_path: Path) -> None:
    """After a keep-alive download curl closes first: the kernel holds TIME-WAIT, pystack went
    CLOSE-WAIT, LAST-ACK, CLOSED."""
    want = random_file(www / "f.bin", MiB)
    out = tmp_path / "f.bin"
    proc = tcp_stack.ns.run(["curl", "-sS", "--noproxy", "*", "--max-time", "60", "-o", str(out),
                             f"http://{lab.STACK_IP}/f.bin"], timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert sha256_file(out) == want
    rows = [r for r in ss_tcp(tcp_stack.ns) if r.peer == (lab.STACK_IP, 80)]
    assert len(rows) == 1, rows  # one connection, curl's, already closed by curl
    state = wait_state(tcp_stack.ns, rows[0].local, rows[0].peer, "TIME-WAIT")
    assert state == "TIME-WAIT", state
    counters = tcp_stack.stop()
    assert counters.get("tcp.state.LAST_ACK", 0) == 1 and counters.get("tcp.state.TIME_WAIT", 0) == 0, counters
