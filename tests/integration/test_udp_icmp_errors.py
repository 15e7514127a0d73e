"""Which ICMP errors a connected UDP socket hears, and as which errno: pystack's tables (pystack.ip.icmp_errno)
against the kernel's own sockets.

In a fresh namespace an nftables rule rejects UDP to one port with each unreachable the kernel can send
(``reject with icmp type ...``, ``icmpv6 type ...``); a connected kernel socket, with and without
IP_RECVERR (IPV6_RECVERR), sends one datagram there over loopback and reads what comes back. pystack's
UDP endpoint must hear the same: the errno of its table, and, without the option, only the errors its
table calls fatal (a soft one leaves the kernel's socket waiting for data, here until a short timeout).
"""

from __future__ import annotations

import ipaddress
import random
import socket
import threading
from collections.abc import Callable

import pytest

from pystack.api.families import V4, V6, Where
from pystack.api.socket import IP_RECVERR, IPPROTO_IP, IPV6_RECVERR
from pystack.dns import DnsConfig, Resolver
from pystack.dns import blocking as dns_blocking
from pystack.iface.icmpv6 import AS_ICMPV4
from pystack.ip.icmp_errno import icmp_errno, icmp_fatal, icmpv6_errno
from pystack.wire import dns as dns_wire
from pystack_lab import lab

pytestmark = pytest.mark.integration

PORT = 9999
QUIET = 0.3
"""Seconds the socket waits for an error; one sent over loopback comes back within microseconds."""

ICMP = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2, "port-unreachable": 3,
        "net-prohibited": 9, "host-prohibited": 10, "admin-prohibited": 13}
"""nft's names for the ICMP Destination Unreachable codes it can reject with."""
ICMPV6 = {"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3, "port-unreachable": 4,
          "policy-fail": 5, "reject-route": 6}
"""nft's names for the ICMPv6 Destination Unreachable codes it can reject with."""


def _heard(ns: lab.Namespace, family: int, recverr: bool) -> int | None:
    """The errno a connected socket of ``family`` reads after one datagram to the rejected port, or None."""
    sock = ns.socket(family, socket.SOCK_DGRAM)
    try:
        if recverr:
            sock.setsockopt(IPPROTO_IP, IP_RECVERR, 1)  # IPv4 peers (an AF_INET6 socket's mapped ones too)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        sock.connect(("127.0.0.1" if family == socket.AF_INET else "::1", PORT))
        sock.settimeout(QUIET)
        sock.send(b"anyone?")
        try:
            sock.recv(100)
        except TimeoutError:
            return None
        except OSError as exc:
            return exc.errno
        pytest.fail("the rejected port answered with data")
    finally:
        sock.close()


def _reject(ns: lab.Namespace, how: str) -> None:
    ns.run(["nft", "flush", "ruleset"], check=True)
    ns.run(["nft", "add", "table", "inet", "pst"], check=True)
    ns.run(["nft", "add", "chain", "inet", "pst", "in", "{ type filter hook input priority 0; }"], check=True)
    ns.run(["nft", "add", "rule", "inet", "pst", "in", "udp", "dport", str(PORT), "reject", "with", *how.split()],
           check=True)


@pytest.fixture
def loopback(ns: lab.Namespace, require_tools: Callable[..., None]) -> lab.Namespace:
    require_tools("nft")
    ns.link_up("lo")
    return ns


@pytest.mark.parametrize("name", list(ICMP))
def test_icmp_unreachables_reach_a_connected_socket_as_pystack_says(loopback: lab.Namespace, name: str) -> None:
    code = ICMP[name]
    _reject(loopback, f"icmp type {name}")
    expected = icmp_errno(3, code)
    assert _heard(loopback, socket.AF_INET, recverr=True) == expected
    assert _heard(loopback, socket.AF_INET, recverr=False) == (expected if icmp_fatal(3, code) else None)


@pytest.mark.parametrize("name", list(ICMPV6))
def test_icmpv6_unreachables_reach_a_connected_socket_as_pystack_says(loopback: lab.Namespace, name: str) -> None:
    code = ICMPV6[name]
    _reject(loopback, f"icmpv6 type {name}")
    expected = icmpv6_errno(1, code)
    fatal = icmp_fatal(*AS_ICMPV4[(1, code)])  # what pystack's UDP is told, in ICMP's words
    assert _heard(loopback, socket.AF_INET6, recverr=True) == expected
    assert _heard(loopback, socket.AF_INET6, recverr=False) == (expected if fatal else None)


def _serve_one_answer(sock: socket.socket) -> None:
    """Answer one AAAA question for www.example.test with 2001:db8:1::80."""
    data, peer = sock.recvfrom(512)
    query = dns_wire.parse(data)
    q = query.questions[0]
    answer = dns_wire.Record(q.name, q.qtype, dns_wire.CLASS_IN, 60, ipaddress.IPv6Address("2001:db8:1::80"))
    flags = dns_wire.FLAG_QR | dns_wire.FLAG_RD | dns_wire.FLAG_RA
    sock.sendto(dns_wire.build(dns_wire.DnsMessage(query.id, flags, [q], [answer])), peer)


def test_the_dns_driver_reads_a_kernel_sockets_error_queue(loopback: lab.Namespace) -> None:
    """pystack.dns.blocking over a kernel socket: the first server (127.0.0.1, nothing on port 53) answers
    port unreachable, and the driver, reading the kernel's error queue, asks the second (::1) at once."""
    ns = loopback
    ns.run(["nft", "flush", "ruleset"], check=True)
    server = ns.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    server.bind(("::1", 53))
    server.settimeout(10)
    answering = threading.Thread(target=_serve_one_answer, args=(server,), daemon=True)
    answering.start()
    sock = ns.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(IPPROTO_IP, IP_RECVERR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    sock.bind(("::", 0))
    v4, v6 = Where(V4, int(ipaddress.IPv4Address("127.0.0.1"))), Where(V6, int(ipaddress.IPv6Address("::1")))
    resolver = Resolver([v4, v6], random.Random(1), DnsConfig(timeout=5.0))
    try:
        q = dns_blocking.resolve(sock, resolver, "www.example.test", dns_wire.TYPE_AAAA)
    finally:
        sock.close()
        answering.join(10)
        server.close()
    assert q.result() == [ipaddress.IPv6Address("2001:db8:1::80")] and q.server == v6
    assert resolver.counters["dns.port_unreachable"] == 1 and resolver.counters["dns.timeouts"] == 0
