"""Drive the sans-I/O resolver over one BSD-style UDP socket, blocking until the answer (for the CLI).

Any object with ``getsockname``, ``sendto``, ``recvfrom`` and ``settimeout`` in the shape of Python's
``socket`` module works: pystack's own UDP socket, or (in tests) a fake. When an answer comes back
truncated and the caller gave a way to open TCP connections, the query is asked again over TCP
(RFC 7766 section 5) with the 2-byte length framing of RFC 1035 section 4.2.2.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any, Protocol

from pystack.dns import tcp as dns_tcp
from pystack.dns.resolver import DnsDatagram, Query, Resolver
from pystack.wire import WireError
from pystack.wire import dns as wire

RECV_SIZE = 65535


TCP_TIMEOUT = 10.0
"""Seconds for the whole TCP retry: connect, send, and read the answer."""


class StreamSocket(Protocol):
    def sendall(self, data: bytes) -> None: ...
    def recv(self, bufsize: int) -> bytes: ...
    def settimeout(self, value: float | None) -> None: ...
    def close(self) -> None: ...


Connect = Callable[[tuple[str, int], float], StreamSocket]
"""Open a TCP connection to (address, port) within a timeout, or raise OSError."""


class DatagramSocket(Protocol):
    def getsockname(self) -> tuple[str, int]: ...
    def sendto(self, data: bytes, address: tuple[str, int]) -> int: ...
    def recvfrom(self, bufsize: int) -> tuple[bytes, tuple[str, int]]: ...
    def settimeout(self, value: float | None) -> None: ...


def resolve(sock: DatagramSocket | Any, resolver: Resolver, name: str, qtype: int = wire.TYPE_A,
            clock: Callable[[], float] = time.monotonic, connect: Connect | None = None,
            tcp_timeout: float = TCP_TIMEOUT) -> Query:
    """Resolve ``name`` through ``sock`` (already bound: its port is the query's source port).

    Returns the finished :class:`Query`; read it with ``query.result()``. An ``OSError`` from
    ``sendto`` (no route, no address yet) cancels the query and propagates. With ``connect``, a
    truncated answer is asked again over TCP; without, the query ends as ``needs_tcp``.
    """
    port = sock.getsockname()[1]
    q, out = resolver.query(name, clock(), qtype, src_port=port)
    _send(sock, resolver, q, out)
    while True:
        _drive_udp(sock, resolver, q, port, clock)
        if not (q.needs_tcp and connect is not None):
            return q
        out = _over_tcp(connect, resolver, q, clock, tcp_timeout)
        _send(sock, resolver, q, out)
        if q.done:
            return q


def _over_tcp(connect: Connect, resolver: Resolver, q: Query, clock: Callable[[], float],
              timeout: float) -> list[DnsDatagram]:
    """One query and its answer over a fresh TCP connection; every failure ends the query with a reason."""
    server, message = resolver.tcp_query(q, clock())
    address = (str(ipaddress.IPv4Address(server)), wire.PORT)
    deadline = clock() + timeout
    try:
        stream = connect(address, timeout)
    except OSError as exc:
        resolver.tcp_failed(q, f"connect: {exc.strerror or exc}", clock())
        return []
    reader = dns_tcp.StreamReader()
    try:
        stream.sendall(dns_tcp.frame(message))
        while True:
            left = deadline - clock()
            if left <= 0:
                resolver.tcp_failed(q, f"no answer within {timeout:g} s", clock())
                return []
            stream.settimeout(left)
            data = stream.recv(RECV_SIZE)
            if not data:
                resolver.tcp_failed(q, "the server closed the connection before answering", clock())
                return []
            messages = reader.feed(data)
            if messages:
                return resolver.receive_tcp(q, messages[0], clock())
    except (TimeoutError, OSError) as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else str(exc.strerror or exc)
        resolver.tcp_failed(q, reason, clock())
        return []
    except WireError as exc:
        resolver.counters.drop(exc.reason)
        resolver.tcp_failed(q, "malformed stream", clock())
        return []
    finally:
        stream.close()


def _drive_udp(sock: Any, resolver: Resolver, q: Query, port: int, clock: Callable[[], float]) -> None:
    while not q.done:
        deadline = resolver.get_timer()
        now = clock()
        if deadline is None:  # cannot happen while q is pending; stay safe rather than block for ever
            resolver.cancel(q)
            break
        if deadline <= now:
            _send(sock, resolver, q, resolver.handle_timer(now))
            continue
        sock.settimeout(max(deadline - now, 0.001))
        try:
            data, (host, sport) = sock.recvfrom(RECV_SIZE)
        except (TimeoutError, BlockingIOError):
            continue
        try:
            server = int(ipaddress.IPv4Address(host))
        except ValueError:
            continue
        _send(sock, resolver, q, resolver.receive(server, sport, data, clock(), dst_port=port))


def _send(sock: Any, resolver: Resolver, q: Query, out: list[DnsDatagram]) -> None:
    for dgram in out:
        try:
            sock.sendto(dgram.payload, (str(ipaddress.IPv4Address(dgram.server)), dgram.port))
        except OSError:
            resolver.cancel(q)
            raise
