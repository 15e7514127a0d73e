"""A DNS server that answers ICMP port unreachable (its host runs no DNS server) is passed over at once,
as glibc does, not after the 2 s timeout: two in-memory dual-stack stacks, B serving DNS on one address
family only, so that B's other address answers port unreachable, in either family."""

from __future__ import annotations

import errno
import random
import socket as kernel_socket
from typing import Any

import pytest

from pystack.api import socket as api
from pystack.api.names import Names
from pystack.dns import DnsConfig, Resolver
from pystack.dns import blocking as dns_blocking
from pystack.wire import dns as dns_wire

from .conftest import B6, B_IP
from .test_names_ipv6 import SERVER4, SERVER6, WWW6, Server

ORDERS = {"ipv4 refuses, ipv6 answers": (SERVER4, SERVER6, api.AF_INET6, B6),
          "ipv6 refuses, ipv4 answers": (SERVER6, SERVER4, api.AF_INET, B_IP)}


class FakeClockSocket:
    """A pystack UDP socket whose timeouts move a fake clock: a wait that runs out adds its whole timeout
    to ``now``, a datagram or error that comes first adds nothing. ``sent`` is (fake time, address)."""

    def __init__(self, sock: api.UdpSocket) -> None:
        self.sock = sock
        self.family = sock.family
        self.now = 0.0
        self.timeout: float | None = None
        self.sent: list[tuple[float, tuple[Any, ...]]] = []

    def clock(self) -> float:
        return self.now

    def getsockname(self) -> tuple[Any, ...]:
        return self.sock.getsockname()

    def settimeout(self, value: float | None) -> None:
        self.timeout = value
        self.sock.settimeout(value)

    def sendto(self, data: bytes, address: tuple[Any, ...]) -> int:
        self.sent.append((self.now, address))
        return self.sock.sendto(data, address)

    def recvfrom(self, bufsize: int) -> tuple[bytes, tuple[Any, ...]]:
        try:
            return self.sock.recvfrom(bufsize)
        except TimeoutError:
            assert self.timeout is not None
            self.now += self.timeout
            raise

    def recvmsg(self, bufsize: int, ancbufsize: int, flags: int) -> tuple[bytes, list, int, Any]:
        return self.sock.recvmsg(bufsize, ancbufsize, flags)


@pytest.mark.parametrize("order", list(ORDERS))
def test_the_next_server_is_asked_as_soon_as_the_first_answers_port_unreachable(runtimes6, order) -> None:
    refusing, answering, family, host = ORDERS[order]
    ra, rb = runtimes6
    server = Server(rb, family, host)  # port 53 of B's other address is closed: port unreachable
    sock = api.socket(ra, api.AF_INET6, api.SOCK_DGRAM)
    sock.setsockopt(api.IPPROTO_IP, api.IP_RECVERR, 1)
    sock.setsockopt(api.IPPROTO_IPV6, api.IPV6_RECVERR, 1)
    sock.bind(("::", 0))
    fake = FakeClockSocket(sock)
    resolver = Resolver([refusing, answering], random.Random(1), DnsConfig(timeout=2.0))
    q = dns_blocking.resolve(fake, resolver, "www.example.test", dns_wire.TYPE_AAAA, clock=fake.clock)
    assert q.result() == [WWW6] and q.server == answering
    assert [t for t, _address in fake.sent] == [0.0, 0.0]  # the second question left before any timeout
    assert resolver.counters["dns.port_unreachable"] == 1 and resolver.counters["dns.timeouts"] == 0
    assert len(server.udp_peers) == 1
    sock.close()


def test_names_passes_over_a_server_with_no_dns_without_a_timeout(runtimes6) -> None:
    ra, rb = runtimes6
    Server(rb, api.AF_INET6, B6)
    names = Names(ra, [SERVER4, SERVER6])
    assert names.addresses("www.example.test", version=6) == ("www.example.test", [int(WWW6)])
    counters = ra.stack.counters
    assert counters["dns.port_unreachable"] == 1 and counters["dns.timeouts"] == 0


def test_the_error_queue_tells_what_the_port_unreachable_was_about(runtimes) -> None:
    """recvmsg(MSG_ERRQUEUE) in Linux's shape (ip_recv_error): the payload, a sock_extended_err, the
    address the datagram went to."""
    ra, _rb = runtimes
    sock = api.socket(ra, api.AF_INET, api.SOCK_DGRAM)
    sock.setsockopt(api.IPPROTO_IP, api.IP_RECVERR, 1)
    sock.settimeout(5)
    sock.sendto(b"anyone?", (B_IP, 9999))
    with pytest.raises(ConnectionRefusedError):
        sock.recvfrom(100)
    data, ancdata, flags, address = sock.recvmsg(100, kernel_socket.CMSG_SPACE(32), api.MSG_ERRQUEUE)
    # B's port unreachable quotes up to 548 bytes of the datagram, as Linux's: the payload comes back whole
    assert (data, flags, address) == (b"anyone?", api.MSG_ERRQUEUE, (B_IP, 9999))
    [(level, kind, message)] = ancdata
    assert (level, kind) == (api.IPPROTO_IP, api.IP_RECVERR)
    ee_errno, origin, icmp_type, icmp_code = api._EXTENDED_ERR.unpack_from(message)[:4]
    assert (ee_errno, origin, icmp_type, icmp_code) == (errno.ECONNREFUSED, 2, 3, 3)  # SO_EE_ORIGIN_ICMP
    with pytest.raises(BlockingIOError):
        sock.recvmsg(100, 256, api.MSG_ERRQUEUE)
    sock.close()
