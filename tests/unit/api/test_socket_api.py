"""The BSD socket API from ordinary threads, over two real runtimes (no root: a socketpair link)."""

from __future__ import annotations

import errno
import hashlib
import random
import threading
import time

import pytest

from pystack.api.socket import (IP_RECVERR, IPPROTO_IP, IPPROTO_TCP, MSG_DONTWAIT, SHUT_WR, SOCK_DGRAM,
                                SOCK_STREAM, TCP_NODELAY, socket, timeout)

from .conftest import A_IP, B_IP


def test_tcp_echo_between_threads_moves_a_megabyte(runtimes):
    ra, rb = runtimes
    server = socket(rb, type=SOCK_STREAM)
    server.bind(("", 7000))
    server.listen(4)

    def serve() -> None:
        conn, _peer = server.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    data = random.Random(5).randbytes(1 << 20)
    with socket(ra, type=SOCK_STREAM) as c:
        c.settimeout(20)
        c.connect((B_IP, 7000))
        assert c.getpeername() == (B_IP, 7000)
        sender = threading.Thread(target=lambda: (c.sendall(data), c.shutdown(SHUT_WR)), daemon=True)
        sender.start()
        got = bytearray()
        while chunk := c.recv(65536):
            got += chunk
        sender.join(10)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    t.join(10)
    server.close()


def test_connect_to_closed_port_raises_econnrefused(runtimes):
    ra, _rb = runtimes
    c = socket(ra, type=SOCK_STREAM)
    c.settimeout(5)
    with pytest.raises(ConnectionRefusedError):
        c.connect((B_IP, 7001))


def test_recv_times_out(runtimes):
    ra, rb = runtimes
    server = socket(rb, type=SOCK_STREAM)
    server.bind(("", 7002))
    server.listen()
    c = socket(ra, type=SOCK_STREAM)
    c.settimeout(5)
    c.connect((B_IP, 7002))
    c.settimeout(0.2)
    with pytest.raises(timeout):
        c.recv(10)
    c.setblocking(False)
    with pytest.raises(BlockingIOError):
        c.recv(10)
    c.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    assert c.getsockopt(IPPROTO_TCP, TCP_NODELAY) == 1


def test_peer_reset_is_econnreset(runtimes):
    ra, rb = runtimes
    server = socket(rb, type=SOCK_STREAM)
    server.bind(("", 7003))
    server.listen()
    c = socket(ra, type=SOCK_STREAM)
    c.settimeout(5)
    c.connect((B_IP, 7003))
    s, _ = server.accept()
    c.sendall(b"unread")
    import time

    time.sleep(0.2)
    s.close()  # closing with unread data sends RST (RFC 2525 2.17, as Linux)
    with pytest.raises(OSError) as info:
        c.recv(10)
    assert info.value.errno == errno.ECONNRESET


@pytest.mark.parametrize("recverr", [True, False], ids=["recverr", "plain"])
def test_ip_recverr_lets_an_unconnected_udp_socket_hear_port_unreachable(runtimes, recverr):
    """As Linux: an unconnected socket hears ICMP errors only with IP_RECVERR (__udp4_lib_err)."""
    ra, _rb = runtimes
    client = socket(ra, type=SOCK_DGRAM)
    client.setsockopt(IPPROTO_IP, IP_RECVERR, int(recverr))
    assert client.getsockopt(IPPROTO_IP, IP_RECVERR) == int(recverr)
    client.sendto(b"anyone?", (B_IP, 9999))
    deadline = time.monotonic() + 5
    while ra.stack.counters["icmp.errors_received"] == 0:
        assert time.monotonic() < deadline, "no port unreachable came back"
        time.sleep(0.01)
    if recverr:
        with pytest.raises(ConnectionRefusedError):
            client.recvfrom(100, MSG_DONTWAIT)
    with pytest.raises(BlockingIOError):
        client.recvfrom(100, MSG_DONTWAIT)  # without IP_RECVERR nothing; with it, reported once
    client.close()


def test_udp_sockets_between_threads(runtimes):
    ra, rb = runtimes
    server = socket(rb, type=SOCK_DGRAM)
    server.bind(("", 5353))
    client = socket(ra, type=SOCK_DGRAM)
    client.settimeout(5)
    server.settimeout(5)
    client.sendto(b"question", (B_IP, 5353))
    data, peer = server.recvfrom(100)
    assert data == b"question" and peer[0] == A_IP
    server.sendto(b"answer", peer)
    assert client.recvfrom(100) == (b"answer", (B_IP, 5353))
