"""Drive the sans-I/O resolver over one BSD-style UDP socket, blocking until the answer (for the CLI).

Any object with ``getsockname``, ``sendto``, ``recvfrom`` and ``settimeout`` in the shape of Python's
``socket`` module works: pystack's own UDP socket, or (in tests) a fake.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any, Protocol

from pystack.dns.resolver import DnsDatagram, Query, Resolver
from pystack.wire import dns as wire

RECV_SIZE = 65535


class DatagramSocket(Protocol):
    def getsockname(self) -> tuple[str, int]: ...
    def sendto(self, data: bytes, address: tuple[str, int]) -> int: ...
    def recvfrom(self, bufsize: int) -> tuple[bytes, tuple[str, int]]: ...
    def settimeout(self, value: float | None) -> None: ...


def resolve(sock: DatagramSocket | Any, resolver: Resolver, name: str, qtype: int = wire.TYPE_A,
            clock: Callable[[], float] = time.monotonic) -> Query:
    """Resolve ``name`` through ``sock`` (already bound: its port is the query's source port).

    Returns the finished :class:`Query`; read it with ``query.result()``. An ``OSError`` from
    ``sendto`` (no route, no address yet) cancels the query and propagates.
    """
    port = sock.getsockname()[1]
    q, out = resolver.query(name, clock(), qtype, src_port=port)
    _send(sock, resolver, q, out)
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
    return q


def _send(sock: Any, resolver: Resolver, q: Query, out: list[DnsDatagram]) -> None:
    for dgram in out:
        try:
            sock.sendto(dgram.payload, (str(ipaddress.IPv4Address(dgram.server)), dgram.port))
        except OSError:
            resolver.cancel(q)
            raise
