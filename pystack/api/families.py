"""AF_INET and AF_INET6 for pystack's sockets: their addresses read into what the layers use, and back.

Each IP version has its own layers (``stack.tcp`` and ``stack.udp`` for IPv4, ``stack.tcp6`` and
``stack.udp6`` for IPv6), which name addresses by ints of their own width. A socket address becomes a
:class:`Where`: the version whose layers carry it and the address in it. An AF_INET6 socket reaches IPv4
as Linux's does, through IPv4-mapped addresses (``::ffff:192.0.2.1``, RFC 4291 section 2.5.5.2, RFC 3493
section 3.7): they are IPv4 to the layers, and IPv4 peers are shown to the socket mapped. An AF_INET6
socket on the wildcard ``::`` is in both versions' tables (on one port) unless IPV6_V6ONLY is set, as
Linux's default ``net.ipv6.bindv6only = 0`` has it; :func:`on_one_port` makes such a pair, and
:class:`Listening` serves a dual-stack listening socket's two listeners as one.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket as _socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from pystack.tcp.state import State

if TYPE_CHECKING:
    from pystack.stack import Stack
    from pystack.tcp.connection import Connection
    from pystack.tcp.layer import TcpLayer
    from pystack.tcp.listener import Listener
    from pystack.udp.layer import UdpLayer

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
V4, V6 = 4, 6
BOTH = (V4, V6)
"""The versions of a dual-stack wildcard AF_INET6 socket."""
_MAPPED = 0xFFFF << 32
"""::ffff:0:0/96, IPv4-mapped IPv6 addresses (RFC 4291 section 2.5.5.2)."""
ONE_PORT_TRIES = 32
"""Ephemeral ports tried for a dual-stack socket before EADDRINUSE (each must be free in both versions)."""

T = TypeVar("T")
SockAddr = tuple[str, int] | tuple[str, int, int, int]
"""What getsockname and friends return: (host, port) for AF_INET, (host, port, flowinfo, scope_id) for AF_INET6."""


class Where(NamedTuple):
    """An address as the layers see it."""

    version: int
    """4 or 6: the layers that carry it."""
    ip: int
    """The address in that version (0: the wildcard)."""


def read(family: int, host: str) -> Where:
    """The literal ``host`` of a ``family`` socket address (names are resolved before this, by
    :mod:`pystack.socket`). OSError EINVAL for anything else."""
    if family == AF_INET:
        if host in ("", "0.0.0.0"):
            return Where(V4, 0)
        if host == "<broadcast>":
            return Where(V4, 0xFFFFFFFF)
        try:
            return Where(V4, int(ipaddress.IPv4Address(host)))
        except ValueError:
            raise OSError(errno.EINVAL, f"not an IPv4 address: {host!r}") from None
    if host == "":
        return Where(V6, 0)
    try:
        address = ipaddress.IPv6Address(host)  # a %scope is taken and ignored: pystack has one interface
    except ValueError:
        raise OSError(errno.EINVAL, f"not an IPv6 address: {host!r}") from None
    mapped = address.ipv4_mapped
    if mapped is not None:
        return Where(V4, int(mapped))
    return Where(V6, int(address))


def write(family: int, version: int, ip: int, port: int) -> SockAddr:
    """The socket address of ``ip`` (of ``version``) for a ``family`` socket, as CPython's makesockaddr
    gives it: IPv4 on an AF_INET6 socket is mapped, written as inet_ntop does (``::ffff:192.0.2.1``)."""
    if family == AF_INET:
        return (str(ipaddress.IPv4Address(ip)), port)
    if version == V4:
        return (f"::ffff:{ipaddress.IPv4Address(ip)}", port, 0, 0)
    return (str(ipaddress.IPv6Address(ip)), port, 0, 0)


def text(version: int, ip: int) -> str:
    """``ip`` as ``ss`` writes it before its port: ``192.0.2.2`` or ``[2001:db8::2]``."""
    return str(ipaddress.IPv4Address(ip)) if version == V4 else f"[{ipaddress.IPv6Address(ip)}]"


def oserror(err: int) -> OSError:
    """The exception the kernel's errno becomes in Python (ConnectionResetError for ECONNRESET ...)."""
    return OSError(err, os.strerror(err))


def tcp_layer(stack: Stack, version: int) -> TcpLayer:
    return stack.tcp if version == V4 else stack.tcp6


def udp_layer(stack: Stack, version: int) -> UdpLayer:
    return stack.udp if version == V4 else stack.udp6


def source_for(stack: Stack, where: Where) -> int | None:
    """The address to send to ``where`` from, or None when the stack has none."""
    return stack.source_for(where.ip) if where.version == V4 else stack.source_for6(where.ip)


def reachable(stack: Stack, where: Where) -> bool:
    """Whether the stack could send to ``where`` now: an address to send from and a route (what RFC 6724
    rule 1 calls a usable destination)."""
    if where.version == V4:
        address = stack.address
        return address is not None and (not (where.ip ^ address) & stack.netmask or stack.gateway is not None)
    if stack.source_for6(where.ip) is None:
        return False
    try:
        stack.nd.route(where.ip)
    except OSError:
        return False
    return True


def is_ours(stack: Stack, where: Where) -> bool:
    """bind() takes the wildcard or one of the stack's usable addresses (not a tentative one, as Linux)."""
    if not where.ip:
        return True
    if where.version == V4:
        return where.ip == stack.address
    return stack.nd.addresses.is_assigned(where.ip)


def versions(family: int, where: Where, v6only: bool) -> tuple[int, ...]:
    """The versions a socket bound to ``where`` is in: both for the wildcard of a dual-stack AF_INET6 one."""
    if family == AF_INET6 and where == Where(V6, 0) and not v6only:
        return BOTH
    return (where.version,)


def on_one_port(port: int, opens: Sequence[Callable[[int], T]], undos: Sequence[Callable[[T], None]],
                port_of: Callable[[T], int]) -> list[T]:
    """Call each of ``opens`` (one per version) with one port: ``port``, or for 0 the ephemeral port the
    first picks, tried again (a bounded number of times) while a later one finds it taken. On failure
    what was made is undone (``undos``, one per open) and the OSError raised."""
    for _ in range(ONE_PORT_TRIES if not port and len(opens) > 1 else 1):
        made: list[T] = []
        try:
            for open_ in opens:
                made.append(open_(port_of(made[0]) if made else port))
        except OSError as exc:
            for thing, undo in zip(made, undos):
                undo(thing)
            if port or exc.errno != errno.EADDRINUSE or not made:
                raise
            continue
        return made
    raise oserror(errno.EADDRINUSE)


class Listening:
    """A listening socket's listeners: one, or one per version for a dual-stack socket on ``::``; they
    open and close together and :meth:`accept` takes from them in turn, so neither family waits behind
    the other."""

    __slots__ = ("listeners",)

    def __init__(self, listeners: list[tuple[int, Listener]]) -> None:
        self.listeners = listeners
        """(version, listener) pairs."""

    @property
    def local_port(self) -> int:
        return self.listeners[0][1].local_port

    @property
    def state(self) -> State:
        return self.listeners[0][1].state

    @property
    def readable(self) -> bool:
        return any(listener.readable for _v, listener in self.listeners)

    @property
    def pending(self) -> int:
        return sum(listener.pending for _v, listener in self.listeners)

    @property
    def backlog(self) -> int:
        return self.listeners[0][1].backlog

    def set_backlog(self, backlog: int) -> None:
        for _v, listener in self.listeners:
            listener.backlog = backlog

    def set_on_event(self, on_event: Callable[[], None] | None) -> None:
        for _v, listener in self.listeners:
            listener.on_event = on_event

    def accept(self) -> tuple[int, Connection] | None:
        """(version, connection) of a connection that completed its handshake, or None."""
        for i, (version, listener) in enumerate(self.listeners):
            conn = listener.accept()
            if conn is not None:
                if len(self.listeners) > 1:  # the other family goes first next time
                    self.listeners = self.listeners[i + 1:] + self.listeners[:i + 1]
                return version, conn
        return None

    def close(self, now: float) -> None:
        for _v, listener in self.listeners:
            listener.close(now)
