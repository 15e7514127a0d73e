"""DNS over TCP when a UDP answer is truncated (RFC 7766 section 5, RFC 1035 section 4.2.2): the framing,
the resolver's TCP retry, and the blocking driver over socket-shaped fakes with a fake clock."""

from __future__ import annotations

import errno
import random
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.api.families import Where
from pystack.counters import Counters
from pystack.dns import DnsConfig, Resolver, Status
from pystack.dns import tcp as dns_tcp
from pystack.dns.blocking import resolve, resolve_many
from pystack.wire import WireError
from pystack.wire import dns

NS = Where(4, 0xC0000201)  # 192.0.2.1
NAME = "many.example.test"
ADDRESSES = [0xC6336464 + i for i in range(40)]


def _answer(query: bytes, *, truncate: bool, records: list[int] = ADDRESSES, name: str | None = None,
            ident: int | None = None, extra_flags: int = 0) -> bytes:
    q = dns.parse(query)
    question = q.questions[0] if name is None else dns.Question(name)
    flags = dns.FLAG_QR | dns.FLAG_RD | dns.FLAG_RA | extra_flags
    answers = [dns.Record(question.name, dns.TYPE_A, dns.CLASS_IN, 300, a) for a in records]
    if truncate:
        flags |= dns.FLAG_TC
        answers = answers[:3]
    return dns.build(dns.DnsMessage(q.id if ident is None else ident, flags, [question], answers))


# ---------------------------------------------------------------------- framing


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(min_value=12, max_value=600), min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8))
def test_stream_reader_reassembles_messages_from_any_pieces(sizes: list[int], cuts: list[int]) -> None:
    messages = [bytes([i]) * n for i, n in enumerate(sizes)]
    stream = b"".join(dns_tcp.frame(m) for m in messages)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = dns_tcp.StreamReader()
    got: list[bytes] = []
    for a, b in zip(points, points[1:]):
        got += reader.feed(stream[a:b])
    assert got == messages and reader.partial == 0


def test_stream_reader_refuses_a_length_too_short_for_a_header() -> None:
    with pytest.raises(WireError):
        dns_tcp.StreamReader().feed(b"\x00\x05hello")


def test_frame_prefixes_the_length() -> None:
    assert dns_tcp.frame(b"x" * 300)[:2] == b"\x01\x2c"
    with pytest.raises(ValueError):
        dns_tcp.frame(b"x" * 70000)


# ---------------------------------------------------------------------- the resolver


def _truncated_query() -> tuple[Resolver, object]:
    resolver = Resolver([NS], random.Random(3), DnsConfig(), Counters())
    q, out = resolver.query(NAME, 0.0, src_port=40000)
    assert resolver.receive(NS, 53, _answer(out[0].payload, truncate=True), 0.1, dst_port=40000) == []
    assert q.needs_tcp and q.status is Status.NEEDS_TCP
    return resolver, q


def test_tcp_retry_gets_the_whole_answer_with_a_fresh_id() -> None:
    resolver, q = _truncated_query()
    udp_id = int.from_bytes(q.wire_query[:2], "big")
    server, message = resolver.tcp_query(q, 0.2)
    assert server == NS and not q.done
    assert int.from_bytes(message[:2], "big") != udp_id  # a fresh ID (seeded rng: deterministic)
    assert dns.parse(message).questions[0].name == NAME
    assert resolver.receive_tcp(q, _answer(message, truncate=False), 0.3) == []
    assert q.status is Status.DONE and q.addresses == ADDRESSES
    assert resolver.counters["dns.tcp_queries_sent"] == 1 and resolver.counters["dns.tcp_answers"] == 1
    # The answer is cached like any other.
    again, out = resolver.query(NAME, 1.0)
    assert again.done and again.from_cache and out == []


@pytest.mark.parametrize("tamper, reason", [
    (lambda m: _answer(m, truncate=False, ident=(int.from_bytes(m[:2], "big") + 1) & 0xFFFF), "wrong ID"),
    (lambda m: _answer(m, truncate=False, name="other.example.test"), "another question"),
    (lambda m: b"\x00" * 5, "malformed"),
    (lambda m: _answer(m, truncate=True), "even over TCP"),
])
def test_bad_tcp_answers_end_the_query_with_a_reason(tamper, reason: str) -> None:
    resolver, q = _truncated_query()
    _server, message = resolver.tcp_query(q, 0.2)
    resolver.receive_tcp(q, tamper(message), 0.3)
    assert q.status is Status.FAILED and q.error is not None
    assert reason in str(q.error) and q.error.code == "truncated"


def test_tcp_query_is_only_for_truncated_answers() -> None:
    resolver = Resolver([NS], random.Random(3), DnsConfig(), Counters())
    q, _ = resolver.query(NAME, 0.0)
    with pytest.raises(ValueError):
        resolver.tcp_query(q, 0.0)


# ---------------------------------------------------------------------- the blocking driver


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeUdp:
    """Answers every query at once, truncated."""

    family = socket.AF_INET

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.inbox: list[tuple[bytes, tuple[str, int]]] = []

    def getsockname(self) -> tuple[str, int]:
        return ("0.0.0.0", 40000)

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        self.inbox.append((_answer(data, truncate=True), address))
        return len(data)

    def recvfrom(self, bufsize: int) -> tuple[bytes, tuple[str, int]]:
        if not self.inbox:
            self.clock.now += self.timeout or 0
            raise TimeoutError("timed out")
        return self.inbox.pop(0)


class FakeTcp:
    """A stream that answers the framed query, in pieces of ``piece`` bytes (or misbehaves)."""

    def __init__(self, clock: Clock, mode: str = "ok", piece: int = 7) -> None:
        self.clock = clock
        self.mode = mode
        self.piece = piece
        self.out = b""
        self.closed = False
        self.timeout: float | None = None

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def sendall(self, data: bytes) -> None:
        length = int.from_bytes(data[:2], "big")
        query = data[2:2 + length]
        if self.mode == "ok":
            self.out = dns_tcp.frame(_answer(query, truncate=False))
        elif self.mode == "cut":
            self.out = dns_tcp.frame(_answer(query, truncate=False))[:20]

    def recv(self, bufsize: int) -> bytes:
        if self.mode == "silent":
            self.clock.now += self.timeout or 0
            raise TimeoutError("timed out")
        if self.mode == "reset":
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        data, self.out = self.out[:self.piece], self.out[self.piece:]
        return data

    def close(self) -> None:
        self.closed = True


def _run(mode: str, connect_error: OSError | None = None):
    clock = Clock()
    resolver = Resolver([NS], random.Random(9), DnsConfig(), Counters())
    streams: list[FakeTcp] = []
    calls: list[tuple[Where, float]] = []

    def connect(server: Where, timeout: float) -> FakeTcp:
        calls.append((server, timeout))
        if connect_error is not None:
            raise connect_error
        streams.append(FakeTcp(clock, mode))
        return streams[-1]

    q = resolve(FakeUdp(clock), resolver, NAME, clock=clock, connect=connect, tcp_timeout=5.0)
    return q, calls, streams


def test_blocking_resolve_retries_over_tcp() -> None:
    q, calls, streams = _run("ok")
    assert q.status is Status.DONE and q.addresses == ADDRESSES
    assert calls == [(NS, 5.0)]
    assert streams[0].closed


@pytest.mark.parametrize("mode, reason", [
    ("silent", "no answer within 5 s"),
    ("cut", "closed the connection before answering"),
    ("reset", "reset"),
])
def test_blocking_resolve_tcp_failures_are_errors_not_hangs(mode: str, reason: str) -> None:
    q, _calls, streams = _run(mode)
    assert q.status is Status.FAILED and reason in str(q.error), q.error
    assert streams[0].closed


def test_blocking_resolve_connect_refused() -> None:
    q, _calls, streams = _run("ok", ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    assert q.status is Status.FAILED and "connect: Connection refused" in str(q.error)
    assert streams == []


def test_without_a_tcp_connector_the_query_ends_as_needs_tcp() -> None:
    clock = Clock()
    resolver = Resolver([NS], random.Random(9), DnsConfig(), Counters())
    q = resolve(FakeUdp(clock), resolver, NAME, clock=clock)
    assert q.needs_tcp


def test_resolve_many_retries_each_truncated_answer_over_its_own_connection() -> None:
    clock = Clock()
    resolver = Resolver([NS], random.Random(9), DnsConfig(), Counters())
    streams: list[FakeTcp] = []

    def connect(server: Where, timeout: float) -> FakeTcp:
        streams.append(FakeTcp(clock))
        return streams[-1]

    told: list[tuple[int, Status]] = []
    q_a, q_txt = resolve_many(FakeUdp(clock), resolver, NAME, [dns.TYPE_A, dns.TYPE_TXT], clock=clock,
                              connect=connect, on_done=lambda q: told.append((q.qtype, q.status)))
    assert q_a.status is Status.DONE and q_a.addresses == ADDRESSES
    assert q_txt.status is Status.FAILED and q_txt.error is not None and q_txt.error.code == "nodata"
    assert len(streams) == 2 and all(s.closed for s in streams)
    # Told once each, after the TCP answer (never as "needs TCP").
    assert told == [(dns.TYPE_A, Status.DONE), (dns.TYPE_TXT, Status.FAILED)]
