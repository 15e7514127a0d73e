"""The transports above IPv4 (TCP, UDP, any other attached): what IPv4 hands them and the rules it
keeps on their behalf (unicast only, port unreachable), and their timers.

A transport receives ``(source, destination, payload)`` with addresses as integers, and sends through the
port the stack gave it; it never holds the stack.
"""

from __future__ import annotations

from typing import Protocol

from pystack.counters import Counters
from pystack.iface.ipv4 import Ipv4
from pystack.wire import icmp as icmp_wire
from pystack.wire.ipv4 import IPv4Packet


class TransportLayer(Protocol):
    """What the stack needs of a transport it hands datagrams to (TCP and UDP are attached this way)."""

    def receive(self, src: int, dst: int, segment: memoryview, now: float,
                checksum_trusted: bool = False) -> bool | None:
        """One datagram's payload; False when no socket has its port (answered by port unreachable)."""
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...

    def icmp_error(self, icmp_type: int, icmp_code: int, local_ip: int, remote_ip: int,
                   quoted: bytes | memoryview, now: float, next_hop_mtu: int = 0, err: int = 0) -> None:
        """An ICMP error about a datagram we sent; ``quoted`` starts at the transport header. ``err``: the
        errno ICMPv6 gives it (0 over IPv4: the transport asks pystack.ip.icmp_errno)."""


class Transports:
    """The transports attached to IPv4, by protocol number (``layers``)."""

    def __init__(self, counters: Counters, ipv4: Ipv4) -> None:
        self.counters = counters
        self.ipv4 = ipv4
        self.layers: dict[int, TransportLayer] = {}
        self._takes_broadcast: set[int] = set()
        """Protocols whose layer takes datagrams sent to a broadcast or multicast address."""

    def attach(self, protocol: int, layer: TransportLayer, broadcast: bool = False) -> None:
        """Hand IPv4 datagrams of ``protocol`` to ``layer``. ``broadcast``: it takes datagrams sent to a
        broadcast or multicast address too (UDP does; TCP is unicast only, RFC 1122 4.2.3.10)."""
        self.layers[protocol] = layer
        if broadcast:
            self._takes_broadcast.add(protocol)
        else:
            self._takes_broadcast.discard(protocol)
        self.ipv4.protocols[protocol] = self.deliver

    def deliver(self, pkt: IPv4Packet, header: memoryview, payload: memoryview, now: float) -> None:
        ipv4 = self.ipv4
        proto = pkt.protocol
        ours = pkt.dst == ipv4.addr.address
        if not (ours and ipv4.link_unicast) and proto not in self._takes_broadcast:
            # TCP is unicast only: RFC 1122 4.2.3.10 (and never answer from a broadcast, 3.2.1.3);
            # in a link-layer broadcast too, as Linux's tcp_v4_rcv (PACKET_HOST only).
            self.counters.drop("ipv4.transport_not_unicast")
            return
        taken = self.layers[proto].receive(pkt.src, pkt.dst, payload, now, ipv4.checksum_trusted)
        if taken is False and ours and ipv4.errors is not None:
            # No socket on that port; never answer broadcasts with errors (RFC 1122 3.2.2).
            ipv4.errors.send_error(pkt, header, payload, icmp_wire.TYPE_DEST_UNREACHABLE,
                                   icmp_wire.CODE_PORT_UNREACHABLE, now)

    def next_deadline(self) -> float | None:
        best = None
        for layer in self.layers.values():
            d = layer.get_timer()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def handle_timer(self, now: float) -> None:
        for layer in self.layers.values():
            deadline = layer.get_timer()
            if deadline is not None and deadline <= now:
                layer.handle_timer(now)
