"""Runs a :class:`DhcpClient` on a :class:`~pystack.stack.Stack`: the glue between the two sans-I/O parts.

It binds UDP port 68, sends the client's datagrams with ``Stack.send_ip`` (from 0.0.0.0 until bound),
applies leases with ``Stack.configure``/``deconfigure``, and runs the RFC 5227 probe over ARP. Three
things it needs from its owner, because the stack does not offer them itself:

* every ARP packet the interface receives, passed to :meth:`DhcpHost.observe_arp`;
* ``send_frame``: a way to put a raw Ethernet frame (an ARP probe) on the link;
* its timer merged with the stack's: call :meth:`handle_timer` at :meth:`get_timer`, and :meth:`poll`
  after the stack has received frames (UDP datagrams to port 68 wait in the endpoint until then).

:meth:`attach` does all three, and polls at the time each datagram came (``UdpEndpoint.event_time``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from pystack.dhcp.client import Bound, DhcpClient, Event, LeaseLost, ProbeAddress
from pystack.dhcp.probe import AddressProbe
from pystack.reasons import arp_key, udp_key
from pystack.wire import arp as arp_wire
from pystack.wire import ethernet
from pystack.wire import udp as udp_wire
from pystack.wire.dhcp import CLIENT_PORT, SERVER_PORT

if TYPE_CHECKING:
    from pystack.stack import Stack


class DhcpHost:
    def __init__(self, stack: Stack, client: DhcpClient, rng: random.Random, send_frame: Callable[[bytes], None],
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.stack = stack
        self.client = client
        self.rng = rng
        self.send_frame = send_frame
        self.on_event = on_event
        self.endpoint = stack.udp.bind(0, CLIENT_PORT)
        self.probe: AddressProbe | None = None
        self.bound: Bound | None = None

    @classmethod
    def attach(cls, stack: Stack, client: DhcpClient, rng: random.Random,
               on_event: Callable[[Event], None] | None = None) -> DhcpHost:
        """A host wired into ``stack``'s hooks: ARP observer, timer source, raw frames, and port 68
        datagrams handled as they arrive."""
        host = cls(stack, client, rng, stack.send_frame, on_event)
        def observe(pkt: arp_wire.ArpPacket) -> None:
            host.observe_arp(pkt)
            if host.probe is not None and host.probe.done:
                host.poll(stack.now)  # a conflict ends the probe at once

        stack.arp_observers.append(observe)
        stack.timer_sources.append(host)
        host.endpoint.on_event = lambda endpoint: host.poll(endpoint.event_time)
        return host

    def get_timer(self) -> float | None:
        deadlines = [d for d in (self.client.get_timer(), self.probe.get_timer() if self.probe else None)
                     if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        deadline = self.client.get_timer()
        if deadline is not None and deadline <= now:
            self.client.handle_timer(now)
        if self.probe is not None:
            deadline = self.probe.get_timer()
            if deadline is not None and deadline <= now:
                self.probe.handle_timer(now)
        self.poll(now)

    def observe_arp(self, pkt: arp_wire.ArpPacket) -> None:
        if self.probe is not None:
            self.probe.observe(pkt)

    def release(self, now: float) -> None:
        """On clean shutdown: DHCPRELEASE goes out (give the loop a moment to send it)."""
        self.client.release(now)
        self.poll(now)

    def poll(self, now: float) -> None:
        """Move everything between the endpoint, the client, the probe and the stack until quiet."""
        counters = self.stack.counters
        for _ in range(self.client.config.host_rounds):
            busy = False
            while (item := self.endpoint.recvfrom()) is not None:
                data, (_src, sport) = item
                if sport != SERVER_PORT:
                    counters.drop("dhcp.wrong_source_port")
                    continue
                self.client.receive(data, now)
            for dgram in self.client.datagrams_to_send():
                busy = True
                segment = udp_wire.build(dgram.src, dgram.dst, CLIENT_PORT, SERVER_PORT, dgram.payload)
                why = self.stack.why
                if why is not None and dgram.why:
                    why(udp_key(dgram.src, dgram.dst, CLIENT_PORT, SERVER_PORT), dgram.why)
                try:
                    self.stack.send_ip(dgram.dst, udp_wire.PROTO_UDP, segment, now, src=dgram.src)
                except OSError:
                    counters.drop("dhcp.unroutable")
            for event in self.client.events():
                busy = True
                self._apply(event, now)
            probe = self.probe
            if probe is not None:
                for payload in probe.arp_to_send():
                    if self.stack.why is not None:
                        self.stack.why(arp_key(arp_wire.OP_REQUEST, 0, probe.address),
                                       "ARP probe: does another host have the offered address? (RFC 5227 2.1)")
                    self.send_frame(ethernet.build(ethernet.BROADCAST, self.stack.mac, ethernet.ETHERTYPE_ARP,
                                                   payload))
                if probe.done:
                    self.probe = None
                    self.client.probe_result(probe.address, probe.conflict, now)
                    busy = True
            if not busy:
                return

    def _apply(self, event: Event, now: float) -> None:
        stack = self.stack
        if isinstance(event, ProbeAddress):
            self.probe = AddressProbe(event.address, stack.mac, now, self.rng, self.client.config)
        elif isinstance(event, Bound):
            old = self.bound
            if old is None or (old.address, old.prefix, old.router) != (event.address, event.prefix, event.router):
                stack.configure(event.address, event.prefix, event.router, now)
            self.bound = event
        elif isinstance(event, LeaseLost):
            if self.bound is not None and self.bound.address == event.address:
                stack.deconfigure()
                self.bound = None
        if self.on_event is not None:
            self.on_event(event)
