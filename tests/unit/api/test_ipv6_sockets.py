"""AF_INET6 in pystack's socket API (pystack/api/socket.py) between two dual-stack runtimes: TCP and UDP
over IPv6, a listener on ``::`` that takes IPv4 clients too (their addresses IPv4-mapped, as Linux shows
them) unless IPV6_V6ONLY was set before bind, and the errors the kernel gives for the family's misuses."""

from __future__ import annotations

import errno
import threading

import pytest

from pystack.api import socket as api
from pystack.runtime import Runtime

from .conftest import A6, A_IP, B6, B_IP

MAPPED_A = "::ffff:" + A_IP


def _serve_once(server: api.TcpSocket, seen: list) -> threading.Thread:
    """Accept one connection, note its address and names, echo what it sends until EOF."""

    def run() -> None:
        conn, address = server.accept()
        with conn:
            seen.append((address, conn.getsockname(), conn.getpeername(), conn.family))
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _listener(rb: Runtime, port: int, v6only: bool | None = None, host: str = "::") -> api.TcpSocket:
    server = api.socket(rb, api.AF_INET6, api.SOCK_STREAM)
    server.settimeout(20)
    if v6only is not None:
        server.setsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY, int(v6only))
    server.bind((host, port))
    server.listen()
    return server


def _exchange(client: api.TcpSocket, payload: bytes) -> bytes:
    client.sendall(payload)
    client.shutdown(api.SHUT_WR)
    got = b""
    while chunk := client.recv(65536):
        got += chunk
    return got


def test_tcp_over_ipv6_connects_accepts_and_names_both_ends_in_four_tuples(runtimes6):
    ra, rb = runtimes6
    server = _listener(rb, 8600)
    assert server.getsockname() == ("::", 8600, 0, 0)
    seen: list = []
    thread = _serve_once(server, seen)
    client = api.socket(ra, api.AF_INET6, api.SOCK_STREAM)
    client.settimeout(20)
    client.connect((B6, 8600))
    local = client.getsockname()
    assert local[0] == A6 and local[2:] == (0, 0) and client.getpeername() == (B6, 8600, 0, 0)
    payload = bytes(range(256)) * 2048
    assert _exchange(client, payload) == payload
    client.close()
    thread.join(10)
    assert seen == [(local, (B6, 8600, 0, 0), local, api.AF_INET6)]
    server.close()


def test_listener_on_the_wildcard_takes_an_ipv4_client_named_ipv4_mapped(runtimes6):
    """As Linux with net.ipv6.bindv6only = 0: one AF_INET6 socket on :: serves both families."""
    ra, rb = runtimes6
    server = _listener(rb, 8601)
    seen: list = []
    thread = _serve_once(server, seen)
    client = api.socket(ra, api.AF_INET, api.SOCK_STREAM)
    client.settimeout(20)
    client.connect((B_IP, 8601))
    port = client.getsockname()[1]
    assert _exchange(client, b"over IPv4 to an IPv6 socket") == b"over IPv4 to an IPv6 socket"
    client.close()
    thread.join(10)
    assert seen == [((MAPPED_A, port, 0, 0), ("::ffff:" + B_IP, 8601, 0, 0), (MAPPED_A, port, 0, 0), api.AF_INET6)]
    server.close()


def test_v6only_listener_refuses_ipv4_and_serves_ipv6(runtimes6):
    ra, rb = runtimes6
    server = _listener(rb, 8602, v6only=True)
    assert server.getsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY) == 1
    with pytest.raises(OSError) as late:
        server.setsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY, 0)
    assert late.value.errno == errno.EINVAL  # only before bind, as Linux
    v4 = api.socket(ra, api.AF_INET, api.SOCK_STREAM)
    v4.settimeout(20)
    assert v4.connect_ex((B_IP, 8602)) == errno.ECONNREFUSED
    seen: list = []
    thread = _serve_once(server, seen)
    v6 = api.socket(ra, api.AF_INET6, api.SOCK_STREAM)
    v6.settimeout(20)
    v6.connect((B6, 8602))
    assert _exchange(v6, b"IPv6 only") == b"IPv6 only"
    thread.join(10)
    assert seen[0][0][0] == A6
    for s in (v4, v6, server):
        s.close()


def test_dual_stack_port_is_taken_in_both_families_and_v6only_leaves_ipv4_free(runtimes6):
    """Linux's bind rules between the families: :: (dual) holds the IPv4 port too; V6ONLY does not."""
    _ra, rb = runtimes6
    dual = api.socket(rb, api.AF_INET6, api.SOCK_STREAM)
    dual.bind(("::", 0))
    port = dual.getsockname()[1]
    v4 = api.socket(rb, api.AF_INET, api.SOCK_STREAM)
    with pytest.raises(OSError) as taken:
        v4.bind(("", port))
    assert taken.value.errno == errno.EADDRINUSE
    only6 = api.socket(rb, api.AF_INET6, api.SOCK_STREAM)
    only6.setsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY, 1)
    with pytest.raises(OSError) as taken6:
        only6.bind(("::", port))
    assert taken6.value.errno == errno.EADDRINUSE
    dual.close()
    only6.bind(("::", port))
    v4.bind(("", port))  # IPv4 is free beside an IPv6-only socket
    late_dual = api.socket(rb, api.AF_INET6, api.SOCK_STREAM)
    with pytest.raises(OSError) as both:
        late_dual.bind(("::", port))
    assert both.value.errno == errno.EADDRINUSE
    for s in (v4, only6, late_dual):
        s.close()


def test_ipv4_mapped_addresses_on_an_ipv6_only_socket_fail_as_on_linux(runtimes6):
    ra, _rb = runtimes6
    s = api.socket(ra, api.AF_INET6, api.SOCK_STREAM)
    s.setsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY, 1)
    assert s.connect_ex(("::ffff:" + B_IP, 80)) == errno.ENETUNREACH
    with pytest.raises(OSError) as bind:
        s.bind((MAPPED_A, 0))
    assert bind.value.errno == errno.EINVAL
    u = api.socket(ra, api.AF_INET6, api.SOCK_DGRAM)
    u.setsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY, 1)
    with pytest.raises(OSError) as send:
        u.sendto(b"x", ("::ffff:" + B_IP, 9))
    assert send.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError) as not_ours:
        api.socket(ra, api.AF_INET6, api.SOCK_STREAM).bind(("2001:db8::7", 0))
    assert not_ours.value.errno == errno.EADDRNOTAVAIL
    v4 = api.socket(ra, api.AF_INET, api.SOCK_STREAM)
    with pytest.raises(OSError) as level:
        v4.setsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY, 1)
    assert level.value.errno == errno.ENOPROTOOPT
    with pytest.raises(OSError) as level_get:
        v4.getsockopt(api.IPPROTO_IPV6, api.IPV6_V6ONLY)
    assert level_get.value.errno == errno.EOPNOTSUPP
    assert s.getsockopt(api.SOL_SOCKET, api._socket.SO_DOMAIN) == api.AF_INET6
    for sock in (s, u, v4):
        sock.close()


def test_udp_over_ipv6_and_a_dual_stack_udp_socket_answering_ipv4(runtimes6):
    ra, rb = runtimes6
    server = api.socket(rb, api.AF_INET6, api.SOCK_DGRAM)
    server.settimeout(10)
    server.bind(("::", 5300))
    assert server.getsockname() == ("::", 5300, 0, 0)
    c6 = api.socket(ra, api.AF_INET6, api.SOCK_DGRAM)
    c6.settimeout(10)
    c6.sendto(b"over IPv6", (B6, 5300))
    data, peer6 = server.recvfrom(100)
    assert data == b"over IPv6" and peer6[0] == A6 and peer6[2:] == (0, 0)
    server.sendto(b"back over IPv6", peer6)
    assert c6.recvfrom(100) == (b"back over IPv6", (B6, 5300, 0, 0))
    c4 = api.socket(ra, api.AF_INET, api.SOCK_DGRAM)
    c4.settimeout(10)
    c4.sendto(b"over IPv4", (B_IP, 5300))
    data, peer4 = server.recvfrom(100)
    assert data == b"over IPv4" and peer4 == (MAPPED_A, c4.getsockname()[1], 0, 0)
    server.sendto(b"back over IPv4", peer4)
    assert c4.recvfrom(100) == (b"back over IPv4", (B_IP, 5300))
    for s in (server, c6, c4):
        s.close()


def test_connected_ipv6_udp_socket_names_its_peer(runtimes6):
    ra, rb = runtimes6
    server = api.socket(rb, api.AF_INET6, api.SOCK_DGRAM)
    server.settimeout(10)
    server.bind((B6, 5301))
    assert server.getsockname() == (B6, 5301, 0, 0)
    client = api.socket(ra, api.AF_INET6, api.SOCK_DGRAM)
    client.settimeout(10)
    client.connect((B6, 5301))
    assert client.getpeername() == (B6, 5301, 0, 0) and client.getsockname()[0] == A6
    client.send(b"connected")
    data, peer = server.recvfrom(100)
    assert data == b"connected" and peer == client.getsockname()
    for s in (server, client):
        s.close()


def test_ipv6_socket_on_a_stack_without_ipv6_is_eafnosupport(runtimes):
    ra, _rb = runtimes
    for kind in (api.SOCK_STREAM, api.SOCK_DGRAM):
        with pytest.raises(OSError) as off:
            api.socket(ra, api.AF_INET6, kind)
        assert off.value.errno == errno.EAFNOSUPPORT
