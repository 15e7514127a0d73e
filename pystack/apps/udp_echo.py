"""The UDP echo service (RFC 862) on port 7: every datagram goes back to its sender."""

from __future__ import annotations

from pystack.stack import Stack
from pystack.udp.endpoint import UdpEndpoint

ECHO_PORT = 7


class UdpEcho:
    """On ``port`` of IPv4, and of IPv6 when the stack has it up."""

    def __init__(self, stack: Stack, port: int = ECHO_PORT) -> None:
        self.stack = stack
        self.endpoint = stack.udp.bind(0, port)
        self.endpoint.on_event = self._on_event
        if stack.ipv6_enabled:
            self.endpoint6 = stack.udp6.bind(0, port)
            self.endpoint6.on_event = self._on_event

    def _on_event(self, endpoint: UdpEndpoint) -> None:
        now = endpoint.event_time  # the datagram's time: sans-I/O, no clock is read
        while True:
            try:
                got = endpoint.recvfrom()
            except OSError:
                continue  # an ICMP error about an earlier echo; nothing to do
            if got is None:
                return
            data, source = got
            try:
                endpoint.sendto(data, source, now)
                self.stack.counters["udp.echoed"] += 1
            except OSError:
                self.stack.counters.drop("udp.echo_unroutable")
