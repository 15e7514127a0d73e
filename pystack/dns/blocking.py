"""Drive the sans-I/O resolver over one BSD-style UDP socket, blocking until the answer (for the CLI).

Any object with ``family``, ``getsockname``, ``sendto``, ``recvfrom`` and ``settimeout`` in the shape of
Python's ``socket`` module works: pystack's own UDP socket, or (in tests) a fake. An AF_INET6 socket on
``::`` carries questions to IPv6 servers and, IPv4-mapped, to IPv4 ones; an AF_INET one only to IPv4
servers (:func:`socket_family` says which a server list needs). A socket with IP_RECVERR (and
IPV6_RECVERR) set tells which server answered ICMP port unreachable; that one's turn ends at once, as
glibc's does (:meth:`Resolver.refused`). When an answer comes back
truncated and the caller gave a way to open TCP connections, the query is asked again over TCP
(RFC 7766 section 5) with the 2-byte length framing of RFC 1035 section 4.2.2.
"""

from __future__ import annotations

import errno
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pystack.api import families
from pystack.api.families import AF_INET, AF_INET6, V6, Where
from pystack.api.socket import IP_RECVERR, IPPROTO_IP, IPPROTO_IPV6, IPV6_RECVERR, MSG_ERRQUEUE
from pystack.dns import servers as nameservers
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


Connect = Callable[[Where, float], StreamSocket]
"""Open a TCP connection to a server's port 53 within a timeout, or raise OSError."""


class DatagramSocket(Protocol):
    family: int

    def getsockname(self) -> tuple[Any, ...]: ...
    def sendto(self, data: bytes, address: tuple[Any, ...]) -> int: ...
    def recvfrom(self, bufsize: int) -> tuple[bytes, tuple[Any, ...]]: ...
    def settimeout(self, value: float | None) -> None: ...


def resolve(sock: DatagramSocket | Any, resolver: Resolver, name: str, qtype: int = wire.TYPE_A,
            clock: Callable[[], float] = time.monotonic, connect: Connect | None = None,
            tcp_timeout: float = TCP_TIMEOUT) -> Query:
    """Resolve ``name`` through ``sock`` (already bound: its port is the query's source port).

    Returns the finished :class:`Query`; read it with ``query.result()``. An ``OSError`` from
    ``sendto`` (no route, no address yet) cancels the query and propagates. With ``connect``, a
    truncated answer is asked again over TCP; without, the query ends as ``needs_tcp``.
    """
    return resolve_many(sock, resolver, name, [qtype], clock, connect, tcp_timeout)[0]


def socket_family(servers: Sequence[Where]) -> int:
    """The socket family that reaches every one of ``servers``: AF_INET6 (dual-stack, on ``::``) when one
    of them is IPv6, else AF_INET."""
    return AF_INET6 if any(s.version == V6 for s in servers) else AF_INET


def resolve_many(sock: DatagramSocket | Any, resolver: Resolver, name: str, qtypes: Sequence[int],
                 clock: Callable[[], float] = time.monotonic, connect: Connect | None = None,
                 tcp_timeout: float = TCP_TIMEOUT, on_done: Callable[[Query], None] | None = None) -> list[Query]:
    """Ask every question of ``qtypes`` about ``name`` at once, in that order, through ``sock``, and
    drive them together until all are finished (RFC 8305 section 3: AAAA, then A right after it).

    ``on_done`` hears each query as it finishes, in the order the answers come (a truncated one after
    its TCP retry), so a caller on another thread can act on the first answer while the other is still
    out. An ``OSError`` from ``sendto`` cancels them all and propagates.
    """
    port = sock.getsockname()[1]
    queries: list[Query] = []
    told: set[int] = set()

    def tell() -> None:
        for q in queries:
            final = q.done and (not q.needs_tcp or connect is None)
            if final and id(q) not in told:
                told.add(id(q))
                if on_done is not None:
                    on_done(q)

    for qtype in qtypes:
        q, out = resolver.query(name, clock(), qtype, src_port=port)
        queries.append(q)
        _send(sock, resolver, queries, out)
    tell()
    while True:
        _drive_udp(sock, resolver, queries, port, clock, tell)
        truncated = [q for q in queries if q.needs_tcp]
        if not truncated or connect is None:
            tell()
            return queries
        for q in truncated:
            _send(sock, resolver, queries, _over_tcp(connect, resolver, q, clock, tcp_timeout))
        tell()


def _over_tcp(connect: Connect, resolver: Resolver, q: Query, clock: Callable[[], float],
              timeout: float) -> list[DnsDatagram]:
    """One query and its answer over a fresh TCP connection; every failure ends the query with a reason."""
    server, message = resolver.tcp_query(q, clock())
    deadline = clock() + timeout
    try:
        stream = connect(server, timeout)
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


def _drive_udp(sock: Any, resolver: Resolver, queries: list[Query], port: int, clock: Callable[[], float],
               tell: Callable[[], None]) -> None:
    while not all(q.done for q in queries):
        deadline = resolver.get_timer()
        now = clock()
        if deadline is None:  # cannot happen while a query is pending; stay safe rather than block for ever
            for q in queries:
                resolver.cancel(q)
            break
        if deadline <= now:
            _send(sock, resolver, queries, resolver.handle_timer(now))
            tell()
            continue
        sock.settimeout(max(deadline - now, 0.001))
        try:
            data, address = sock.recvfrom(RECV_SIZE)  # (host, port), and flow and scope for AF_INET6
        except (TimeoutError, BlockingIOError):
            continue
        except OSError:  # an ICMP error, heard with IP_RECVERR: what it is about waits in the error queue
            _send(sock, resolver, queries, _errors_heard(sock, resolver, clock()))
            tell()
            continue
        sport = address[1]
        try:
            server = families.read(sock.family, address[0])
        except OSError:
            continue
        _send(sock, resolver, queries, resolver.receive(server, sport, data, clock(), dst_port=port))
        tell()


_RECVERR = {(IPPROTO_IP, IP_RECVERR), (IPPROTO_IPV6, IPV6_RECVERR)}
_ERRQUEUE_READS = 64
"""At most this many errors read at once (the socket's error queue is bounded too)."""


def _errors_heard(sock: Any, resolver: Resolver, now: float) -> list[DnsDatagram]:
    """Read the socket's error queue: each port unreachable from a server's port 53 passes that server
    over (other errors, such as a router's host unreachable, leave the question to its timeout)."""
    out: list[DnsDatagram] = []
    sock.settimeout(0.0)  # the queue is read without waiting (a kernel socket with a timeout would wait)
    for _ in range(_ERRQUEUE_READS):
        try:
            _payload, ancdata, _flags, address = sock.recvmsg(0, 256, MSG_ERRQUEUE)
        except BlockingIOError:
            break
        refused = any((level, kind) in _RECVERR and len(data) >= 4
                      and int.from_bytes(data[:4], sys.byteorder) == errno.ECONNREFUSED
                      for level, kind, data in ancdata)
        if not refused or address is None or address[1] != wire.PORT:
            continue
        try:
            server = families.read(sock.family, address[0])
        except OSError:
            continue
        out += resolver.refused(server, now)
    return out


def _send(sock: Any, resolver: Resolver, queries: list[Query], out: list[DnsDatagram]) -> None:
    """Send ``out``. A server the socket cannot send to (no address or route in its family yet) is
    passed over as if silent, so the next one is asked when its time is up, as glibc does when a
    nameserver's family is unusable; when no other family is listed the queries are cancelled and the
    OSError raised."""
    for dgram in out:
        try:
            if dgram.server.version == V6 and sock.family != AF_INET6:
                raise OSError(errno.EAFNOSUPPORT, f"an AF_INET socket cannot reach {nameservers.text(dgram.server)}")
            sock.sendto(dgram.payload, families.write(sock.family, dgram.server.version, dgram.server.ip,
                                                      dgram.port))
        except OSError:
            if any(s.version != dgram.server.version for s in resolver.servers):
                resolver.counters["dns.send_errors"] += 1
                continue
            for q in queries:
                resolver.cancel(q)
            raise
