"""IPv4 (RFC 791, RFC 1122 3.3) for one interface: routing, sending (fragmented to the MTU, or looped back
when it is to ourselves), receiving (filtered, reassembled) and handing each datagram to the protocol above
it by number. ICMP registers itself as ``errors``, the way IPv4 tells a sender its datagram went nowhere.
"""

from __future__ import annotations

import errno
import random
from typing import Callable, Protocol

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.arp import Arp
from pystack.iface.ethernet import EthernetLink
from pystack.iface.ip_link import packet_header
from pystack.iface.ipv4_address import LIMITED_BROADCAST, Ipv4Address, is_martian_source
from pystack.ip.reassembly import Reassembler
from pystack.medium import Medium
from pystack.wire import ethernet
from pystack.wire import icmp as icmp_wire
from pystack.wire import ipv4 as ipv4_wire
from pystack.wire.errors import WireError
from pystack.wire.ipv4 import IPv4Packet

Deliver = Callable[[IPv4Packet, memoryview, memoryview, float], None]
"""``deliver(packet, header, payload, now)``: a whole datagram for us, to the protocol above."""


class ErrorReporter(Protocol):
    """ICMP as IPv4 sees it (pystack.iface.icmp.Icmpv4)."""

    def send_error(self, pkt: IPv4Packet, header: bytes | memoryview, payload: bytes | memoryview,
                   mtype: int, code: int, now: float, rest: int = 0) -> None:
        """Tell ``pkt``'s sender about it, quoting its header and the start of its payload."""


class Ipv4:
    """IPv4 of one interface. ``protocols`` maps an IP protocol number to what takes its datagrams."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, arp: Arp,
                 addr: Ipv4Address, rng: random.Random) -> None:
        self.config = config
        self.counters = counters
        self.link = link
        self.arp = arp
        self.addr = addr
        self.reassembler = Reassembler(config, counters)
        self.protocols: dict[int, Deliver] = {}
        self.errors: ErrorReporter | None = None
        self.link_unicast = True
        """False while handling a datagram that came in a link-layer broadcast or multicast frame."""
        self.checksum_trusted = False
        """True while handling a frame whose transport checksum the kernel left partial (see
        pystack.wire.virtio.PartialChecksumFrame): it was never on a wire, so it is not verified."""
        self._ident = rng.randrange(0x10000)
        self.point_to_point = config.medium is Medium.IP
        """On the IP medium the link is point-to-point: what is off-link goes to the peer with no gateway."""
        self.frame_header = packet_header if self.point_to_point else ipv4_wire.frame_header
        """Packs the headers of a datagram that fits (:meth:`send_datagram`, and TCP's super-frames): Ethernet's
        and IPv4's, or on the IP medium IPv4's alone."""
        link.protocols[ethernet.ETHERTYPE_IPV4] = self.receive

    def next_ident(self) -> int:
        """The Identification field of the next datagram sent (RFC 791; one counter for all)."""
        self._ident = ident = (self._ident + 1) & 0xFFFF
        return ident

    # ------------------------------------------------------------------ send

    def route(self, dst: int) -> tuple[int, bytes | None]:
        """(next hop, MAC if known without ARP). RFC 1122 3.3.1: on-link or via the default gateway.
        Raises OSError ENETUNREACH."""
        addr = self.addr
        if dst == LIMITED_BROADCAST or dst == addr.broadcast:
            return dst, ethernet.BROADCAST
        if (dst >> 28) == 0xE:
            # RFC 1112 6.4: 01:00:5e + low 23 bits of the group.
            return dst, b"\x01\x00\x5e" + (dst & 0x7FFFFF).to_bytes(3, "big")
        if addr.address is not None and (dst & addr.netmask) == (addr.address & addr.netmask):
            return dst, None
        if addr.gateway is not None:
            return addr.gateway, None
        if self.point_to_point:
            return dst, None  # every destination is the peer's to route (as a "dev tun0" route)
        raise OSError(errno.ENETUNREACH, "network is unreachable")

    def neighbour(self, dst: int, now: float) -> tuple[int, bytes | None]:
        """(next hop, its MAC, or None while ARP resolves it). Raises OSError ENETUNREACH."""
        next_hop, mac = self.route(dst)
        if mac is None:
            mac = self.arp.resolve(next_hop, now)
        return next_hop, mac

    def confirm(self, dst: int, now: float) -> float:
        """An upper layer has proof that datagrams to ``dst`` arrive (TCP's new data acknowledged): the ARP
        entry of the next hop they go to, the gateway for an off-link ``dst``, is fresh again, as Linux's
        neighbour layer takes TCP's hint for ARP too (RFC 4861 7.3.1's idea). Returns how long that holds."""
        try:
            next_hop, mac = self.route(dst)
        except OSError:
            pass
        else:
            if mac is None:
                self.arp.cache.confirm(next_hop, now)
        return self.config.arp_reachable_time

    def send(self, dst: int, protocol: int, payload: bytes | memoryview, now: float, *,
             src: int | None = None, ttl: int | None = None, tos: int = 0, dont_fragment: bool = False) -> None:
        """Route, fragment to the MTU and send (or hold behind ARP) one datagram.
        Raises OSError (ENETUNREACH, EMSGSIZE) as the kernel's sendto would."""
        if src is None:
            src = self.addr.address if self.addr.address is not None else 0
        if ipv4_wire.MIN_HEADER_LEN + len(payload) > ipv4_wire.MAX_DATAGRAM:
            raise OSError(errno.EMSGSIZE, "message too long")
        if dst == self.addr.address and dst is not None:
            self._loopback(src, dst, protocol, payload, now)
            return
        ttl = ttl or self.config.default_ttl
        if ipv4_wire.MIN_HEADER_LEN + len(payload) <= self.config.mtu:
            self.send_datagram(src, dst, protocol, payload, now, ttl, tos,
                               ipv4_wire.FLAG_DF if dont_fragment else 0)
            return
        next_hop, mac = self.route(dst)
        try:
            packets = ipv4_wire.fragment(src, dst, protocol, payload, self.config.mtu, ident=self.next_ident(),
                                         ttl=ttl, tos=tos, dont_fragment=dont_fragment)
        except ValueError as exc:
            raise OSError(errno.EMSGSIZE, str(exc)) from None
        if mac is None:
            mac = self.arp.resolve(next_hop, now)
        if mac is None:
            for packet in packets:
                self.arp.hold(next_hop, packet, now)
            return
        self.link.send_all(mac, ethernet.ETHERTYPE_IPV4, packets)

    def send_datagram(self, src: int, dst: int, protocol: int, payload: bytes | memoryview, now: float,
                      ttl: int, tos: int, flags_offset: int) -> None:
        """One datagram that fits the MTU, not to ourselves: the link's and IPv4's headers are packed in one
        piece (raises OSError ENETUNREACH like send)."""
        next_hop, mac = self.neighbour(dst, now)
        if mac is None:
            packet = ipv4_wire.build(src, dst, protocol, payload, ident=self.next_ident(), ttl=ttl, tos=tos,
                                     flags_offset=flags_offset)
            self.arp.hold(next_hop, packet, now)
            return
        self.link.send_frame(self.frame_header(mac, self.link.mac, tos, len(payload), self.next_ident(),
                                               flags_offset, ttl, protocol, src, dst) + payload)

    def _loopback(self, src: int, dst: int, protocol: int, payload: bytes | memoryview, now: float) -> None:
        """Datagrams to our own address never reach the wire (RFC 1122 3.3.4: like the kernel's lo)."""
        packet = ipv4_wire.build(src, dst, protocol, payload, ident=self.next_ident(), ttl=self.config.default_ttl)
        self.counters["ipv4.loopback"] += 1
        try:
            self.receive(memoryview(packet), True, now)
        except WireError as exc:
            self.counters.drop(exc.reason)

    # ------------------------------------------------------------------ receive

    def receive(self, data: memoryview, link_unicast: bool, now: float) -> None:
        """A datagram from the link (raises WireError, counted by the caller, for what it refuses)."""
        self.link_unicast = link_unicast
        pkt = ipv4_wire.parse(data)
        dst = pkt.dst
        addr = self.addr
        us = addr.address
        if dst != us:
            if dst == LIMITED_BROADCAST or (dst == addr.broadcast and us is not None):
                pass
            elif (dst >> 28) == 0xE and self.link.multicast_macs:
                pass
            else:
                raise WireError("ipv4.not_for_us")  # a host does not forward (RFC 1122 3.3.1)
        if is_martian_source(pkt.src):
            raise WireError("ipv4.martian_source")
        if pkt.flags_offset & 0x3FFF:  # MF or a fragment offset
            whole = self.reassembler.add(pkt, data[: pkt.header_len], now)
            if whole is None:
                return
            # The whole datagram's fields, not those of the fragment that completed it (which carries
            # an offset: an ICMP error about it would be refused, RFC 1122 3.2.2).
            self._deliver(ipv4_wire.parse_header_fields(whole.header), memoryview(whole.header),
                          memoryview(whole.payload), now)
        else:
            self._deliver(pkt, data[: pkt.header_len], pkt.payload, now)

    def _deliver(self, pkt: IPv4Packet, header: memoryview, payload: memoryview, now: float) -> None:
        deliver = self.protocols.get(pkt.protocol)
        if deliver is not None:
            deliver(pkt, header, payload, now)
            return
        self.counters.drop("ipv4.unknown_protocol")
        if self.errors is not None:
            self.errors.send_error(pkt, header, payload, icmp_wire.TYPE_DEST_UNREACHABLE,
                                   icmp_wire.CODE_PROTOCOL_UNREACHABLE, now)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        return self.reassembler.next_deadline()

    def handle_timer(self, now: float) -> None:
        """Partial datagrams that waited too long: RFC 792 time exceeded, code 1 (fragment reassembly
        time exceeded), quoting the first fragment."""
        for expired in self.reassembler.expire(now):
            if self.errors is not None:
                pkt = ipv4_wire.parse_header_fields(expired.header)
                pkt.flags_offset = 0
                self.errors.send_error(pkt, expired.header, expired.payload, icmp_wire.TYPE_TIME_EXCEEDED, 1, now)
