"""pystack.socket with IPv6 up (runtime A dual-stack, its peer B too): AF_INET6 sockets, a dual-stack
server made by the stdlib's own create_server, getaddrinfo's AAAA answers from pystack's DNS client in
RFC 6724's order, and the AF_INET6 address checks CPython makes, compared with the kernel's sockets."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import pystack.socket as ps
from pystack.api import socket as api
from pystack.api.families import Where
from pystack.api.names import Names
from pystack.dns.hosts import HostsTable
from pystack.runtime import Runtime
from pystack.wire.ipv4 import addr_to_int

from .conftest import A6, A_IP, B6, B_IP
from .test_stdlib_socket import _dns_server, _echo_server

STREAM = (ps.SOCK_STREAM, ps.IPPROTO_TCP, "")


@pytest.fixture
def net6(runtimes6: tuple[Runtime, Runtime]) -> Iterator[tuple[Runtime, Runtime]]:
    ra, rb = runtimes6
    hosts = HostsTable.parse([f"{B6} peer6.example.test peer6", f"{B_IP} peer.example.test peer"])
    ps.use(ra, Names(ra, [Where(4, addr_to_int(B_IP))], hosts))
    try:
        yield ra, rb
    finally:
        ps._network = None
        ps.has_ipv6 = False


def _client(rb: Runtime, family: int, host: str, port: int, line: bytes) -> bytes:
    c = api.socket(rb, family, api.SOCK_STREAM)
    c.settimeout(10)
    c.connect((host, port))
    c.sendall(line)
    answer = c.recv(100)
    c.close()
    return answer


def _serve_one(listener: ps.socket) -> tuple[bytes, object]:
    conn, address = listener.accept()
    with conn:
        conn.sendall(conn.recv(100).upper())
    return address


def test_stdlib_create_server_dual_stack_takes_both_families(net6):
    _ra, rb = net6
    assert ps.has_ipv6 and ps.has_dualstack_ipv6()
    listener = ps.create_server(("", 7600), family=ps.AF_INET6, dualstack_ipv6=True)
    listener.settimeout(10)
    assert listener.family == ps.AF_INET6 and listener.getsockname() == ("::", 7600, 0, 0)
    assert listener.getsockopt(ps.IPPROTO_IPV6, ps.IPV6_V6ONLY) == 0
    seen = []
    for family, host in ((ps.AF_INET, A_IP), (ps.AF_INET6, A6)):
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(_client, rb, family, host, 7600, b"hi\n")
            seen.append(_serve_one(listener))
            assert answer.result(10) == b"HI\n"
    assert seen[0][0] == "::ffff:" + B_IP and seen[1][0] == B6 and all(len(a) == 4 for a in seen)
    listener.close()


def test_stdlib_create_server_ipv6_only_refuses_ipv4(net6):
    _ra, rb = net6
    listener = ps.create_server(("", 7601), family=ps.AF_INET6)  # the stdlib sets IPV6_V6ONLY here
    assert listener.getsockopt(ps.IPPROTO_IPV6, ps.IPV6_V6ONLY) == 1
    refused = api.socket(rb, api.AF_INET, api.SOCK_STREAM)
    refused.settimeout(10)
    assert refused.connect_ex((A_IP, 7601)) == errno.ECONNREFUSED
    refused.close()
    listener.close()


def test_getaddrinfo_asks_for_aaaa_and_puts_ipv6_first(net6):
    _ra, rb = net6
    dns = _dns_server(rb, {"dual.example.test": [B6, B_IP], "v4.example.test": [B_IP], "v6.example.test": [B6]})
    v6, v4 = (ps.AF_INET6, *STREAM, (B6, 80, 0, 0)), (ps.AF_INET, *STREAM, (B_IP, 80))
    assert ps.getaddrinfo("dual.example.test", 80, type=ps.SOCK_STREAM) == [v6, v4]
    assert ps.getaddrinfo("dual.example.test", 80, ps.AF_INET6, ps.SOCK_STREAM) == [v6]
    assert ps.getaddrinfo("dual.example.test", 80, ps.AF_INET, ps.SOCK_STREAM) == [v4]
    assert ps.getaddrinfo("v4.example.test", 80, type=ps.SOCK_STREAM) == [v4]
    assert ps.getaddrinfo("v6.example.test", 80, type=ps.SOCK_STREAM) == [v6]
    assert ps.getaddrinfo("peer6", 80, type=ps.SOCK_STREAM) == [v6]  # the hosts table; no DNS for AAAA or A
    assert ps.getaddrinfo(B6, 80, type=ps.SOCK_STREAM) == [v6]
    assert ps.getaddrinfo(None, 80, type=ps.SOCK_STREAM, flags=ps.AI_PASSIVE) == [
        (ps.AF_INET, *STREAM, ("0.0.0.0", 80)), (ps.AF_INET6, *STREAM, ("::", 80, 0, 0))]
    for host, family in ((B_IP, ps.AF_INET6), (B6, ps.AF_INET)):
        with pytest.raises(ps.gaierror) as other:
            ps.getaddrinfo(host, 80, family)
        assert other.value.errno == ps.EAI_ADDRFAMILY
    with pytest.raises(ps.gaierror) as nodata:
        ps.getaddrinfo("v4.example.test", 80, ps.AF_INET6)
    assert nodata.value.errno == ps.EAI_NODATA
    assert ps.gethostbyname("dual.example.test") == B_IP  # IPv4 only, as glibc's
    assert ps.gethostbyaddr(B6) == ("peer6.example.test", ["peer6"], [B6])
    assert ps.getnameinfo((B6, 80, 0, 0), ps.NI_NUMERICHOST | ps.NI_NUMERICSERV) == (B6, "80")
    assert ps.getnameinfo((B6, 80), 0) == ("peer6.example.test", "http")
    dns.close()


def test_ipv6_answers_go_last_when_the_stack_has_no_source_for_them(net6):
    """RFC 6724 rule 1: with only its link-local address, A has no source for a global IPv6 destination,
    so the IPv4 answer comes first."""
    ra, rb = net6
    dns = _dns_server(rb, {"dual.example.test": [B6, B_IP]})
    with ra.lock:
        ra.stack.remove_address6(int(ipaddress.IPv6Address(A6)), ra.now())
    got = [info[4][0] for info in ps.getaddrinfo("dual.example.test", 80, type=ps.SOCK_STREAM)]
    assert got == [B_IP, B6]
    dns.close()


def test_ipv6_answers_go_last_when_the_stack_has_no_route_for_them(net6):
    """RFC 6724 rule 1 again: 2001:db8:99::1 is off-link and no router was advertised."""
    _ra, rb = net6
    far = "2001:db8:99::1"
    dns = _dns_server(rb, {"far.example.test": [far, B_IP], "near.example.test": [B6, B_IP]})
    assert [info[4][0] for info in ps.getaddrinfo("far.example.test", 80, type=ps.SOCK_STREAM)] == [B_IP, far]
    assert [info[4][0] for info in ps.getaddrinfo("near.example.test", 80, type=ps.SOCK_STREAM)] == [B6, B_IP]
    dns.close()


def test_create_connection_by_name_goes_over_ipv6(net6):
    _ra, rb = net6
    server = _echo_server(rb, 7602, api.AF_INET6)
    dns = _dns_server(rb, {"dual.example.test": [B6, B_IP]})
    with ps.create_connection(("dual.example.test", 7602), timeout=10) as s:
        assert s.family == ps.AF_INET6 and s.getpeername() == (B6, 7602, 0, 0)
        assert s.getsockname()[0] == A6
        s.sendall(b"over IPv6")
        assert s.recv(100) == b"over IPv6"
    with ps.create_connection((B_IP, 7602), timeout=10) as s4:  # the dual-stack echo server takes IPv4 too
        s4.sendall(b"over IPv4")
        assert s4.recv(100) == b"over IPv4"
    server.close()
    dns.close()


def test_asyncio_drives_ipv6_sockets(net6):
    _ra, rb = net6
    server = _echo_server(rb, 7603, api.AF_INET6)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        sock = ps.socket(ps.AF_INET6)
        sock.setblocking(False)
        await loop.sock_connect(sock, (B6, 7603))
        reader, writer = await asyncio.open_connection(sock=sock)
        assert writer.get_extra_info("peername") == (B6, 7603, 0, 0)
        writer.write(b"asyncio over IPv6\n")
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return line

    assert asyncio.run(asyncio.wait_for(main(), 20)) == b"asyncio over IPv6\n"
    server.close()


@pytest.mark.parametrize("address", [
    "::1", ("::1",), ("::1", 1, 2, 3, 4), ("::1", 70000), ("::1", 1, 1 << 20, 0), ("::1", "80"),
    ("<broadcast>", 80), ("192.0.2.1", 80),
], ids=["a string", "one item", "five items", "port", "flowinfo", "port a string", "broadcast", "ipv4 literal"])
def test_bad_ipv6_addresses_fail_as_the_kernel_sockets(net6, address):
    """CPython's checks of an AF_INET6 address (getsockaddrarg, setipaddr): the same exception and text."""

    def outcome(sock) -> tuple[str, str]:
        try:
            sock.connect(address)
        except Exception as exc:  # noqa: BLE001 - the exception is what is compared
            return type(exc).__name__, str(exc)
        finally:
            sock.close()
        return "no error", ""

    assert outcome(ps.socket(ps.AF_INET6)) == outcome(ps._std.socket(ps.AF_INET6))
