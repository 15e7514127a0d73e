"""A UDP endpoint: the sans-I/O state behind one bound UDP socket."""

from __future__ import annotations

import errno
import os
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

from pystack.counters import Counters
from pystack.wire import ipv4 as ipv4_wire
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire import udp as udp_wire

MAX_PAYLOAD = ipv4_wire.MAX_DATAGRAM - ipv4_wire.MIN_HEADER_LEN - udp_wire.HEADER_LEN
"""The largest UDP payload over IPv4, 65,507 bytes: IPv4's Total Length counts its own header (RFC 791)."""
MAX_PAYLOAD6 = ipv6_wire.MAX_PAYLOAD - udp_wire.HEADER_LEN
"""The largest UDP payload over IPv6, 65,527 bytes: its Payload Length counts what follows the fixed header
only (RFC 8200 3; pystack sends no extension headers with UDP, and no jumbograms, RFC 2675)."""

Address = tuple[int, int]
"""(IPv4 address as int, port)."""


@dataclass(frozen=True, slots=True)
class IcmpReport:
    """One ICMP error in an endpoint's error queue (IP_RECVERR): what recvmsg(MSG_ERRQUEUE) reads."""

    err: int
    remote: Address
    """Where the datagram it is about was sent."""
    payload: bytes
    """As much of that datagram's payload as the ICMP message quoted."""
    icmp_type: int
    icmp_code: int
    """In ICMP's words, which is how the transports are told errors of either family."""
    info: int = 0
    """The next-hop MTU of a fragmentation needed (Packet Too Big), else 0."""


class Ports(Protocol):
    """What an endpoint needs of its UDP layer (pystack.udp.layer.UdpLayer): a way out, its bounds, and
    leaving the port table."""

    counters: Counters
    max_payload: int
    """The largest datagram of the layer's family (MAX_PAYLOAD or MAX_PAYLOAD6)."""

    @property
    def queue_limit(self) -> int: ...
    def send(self, local_ip: int, port: int, data: bytes | memoryview, target: Address, now: float) -> None: ...
    def unbind(self, endpoint: UdpEndpoint) -> None: ...


class UdpEndpoint:
    """One bound UDP port. Received datagrams wait in a bounded queue; ICMP errors become ``error``."""

    __slots__ = ("_ports", "local_ip", "port", "remote", "queue", "error", "on_event", "closed", "event_time",
                 "recverr", "errqueue")

    def __init__(self, ports: Ports, local_ip: int, port: int) -> None:
        self._ports = ports
        self.local_ip = local_ip
        self.port = port
        self.remote: Address | None = None
        self.queue: deque[tuple[bytes, Address]] = deque()
        self.error = 0
        """Pending errno from an ICMP error (reported once, like SO_ERROR), 0 if none."""
        self.recverr = False
        """IP_RECVERR (IPV6_RECVERR): hear every ICMP error, not only the hard ones of a connected socket,
        and keep each in ``errqueue``."""
        self.errqueue: deque[IcmpReport] = deque()
        """The errors heard with ``recverr``, oldest first (bounded as the datagram queue)."""
        self.on_event: Callable[[UdpEndpoint], None] | None = None
        self.closed = False
        self.event_time = 0.0
        """The time of the last datagram or error on_event was told of, for the calls the callback makes
        (sans-I/O: the time comes as a value, as Connection.event_time)."""

    def connect(self, remote: Address) -> None:
        self.remote = remote

    def sendto(self, data: bytes | memoryview, remote: Address | None, now: float) -> int:
        """Send one datagram; returns its length or raises OSError with the kernel's errno."""
        if self.closed:
            raise OSError(errno.EBADF, "socket is closed")
        target = remote or self.remote
        if target is None:
            raise OSError(errno.EDESTADDRREQ, "destination address required")
        if len(data) > self._ports.max_payload:
            raise OSError(errno.EMSGSIZE, "message too long")
        self._ports.send(self.local_ip, self.port, data, target, now)
        return len(data)

    def deliver(self, data: bytes, source: Address, now: float) -> None:
        if self.remote is not None and source != self.remote:
            self._ports.counters.drop("udp.not_from_connected_peer")
            return
        if len(self.queue) >= self._ports.queue_limit:
            self._ports.counters.drop("udp.receive_queue_full")
            return
        self.queue.append((data, source))
        self.event_time = now
        if self.on_event:
            self.on_event(self)

    def recvfrom(self) -> tuple[bytes, Address] | None:
        """The next datagram, or None when none waits. A pending error is raised first."""
        if self.error:
            err, self.error = self.error, 0
            raise OSError(err, os.strerror(err))
        return self.queue.popleft() if self.queue else None

    def report_error(self, report: IcmpReport, now: float, hard: bool = True) -> None:
        """An ICMP error about a datagram we sent, at ``now``; ``hard`` as
        pystack.ip.icmp_errno.icmp_fatal says. As Linux's UDP (__udp4_lib_err, __udp6_lib_err): a socket
        connected elsewhere never hears it; without ``recverr`` only a connected socket hears, and only a
        hard error; with it, every error, also queued in ``errqueue``."""
        err = report.err
        if self.remote is not None and self.remote != report.remote:
            return
        if not self.recverr and (not hard or self.remote is None):
            return
        if self.recverr:
            if len(self.errqueue) >= self._ports.queue_limit:
                self._ports.counters.drop("udp.error_queue_full")
            else:
                self.errqueue.append(report)
        self.error = err
        self.event_time = now
        if self.on_event:
            self.on_event(self)

    def next_error(self) -> IcmpReport | None:
        """The oldest error of ``errqueue``, or None. As Linux's sock_dequeue_err_skb, the pending errno
        becomes the next queued error's (or none)."""
        if not self.errqueue:
            return None
        report = self.errqueue.popleft()
        self.error = self.errqueue[0].err if self.errqueue else 0
        return report

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._ports.unbind(self)
