"""The blocking driver over a socket-shaped fake: answers, retries on timeouts, stray datagrams, errors."""

from __future__ import annotations

import errno
import ipaddress
import random
import socket

import pytest

from pystack.dns import DnsConfig, Resolver
from pystack.dns.blocking import resolve
from pystack.wire import dns

from .fake_dns import NS1, NS2, WWW, FakeDns


class FakeSocket:
    """A bound UDP socket on a fake network with a fake clock: recvfrom waits by advancing the clock."""

    def __init__(self, servers: dict[int, FakeDns], port: int = 40000) -> None:
        self.servers = servers
        self.port = port
        self.now = 0.0
        self.timeout: float | None = None
        self.inbox: list[tuple[bytes, tuple[str, int]]] = []
        self.sent: list[tuple[float, bytes, tuple[str, int]]] = []
        self.fail_send: OSError | None = None

    def clock(self) -> float:
        return self.now

    def getsockname(self) -> tuple[str, int]:
        return ("0.0.0.0", self.port)

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        if self.fail_send is not None:
            raise self.fail_send
        self.sent.append((self.now, data, address))
        server = self.servers.get(int(ipaddress.IPv4Address(address[0])))
        reply = server.answer(data) if server is not None else None
        if reply is not None:
            self.inbox.append((reply, (address[0], address[1])))
        return len(data)

    def recvfrom(self, bufsize: int) -> tuple[bytes, tuple[str, int]]:
        if self.inbox:
            return self.inbox.pop(0)
        assert self.timeout is not None and self.timeout > 0  # the driver never blocks for ever
        self.now += self.timeout
        raise socket.timeout("timed out")


def _resolver(servers: list[int], **cfg) -> Resolver:
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
