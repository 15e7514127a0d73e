"""The blocking driver over a socket-shaped fake: answers, retries on timeouts, stray datagrams, errors."""

from __future__ import annotations

import errno
import ipaddress
import random
import socket

import pytest

from pystack.api.families import Where
from pystack.dns import DnsConfig, Query, Resolver
from pystack.dns.blocking import resolve, resolve_many
from pystack.wire import dns

from .fake_dns import NS1, NS2, NS6, WWW, WWW6, FakeDns


class FakeSocket:
    """A bound UDP socket on a fake network with a fake clock: recvfrom waits by advancing the clock."""

    def __init__(self, servers: dict[Where, FakeDns], port: int = 40000, family: int = socket.AF_INET) -> None:
        self.servers = servers
        self.family = family
        self.port = port
        self.now = 0.0
        self.timeout: float | None = None
        self.inbox: list[tuple[bytes, tuple]] = []
        self.sent: list[tuple[float, bytes, tuple]] = []
        self.fail_send: OSError | None = None

    def clock(self) -> float:
        return self.now

    def getsockname(self) -> tuple:
        return ("0.0.0.0", self.port) if self.family == socket.AF_INET else ("::", self.port, 0, 0)

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def sendto(self, data: bytes, address: tuple) -> int:
        """As a kernel socket: AF_INET takes (host, port), AF_INET6 (host, port[, flow, scope]) with IPv4
        written IPv4-mapped; the answer comes from the address in the socket's own shape."""
        if self.fail_send is not None:
            raise self.fail_send
        self.sent.append((self.now, data, address))
        if self.family == socket.AF_INET:
            server = Where(4, int(ipaddress.IPv4Address(address[0])))
        else:
            ip6 = ipaddress.IPv6Address(address[0])
            server = Where(4, int(ip6.ipv4_mapped)) if ip6.ipv4_mapped else Where(6, int(ip6))
        reply = self.servers[server].answer(data) if server in self.servers else None
        if reply is not None:
            self.inbox.append((reply, (address[0], address[1]) if self.family == socket.AF_INET
                               else (address[0], address[1], 0, 0)))
        return len(data)

    def recvfrom(self, bufsize: int) -> tuple[bytes, tuple]:
        if self.inbox:
            return self.inbox.pop(0)
        assert self.timeout is not None and self.timeout > 0  # the driver never blocks for ever
        self.now += self.timeout
        raise socket.timeout("timed out")


def _resolver(servers: list[Where], **cfg) -> Resolver:
    return Resolver(servers, random.Random(3), DnsConfig(**cfg))


def test_resolves_through_the_socket_from_its_own_port() -> None:
    sock = FakeSocket({NS1: FakeDns()})
    q = resolve(sock, _resolver([NS1]), "web.example.test", clock=sock.clock)
    assert q.result() == [WWW] and q.src_port == 40000
    assert [addr for _t, _d, addr in sock.sent] == [("192.0.2.1", 53)]


def test_silent_first_server_then_the_second_answers() -> None:
    sock = FakeSocket({NS1: FakeDns(mode="silent"), NS2: FakeDns()})
    q = resolve(sock, _resolver([NS1, NS2], timeout=2.0), "www.example.test", clock=sock.clock)
    assert q.result() == [WWW] and q.server == NS2
    assert [(t, addr[0]) for t, _d, addr in sock.sent] == [(0.0, "192.0.2.1"), (2.0, "192.0.2.53")]


def test_stray_datagrams_are_ignored_while_waiting() -> None:
    sock = FakeSocket({NS1: FakeDns()})
    sock.inbox.append((b"junk", ("192.0.2.66", 53)))
    sock.inbox.append((b"\x00" * 12, ("not-an-address", 53)))
    resolver = _resolver([NS1])
    q = resolve(sock, resolver, "www.example.test", clock=sock.clock)
    assert q.result() == [WWW]
    assert resolver.counters.total_drops() == 1  # the junk; the unparseable source never reached it


def test_timeout_error_after_all_attempts() -> None:
    sock = FakeSocket({NS1: FakeDns(mode="silent")})
    q = resolve(sock, _resolver([NS1], timeout=1.0, backoff=2.0, attempts=3), "www.example.test", clock=sock.clock)
    assert q.error is not None and q.error.code == "timeout"
    assert [t for t, _d, _a in sock.sent] == [0.0, 1.0, 3.0] and sock.now == 7.0


def test_cached_answer_needs_no_socket_traffic() -> None:
    sock = FakeSocket({NS1: FakeDns()})
    resolver = _resolver([NS1])
    resolve(sock, resolver, "www.example.test", clock=sock.clock)
    q = resolve(sock, resolver, "www.example.test", clock=sock.clock)
    assert q.from_cache and len(sock.sent) == 1


def test_send_error_propagates_and_cancels() -> None:
    sock = FakeSocket({NS1: FakeDns()})
    sock.fail_send = OSError(errno.ENETUNREACH, "network is unreachable")
    resolver = _resolver([NS1])
    with pytest.raises(OSError) as info:
        resolve(sock, resolver, "www.example.test", clock=sock.clock)
    assert info.value.errno == errno.ENETUNREACH
    assert resolver.get_timer() is None


def test_truncated_answer_comes_back_flagged() -> None:
    sock = FakeSocket({NS1: FakeDns(mode="truncate")})
    q = resolve(sock, _resolver([NS1]), "www.example.test", qtype=dns.TYPE_A, clock=sock.clock)
    assert q.needs_tcp


# ---------------------------------------------------------------------- several questions at once


class SlowQuestion(FakeDns):
    """Leaves the first query of type ``slow`` unanswered (a lost datagram): the other type answers first."""

    def __init__(self, slow: int) -> None:
        super().__init__()
        self.slow = slow
        self.dropped = False

    def answer(self, payload: bytes) -> bytes | None:
        if dns.parse(payload).questions[0].qtype == self.slow and not self.dropped:
            self.dropped = True
            return None
        return super().answer(payload)


def test_resolve_many_sends_aaaa_then_a_before_reading_any_answer() -> None:
    """RFC 8305 section 3: both questions leave at once, AAAA first, from the socket's one port."""
    sock = FakeSocket({NS1: FakeDns()})
    done: list[int] = []
    q6, q4 = resolve_many(sock, _resolver([NS1]), "www.example.test", [dns.TYPE_AAAA, dns.TYPE_A],
                          clock=sock.clock, on_done=lambda q: done.append(q.qtype))
    assert [dns.parse(d).questions[0].qtype for _t, d, _a in sock.sent] == [dns.TYPE_AAAA, dns.TYPE_A]
    assert [t for t, _d, _a in sock.sent] == [0.0, 0.0]
    assert q6.addresses == [int(WWW6)] and q4.addresses == [WWW]
    assert done == [dns.TYPE_AAAA, dns.TYPE_A]


def test_resolve_many_tells_each_answer_as_it_comes() -> None:
    """The AAAA query is lost once: the A answer is told first, the AAAA one after its retry."""
    sock = FakeSocket({NS1: SlowQuestion(dns.TYPE_AAAA)})
    done: list[tuple[int, float]] = []
    q6, q4 = resolve_many(sock, _resolver([NS1], timeout=1.0), "www.example.test", [dns.TYPE_AAAA, dns.TYPE_A],
                          clock=sock.clock, on_done=lambda q: done.append((q.qtype, sock.now)))
    assert done == [(dns.TYPE_A, 0.0), (dns.TYPE_AAAA, 1.0)]
    assert q6.addresses == [int(WWW6)] and q4.addresses == [WWW]


def test_resolve_many_a_negative_answer_is_told_too() -> None:
    sock = FakeSocket({NS1: FakeDns()})
    done: list[Query] = []
    q6, q4 = resolve_many(sock, _resolver([NS1]), "two.example.test", [dns.TYPE_AAAA, dns.TYPE_A],
                          clock=sock.clock, on_done=done.append)
    assert q6.error is not None and q6.error.code == "nodata" and len(q4.addresses) == 2
    assert done == [q6, q4]


def test_resolve_many_send_error_cancels_every_question() -> None:
    sock = FakeSocket({NS1: FakeDns()})
    sock.fail_send = OSError(errno.ENETUNREACH, "network is unreachable")
    resolver = _resolver([NS1])
    with pytest.raises(OSError):
        resolve_many(sock, resolver, "www.example.test", [dns.TYPE_AAAA, dns.TYPE_A], clock=sock.clock)
    assert resolver.get_timer() is None


# ---------------------------------------------------------------------- servers of either family


def test_an_ipv6_server_is_asked_through_an_af_inet6_socket() -> None:
    sock = FakeSocket({NS6: FakeDns()}, family=socket.AF_INET6)
    q = resolve(sock, _resolver([NS6]), "www.example.test", clock=sock.clock)
    assert q.result() == [WWW] and q.server == NS6
    assert [addr for _t, _d, addr in sock.sent] == [("2001:db8::53", 53, 0, 0)]


def test_an_ipv4_server_is_asked_ipv4_mapped_from_the_same_af_inet6_socket() -> None:
    """The IPv6 server is silent; the IPv4 one after it answers through the one dual-stack socket."""
    sock = FakeSocket({NS6: FakeDns(mode="silent"), NS1: FakeDns()}, family=socket.AF_INET6)
    q = resolve(sock, _resolver([NS6, NS1], timeout=2.0), "www.example.test", clock=sock.clock)
    assert q.result() == [WWW] and q.server == NS1
    assert [(t, addr[0]) for t, _d, addr in sock.sent] == [(0.0, "2001:db8::53"), (2.0, "::ffff:192.0.2.1")]


def test_a_server_the_socket_cannot_reach_is_passed_over_and_counted() -> None:
    """An AF_INET socket cannot carry a question to an IPv6 server: that server is skipped as if silent and
    the IPv4 one asked when its turn comes; with no other family listed the error would propagate."""
    sock = FakeSocket({NS6: FakeDns(), NS1: FakeDns()})
    resolver = _resolver([NS6, NS1], timeout=2.0)
    q = resolve(sock, resolver, "www.example.test", clock=sock.clock)
    assert q.result() == [WWW] and q.server == NS1
    assert [(t, addr[0]) for t, _d, addr in sock.sent] == [(2.0, "192.0.2.1")]
    assert resolver.counters["dns.send_errors"] == 1
    with pytest.raises(OSError) as info:
        resolve(sock, _resolver([NS6]), "www.example.test", clock=sock.clock)
    assert info.value.errno == errno.EAFNOSUPPORT
