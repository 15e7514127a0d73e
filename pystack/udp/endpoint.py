"""UDP endpoints: the sans-I/O state behind a UDP socket, and the port table that demultiplexes to them."""

from __future__ import annotations

import errno
import random
from collections import deque
from typing import TYPE_CHECKING, Callable

from pystack.wire import udp as udp_wire

if TYPE_CHECKING:
    from pystack.stack import Stack

MAX_PAYLOAD = 65535 - 20 - udp_wire.HEADER_LEN

Address = tuple[int, int]
"""(IPv4 address as int, port)."""


class UdpEndpoint:
    """One bound UDP port. Received datagrams wait in a bounded queue; ICMP errors become ``error``."""

    __slots__ = ("stack", "local_ip", "port", "remote", "queue", "error", "on_event", "closed")

    def __init__(self, stack: Stack, local_ip: int, port: int) -> None:
        self.stack = stack
        self.local_ip = local_ip
        self.port = port
        self.remote: Address | None = None
        self.queue: deque[tuple[bytes, Address]] = deque()
        self.error = 0
        """Pending errno from an ICMP error (reported once, like SO_ERROR), 0 if none."""
        self.on_event: Callable[[UdpEndpoint], None] | None = None
        self.closed = False

    def connect(self, remote: Address) -> None:
        self.remote = remote

    def sendto(self, data: bytes | memoryview, remote: Address | None, now: float) -> int:
        """Send one datagram; returns its length or raises OSError with the kernel's errno."""
        if self.closed:
            raise OSError(errno.EBADF, "socket is closed")
        target = remote or self.remote
        if target is None:
            raise OSError(errno.EDESTADDRREQ, "destination address required")
        if len(data) > MAX_PAYLOAD:
            raise OSError(errno.EMSGSIZE, "message too long")
        src = self.local_ip or self.stack.source_for(target[0])
        if src is None:
            raise OSError(errno.ENETUNREACH, "network is unreachable")
        segment = udp_wire.build(src, target[0], self.port, target[1], data)
        # As Linux's default for UDP (IP_PMTUDISC_WANT): DF on a datagram that fits the MTU, so a router
        # with a smaller MTU says so; a larger one is fragmented here, without DF.
        fits = 20 + len(segment) <= self.stack.config.mtu
        self.stack.send_ip(target[0], udp_wire.PROTO_UDP, segment, now, src=src, dont_fragment=fits)
        return len(data)

    def deliver(self, data: bytes, source: Address) -> None:
        if self.remote is not None and source != self.remote:
            self.stack.counters.drop("udp.not_from_connected_peer")
            return
        if len(self.queue) >= self.stack.config.udp_recv_queue:
            self.stack.counters.drop("udp.receive_queue_full")
            return
        self.queue.append((data, source))
        if self.on_event:
            self.on_event(self)

    def recvfrom(self) -> tuple[bytes, Address] | None:
        """The next datagram, or None when none waits. A pending error is raised first."""
        if self.error:
            err, self.error = self.error, 0
            raise OSError(err, _strerror(err))
        return self.queue.popleft() if self.queue else None

    def report_error(self, err: int, remote: Address) -> None:
        """An ICMP error about a datagram we sent. Like Linux, only connected sockets hear of it."""
        if self.remote is None or self.remote != remote:
            return
        self.error = err
        if self.on_event:
            self.on_event(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.stack.udp.unbind(self)


def _strerror(err: int) -> str:
    import os

    return os.strerror(err)


class UdpPorts:
    """The port table: bind, ephemeral allocation, demultiplexing."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ports: dict[int, UdpEndpoint] = {}

    def bind(self, local_ip: int = 0, port: int = 0) -> UdpEndpoint:
        if port == 0:
            port = self._ephemeral()
        elif port in self.ports:
            raise OSError(errno.EADDRINUSE, "address already in use")
        if not 0 < port < 65536:
            raise OSError(errno.EINVAL, "invalid port")
        endpoint = self.ports[port] = UdpEndpoint(self.stack, local_ip, port)
        return endpoint

    def _ephemeral(self) -> int:
        cfg = self.stack.config
        span = cfg.udp_ephemeral_high - cfg.udp_ephemeral_low + 1
        start = random.randrange(span)
        for i in range(span):
            port = cfg.udp_ephemeral_low + (start + i) % span
            if port not in self.ports:
                return port
        raise OSError(errno.EADDRINUSE, "no free ephemeral port")

    def unbind(self, endpoint: UdpEndpoint) -> None:
        if self.ports.get(endpoint.port) is endpoint:
            del self.ports[endpoint.port]

    def lookup(self, dst_ip: int, port: int) -> UdpEndpoint | None:
        endpoint = self.ports.get(port)
        if endpoint is not None and endpoint.local_ip and endpoint.local_ip != dst_ip:
            return None
        return endpoint
