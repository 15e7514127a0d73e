"""The UDP layer (RFC 768): the port table, datagrams in and out, ICMP errors to connected endpoints.

A transport like TCP's layer: the IP layer hands it datagrams (``receive``) and ICMP errors about what
it sent (``icmp_error``); it sends through the ``emit`` port it was given, never through the stack.
"""

from __future__ import annotations

import errno
import random
from typing import Callable

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.ip.icmp_errno import icmp_errno, icmp_fatal
from pystack.udp.endpoint import MAX_PAYLOAD, Address, IcmpReport, UdpEndpoint
from pystack.wire import udp as udp_wire
from pystack.wire.errors import WireError

Emit = Callable[[int, int, bytes, float, bool], None]
"""``emit(src_ip, dst_ip, segment, now, dont_fragment)``: route and send one datagram; raises OSError
(ENETUNREACH, EMSGSIZE) as the kernel's sendto would."""
SourceFor = Callable[[int], "int | None"]
"""``source_for(dst_ip)``: the address to send from, or None without one."""

_IPV4_HEADER_LEN = 20


class UdpLayer:
    """All UDP state of one stack over one family. ``ports`` maps a bound port to its endpoint;
    ``max_payload`` is the family's largest datagram (pystack.udp.endpoint: MAX_PAYLOAD, MAX_PAYLOAD6)."""

    def __init__(self, config: StackConfig, counters: Counters, emit: Emit, source_for: SourceFor,
                 rng: random.Random, max_payload: int = MAX_PAYLOAD) -> None:
        self.config = config
        self.max_payload = max_payload
        self.counters = counters
        self.emit = emit
        self.source_for = source_for
        self.rng = rng
        self.ports: dict[int, UdpEndpoint] = {}

    @property
    def queue_limit(self) -> int:
        """Datagrams an endpoint buffers before new ones are dropped."""
        return self.config.udp_recv_queue

    # ------------------------------------------------------------------ user side

    def bind(self, local_ip: int = 0, port: int = 0) -> UdpEndpoint:
        if port == 0:
            port = self._ephemeral()
        elif port in self.ports:
            raise OSError(errno.EADDRINUSE, "address already in use")
        if not 0 < port < 65536:
            raise OSError(errno.EINVAL, "invalid port")
        endpoint = self.ports[port] = UdpEndpoint(self, local_ip, port)
        return endpoint

    def _ephemeral(self) -> int:
        port = self.config.ephemeral_ports.pick(self.rng, self.ports.__contains__)
        if port is None:
            raise OSError(errno.EADDRINUSE, "no free ephemeral port")
        return port

    def unbind(self, endpoint: UdpEndpoint) -> None:
        if self.ports.get(endpoint.port) is endpoint:
            del self.ports[endpoint.port]

    def lookup(self, dst_ip: int, port: int) -> UdpEndpoint | None:
        endpoint = self.ports.get(port)
        if endpoint is not None and endpoint.local_ip and endpoint.local_ip != dst_ip:
            return None
        return endpoint

    def send(self, local_ip: int, port: int, data: bytes | memoryview, target: Address, now: float) -> None:
        src = local_ip or self.source_for(target[0])
        if src is None:
            raise OSError(errno.ENETUNREACH, "network is unreachable")
        segment = udp_wire.build(src, target[0], port, target[1], data)
        # As Linux's default for UDP (IP_PMTUDISC_WANT): DF on a datagram that fits the MTU, so a router
        # with a smaller MTU says so; a larger one is fragmented, without DF.
        self.emit(src, target[0], segment, now, _IPV4_HEADER_LEN + len(segment) <= self.config.mtu)

    # ------------------------------------------------------------------ IP side

    def receive(self, src_ip: int, dst_ip: int, segment: bytes | memoryview, now: float,
                checksum_trusted: bool = False) -> bool:
        """One IP payload of protocol 17. False when no endpoint has the port (the IP layer then answers
        port unreachable, RFC 1122 3.2.2.1); bad datagrams are dropped and counted."""
        try:
            sport, dport, data = udp_wire.parse(segment, src_ip, dst_ip, not checksum_trusted)
        except WireError as exc:
            self.counters.drop(exc.reason)
            return True
        endpoint = self.lookup(dst_ip, dport)
        if endpoint is None:
            self.counters.drop("udp.port_closed")
            return False
        self.counters["udp.delivered"] += 1
        endpoint.deliver(bytes(data), (src_ip, sport), now)
        return True

    def icmp_error(self, icmp_type: int, icmp_code: int, local_ip: int, remote_ip: int,
                   quoted: bytes | memoryview, now: float, next_hop_mtu: int = 0, err: int = 0) -> None:
        """An ICMP error about a datagram we sent (``quoted`` starts at its UDP header): the endpoint of
        its source port hears of it (RFC 1122 4.1.3.3), as ``err`` when ICMPv6 gave one, else as IPv4's
        errno for the type and code (pystack.ip.icmp_errno), if Linux's rules let it (report_error)."""
        sport = int.from_bytes(quoted[0:2], "big")
        dport = int.from_bytes(quoted[2:4], "big")
        endpoint = self.lookup(local_ip, sport)
        if endpoint is not None:
            report = IcmpReport(err or icmp_errno(icmp_type, icmp_code), (remote_ip, dport), bytes(quoted[8:]),
                                icmp_type, icmp_code, next_hop_mtu)
            endpoint.report_error(report, now, icmp_fatal(icmp_type, icmp_code))

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass
