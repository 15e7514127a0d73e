"""The sans-I/O core: one interface's Ethernet, ARP, IPv4, ICMP, IPv6 (with ND, SLAAC, MLD and ICMPv6),
UDP and TCP, behind one facade.

It never touches a file descriptor or reads a clock. The caller feeds frames and the time::

    stack.receive_frame(frame, now)      # a frame read from the link
    stack.handle_timer(now)              # when now >= stack.get_timer()
    for frame in stack.frames_to_send(): # then write these to the link
        ...

Malformed input never raises out of here: it is dropped and counted in ``stack.counters``. The layers
live in pystack.iface, one module each; this class builds them, wires them together and serves them.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Callable, Protocol

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.arp import Arp
from pystack.iface.ethernet import EthernetLink
from pystack.iface.ip_link import IpLink, PointToPoint
from pystack.iface.ip_link6 import PointToPointNd
from pystack.iface.icmp import EchoReplyHandler, Icmpv4
from pystack.iface.icmpv6 import EchoReplyHandler6, Icmpv6
from pystack.iface.ipv4 import Ipv4
from pystack.iface.ipv4_address import Ipv4Address
from pystack.iface.ipv6 import Ipv6
from pystack.iface.ndisc import AddressObserver, Ndisc
from pystack.iface.tcp import TcpGlue
from pystack.iface.tcp6 import Tcp6Glue
from pystack.iface.transport import TransportLayer, Transports
from pystack.ip6.addresses import Address, Origin
from pystack.medium import Medium
from pystack.reasons import Note
from pystack.udp.endpoint import MAX_PAYLOAD6
from pystack.udp.layer import UdpLayer
from pystack.wire import WireError
from pystack.wire import ethernet
from pystack.wire import ipv4 as ipv4_wire
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire.virtio import PartialChecksumFrame

__all__ = ["Stack", "TimerSource", "TransportLayer"]

log = logging.getLogger("pystack")


class TimerSource(Protocol):
    """Something with its own deadlines that the stack's timer should cover (the DHCP client)."""

    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class Stack:
    """One interface with one IPv4 address (or none yet, for DHCP), on the medium ``config.medium`` says:
    Ethernet frames (a TAP), or bare IP packets with no link header and no ARP (a TUN)."""

    receive_frame: Callable[[bytes | memoryview, float], None]
    """Feed one frame read from the link (an IP packet on the IP medium): the medium's own way in, chosen
    once, so that neither medium's frames pay for the other's."""

    answer_echo: Callable[[bytes | memoryview, float], bytes | None]
    """Ping's lane: the reply to a plain echo request, or None for "give the frame to receive_frame"
    (pystack.iface.icmp.Icmpv4.answer_echo, which hands IPv6 frames to Icmpv6.answer_echo once IPv6 is up;
    always None with ``fast_paths`` off). The poll loop calls it first with each wake-up's first frame and
    writes the reply at once."""

    def __init__(self, mac: bytes, config: StackConfig | None = None, counters: Counters | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = cfg = config or StackConfig()
        self.counters = counters = counters or Counters()
        self.rng = rng if rng is not None else random.Random()
        """Every random choice of the stack (IPv4 idents, ephemeral ports) comes from here: a seeded one
        makes a run repeatable."""
        self._addr = Ipv4Address()
        ethernet_medium = cfg.medium is Medium.ETHERNET
        self._link = EthernetLink(mac, counters) if ethernet_medium else IpLink(mac, counters)
        self._arp = (Arp if ethernet_medium else PointToPoint)(cfg, counters, self._link, self._addr)
        self._ipv4 = Ipv4(cfg, counters, self._link, self._arp, self._addr, self.rng)
        self._transports = Transports(counters, self._ipv4)
        self._icmp = Icmpv4(cfg, counters, self._link, self._arp, self._addr, self._ipv4, self._transports.layers,
                            self._internal_error)
        self._fast = fast = cfg.fast_paths
        self._tcp = TcpGlue(cfg, counters, self._link, self._ipv4, self._transports, self.rng, fast)
        self.tcp = self._tcp.tcp
        self.udp = UdpLayer(cfg, counters, self._emit_udp, self.source_for, self.rng)
        self._transports.attach(ipv4_wire.PROTO_UDP, self.udp, broadcast=True)
        # The fast ways in read a frame at Ethernet's offsets: the IP medium takes the layered way.
        self.answer_echo = self._icmp.answer_echo if fast and ethernet_medium else _no_fast_path
        self.receive_frame = self._receive_frame if ethernet_medium else self._receive_packet
        self.arp = self._arp.cache
        self.arp_observers = self._arp.observers
        """Called with every valid ARP packet received (the DHCP client's RFC 5227 probe watches them)."""
        self.reassembler = self._ipv4.reassembler
        self.icmp_limiter = self._icmp.limiter
        self.transports = self._transports.layers
        """IP protocols above ours by number (6 for TCP, 17 for UDP)."""
        # IPv6: built here, on the link from start_ipv6 on (until then its frames are dropped as before).
        self._nd = (Ndisc if ethernet_medium else PointToPointNd)(cfg, counters, self._link, self.rng)
        self._ipv6 = Ipv6(cfg, counters, self._link, self._nd, self.rng)
        self.transports6: dict[int, TransportLayer] = {}
        """Transports over IPv6 by Next Header."""
        self._icmp6 = Icmpv6(cfg, counters, self._ipv6, self._nd, self.transports6)
        # TCP and UDP over IPv6: the same classes, one instance per family (TCP's glue: pystack.iface.tcp6).
        self._tcp6 = Tcp6Glue(cfg, counters, self._link, self._ipv6, self._nd, self.rng, fast)
        self.tcp6 = self._tcp6.tcp
        self.udp6 = UdpLayer(cfg, counters, self._emit_udp6, self.source_for6, self.rng, MAX_PAYLOAD6)
        for next_header, layer6, multicast in ((ipv6_wire.NH_TCP, self.tcp6, False),
                                               (ipv6_wire.NH_UDP, self.udp6, True)):
            self.transports6[next_header] = layer6
            self._ipv6.attach_transport(next_header, layer6, multicast)
        self._ipv6_on = False
        self._fast6 = False
        """IPv6 is up with the fast paths on an Ethernet link: its TCP segments go straight to TCP."""
        self._deadline6: float | None = None
        self.timer_sources: list[TimerSource] = []
        """Extra deadlines merged into :meth:`get_timer` and served by :meth:`handle_timer`."""
        self.now = 0.0
        """The time of the frame or timer being handled, set before any callback of it runs (the UDP echo
        service and the DHCP host read it there). No layer reads it: a user call brings its own ``now``."""
        self._internal_errors = 0
        self.why: Note | None = None
        """Told why each frame is sent, while a capture listens (set with :meth:`explain`)."""

    def explain(self, note: Note | None) -> None:
        """Have ARP, ICMP and the applications on the stack (DHCP) tell ``note(key, reason)`` why they
        send each frame (pystack.reasons; TCP has its own hook, ``tcp.why``). None stops it."""
        self.why = self._arp.why = self._icmp.why = note

    # ------------------------------------------------------------------ configuration

    def configure(self, address: int, prefix_len: int, gateway: int | None, now: float) -> None:
        """Take an address; schedule the RFC 5227 section 2.3 announcements."""
        self._addr.configure(address, prefix_len, gateway)
        self._arp.announce(now)
        self._icmp.forget_echo_peer()

    def deconfigure(self) -> None:
        self._addr.deconfigure()
        self._arp.stop_announcing()
        self._icmp.forget_echo_peer()

    @property
    def mac(self) -> bytes:
        return self._link.mac

    @property
    def address(self) -> int | None:
        return self._addr.address

    @property
    def netmask(self) -> int:
        return self._addr.netmask

    @property
    def gateway(self) -> int | None:
        return self._addr.gateway

    @gateway.setter
    def gateway(self, gateway: int | None) -> None:
        self._addr.gateway = gateway

    @property
    def broadcast(self) -> int | None:
        """The directed broadcast address of our subnet (None without an address, or for a /32)."""
        return self._addr.broadcast

    @property
    def multicast_macs(self) -> set[bytes]:
        """Multicast MACs whose frames (and IPv4 multicast datagrams) we take."""
        return self._link.multicast_macs

    @property
    def echo_reply_handler(self) -> EchoReplyHandler | None:
        """Called with (source, rest, payload, now) for echo replies, by a local ping client."""
        return self._icmp.echo_reply_handler

    @echo_reply_handler.setter
    def echo_reply_handler(self, handler: EchoReplyHandler | None) -> None:
        self._icmp.echo_reply_handler = handler

    # ------------------------------------------------------------------ IPv6

    def start_ipv6(self, now: float) -> None:
        """Bring IPv6 up: take its frames, join all-nodes, form the link-local address (DAD first),
        then solicit routers; addresses come from RAs (SLAAC, unless ``config.ipv6.slaac`` is off) and
        :meth:`add_address6`. Needs an MTU of 1280 at least (RFC 8200 5); raises ValueError otherwise."""
        if self.config.mtu < 1280:
            raise ValueError(f"IPv6 needs an MTU of at least 1280 bytes (RFC 8200 section 5), not {self.config.mtu}")
        if self._ipv6_on:
            return
        self._ipv6_on = True
        # The fast ways in read a packet in an Ethernet frame: the IP medium takes the layered way.
        fast = self._fast and self.config.medium is Medium.ETHERNET
        self._link.protocols[ethernet.ETHERTYPE_IPV6] = self._receive6_fast if fast else self._receive6
        if fast:
            self._icmp.answer_echo6 = self._icmp6.answer_echo  # ping -6 in the poll loop's lane too
            self._fast6 = True
        self._nd.start(now)
        self._ipv6.timers_changed = True

    @property
    def ipv6_enabled(self) -> bool:
        return self._ipv6_on

    def add_address6(self, address: int, prefix_len: int, now: float, *, origin: Origin = Origin.STATIC,
                     valid: float = math.inf, preferred: float = math.inf) -> None:
        """An IPv6 address, static unless ``origin`` says otherwise (a DHCPv6 lease, with its lifetimes in
        seconds): usable once DAD passes; a static one's prefix is on-link. Raises ValueError for an
        address no interface may have. Given again, an address takes the new lifetimes."""
        self._nd.add(address, prefix_len, now, origin, valid=valid, preferred=preferred)
        self._ipv6.timers_changed = True

    def remove_address6(self, address: int, now: float) -> None:
        self._nd.remove(address, now)
        self._ipv6.timers_changed = True

    @property
    def addresses6(self) -> list[Address]:
        """The interface's IPv6 addresses, tentative and duplicate ones included (see their ``state``)."""
        return list(self._nd.addresses)

    @property
    def address6_observers(self) -> list[AddressObserver]:
        """Called with each IPv6 address event (added, configured, deprecated, removed, duplicate) and its time."""
        return self._nd.observers

    @property
    def gateway6(self) -> int | None:
        """The default IPv6 router set by hand (routers advertised in RAs are used when it is None)."""
        return self._nd.gateway

    @gateway6.setter
    def gateway6(self, gateway: int | None) -> None:
        self._nd.gateway = gateway

    @property
    def nd(self) -> Ndisc:
        """Neighbour discovery: the neighbour cache, the routers and DNS servers advertised, the groups."""
        return self._nd

    @property
    def echo6_reply_handler(self) -> EchoReplyHandler6 | None:
        """Called with (source, rest, payload, now) for ICMPv6 echo replies, by a local ping client."""
        return self._icmp6.echo_reply_handler

    @echo6_reply_handler.setter
    def echo6_reply_handler(self, handler: EchoReplyHandler6 | None) -> None:
        self._icmp6.echo_reply_handler = handler

    def source_for6(self, dst: int) -> int | None:
        return self._ipv6.source_for(dst)

    def send_ip6(self, dst: int, next_header: int, payload: bytes | memoryview, now: float, *,
                 src: int | None = None, hop_limit: int | None = None) -> None:
        """Route, fragment to the MTU and send (or queue behind neighbour discovery) one IPv6 packet.
        Raises OSError (ENETUNREACH, EADDRNOTAVAIL, EMSGSIZE) as the kernel's sendto would."""
        self._ipv6.send(dst, next_header, payload, now, src=src, hop_limit=hop_limit)

    def _receive6(self, payload: memoryview, link_unicast: bool, now: float) -> None:
        self._ipv6.checksum_trusted = self._ipv4.checksum_trusted  # receive_frame set it for this frame
        self._ipv6.receive(payload, link_unicast, now)

    def _receive6_fast(self, packet: memoryview, link_unicast: bool, now: float) -> None:
        """:meth:`_receive6` with the fast paths: a plain TCP segment or echo request in a frame to our MAC
        skips the IPv6 layer's parse and walk (IPv4's frames never come here: they pay nothing for it)."""
        if link_unicast and len(packet) >= 48:
            next_header = packet[6]
            if next_header == 6:
                if self._tcp6.receive_direct(packet, now, self._ipv4.checksum_trusted):
                    return
            elif next_header == 58 and (reply := self._icmp6.answer_echo_packet(packet, now)) is not None:
                self._link.out.append(reply)
                return
        self._receive6(packet, link_unicast, now)

    def _emit_udp6(self, src: int, dst: int, segment: bytes, now: float, dont_fragment: bool) -> None:
        """UDP-over-IPv6's way out: raises OSError (ENETUNREACH, EMSGSIZE) to the sender, as sendto does.
        IPv6 routers never fragment, so there is no DF to set (RFC 8200 5)."""
        self._ipv6.send(dst, ipv6_wire.NH_UDP, segment, now, src=src)

    def _ipv6_deadline(self) -> float | None:
        """ND's, MLD's and reassembly's deadlines (TCP's over IPv6 move with every segment: asked apart)."""
        best = self._nd.next_deadline()
        d = self._ipv6.next_deadline()
        if d is not None and (best is None or d < best):
            best = d
        return best

    def _ipv6_timer(self, now: float) -> None:
        for packet in self._nd.handle_timer(now):
            self._icmp6.unreachable_locally(packet, now)
        self._ipv6.handle_timer(now)

    def attach_transport(self, protocol: int, layer: TransportLayer, broadcast: bool = False) -> None:
        """Hand IP datagrams of ``protocol`` to ``layer``. ``broadcast``: it takes datagrams sent to a
        broadcast or multicast address too (UDP does; TCP is unicast only, RFC 1122 4.2.3.10)."""
        self._transports.attach(protocol, layer, broadcast)

    def begin_batch(self) -> None:
        """Frames read together follow: TCP may answer them with one ACK at :meth:`end_batch`."""
        self.tcp.begin_batch()
        if self._ipv6_on:
            self.tcp6.begin_batch()

    def end_batch(self, now: float) -> None:
        self.tcp.end_batch(now)
        if self._ipv6_on:
            self.tcp6.end_batch(now)

    def enable_segmentation_offload(self, max_segment: int = 65535 - 20 - 60) -> None:
        """The link cuts TCP segments for us (TSO): let TCP build segments of up to ``max_segment``
        payload bytes, sent as GsoFrames instead of MTU-sized frames; over IPv6 too (the bound fits it: its
        Payload Length leaves out the 40-byte header that IPv4's Total Length counts)."""
        self.tcp.gso_max = max_segment
        self.tcp6.gso_max = max_segment

    # ------------------------------------------------------------------ the sans-I/O interface

    def has_output(self) -> bool:
        """True when :meth:`frames_to_send` has something (a cheap check for the loop's fast path)."""
        return bool(self._link.out)

    def frames_to_send(self) -> list[bytes]:
        return self._link.drain()

    def get_timer(self) -> float | None:
        """The earliest deadline of every timer (called once per loop pass: kept free of allocations)."""
        best = self._arp.next_deadline()
        d = self._ipv4.next_deadline()
        if d is not None and (best is None or d < best):
            best = d
        d = self._transports.next_deadline()
        if d is not None and (best is None or d < best):
            best = d
        if self._ipv6_on:
            ipv6 = self._ipv6
            if ipv6.timers_changed:  # IPv6's tables moved only if it saw a frame, timer or send since
                ipv6.timers_changed = False
                self._deadline6 = self._ipv6_deadline()
            d = self._deadline6
            if d is not None and (best is None or d < best):
                best = d
            d = self.tcp6.get_timer()
            if d is not None and (best is None or d < best):
                best = d
        for timer in self.timer_sources:
            d = timer.get_timer()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def handle_timer(self, now: float) -> None:
        self.now = now
        try:
            for packet in self._arp.handle_timer(now):
                self._icmp.unreachable_locally(packet, now)
            self._ipv4.handle_timer(now)
            self._transports.handle_timer(now)
            if self._ipv6_on:
                d = self._ipv6_deadline()
                if d is not None and d <= now:
                    self._ipv6_timer(now)
                d = self.tcp6.get_timer()
                if d is not None and d <= now:
                    self.tcp6.handle_timer(now)
            for source in self.timer_sources:
                deadline = source.get_timer()
                if deadline is not None and deadline <= now:
                    source.handle_timer(now)
        except Exception:  # a bug must not stop the interface; count and log it
            self._internal_error("timer")

    def _receive_frame(self, frame: bytes | memoryview, now: float) -> None:
        self.now = now
        trusted = self._ipv4.checksum_trusted = type(frame) is PartialChecksumFrame
        try:
            proto = frame[23] if len(frame) > 23 else -1
            if proto == 1 and (reply := self.answer_echo(frame, now)) is not None:  # it counts what it answers
                self._link.out.append(reply)
                return
            self.counters["frames_in"] += 1
            if proto == 6 and self._fast and self._tcp.receive_direct(frame, now, trusted):
                return
            if self._fast6 and proto != -1 and frame[12] == 0x86 and self._tcp6.receive_frame(frame, now, trusted):
                return
            self._link.receive(frame, now)
        except WireError as exc:
            self.counters.drop(exc.reason)
        except Exception:
            self._internal_error("receive")

    def _receive_packet(self, packet: bytes | memoryview, now: float) -> None:
        """:attr:`receive_frame` on the IP medium: one bare IP packet, the layered way."""
        self.now = now
        self._ipv4.checksum_trusted = type(packet) is PartialChecksumFrame
        try:
            self.counters["frames_in"] += 1
            self._link.receive(packet, now)
        except WireError as exc:
            self.counters.drop(exc.reason)
        except Exception:
            self._internal_error("receive")

    def _internal_error(self, where: str) -> None:
        self.counters.drop("internal_error")
        self._internal_errors += 1
        if self._internal_errors <= 10:
            log.exception("internal error in %s (please report it)", where)

    # ------------------------------------------------------------------ send path

    def source_for(self, dst: int) -> int | None:
        return self._addr.address

    def next_ident(self) -> int:
        return self._ipv4.next_ident()

    def send_ip(self, dst: int, protocol: int, payload: bytes | memoryview, now: float, *,
                src: int | None = None, ttl: int | None = None, tos: int = 0, dont_fragment: bool = False,
                gso_size: int = 0) -> None:
        """Route, fragment to the MTU and send (or queue behind ARP) one datagram.

        ``gso_size``: ``payload`` is a TCP segment larger than the MTU allows, to be cut by the link
        into segments of that many payload bytes (segmentation offload) instead of fragmented.
        Raises OSError (ENETUNREACH, EMSGSIZE) as the kernel's sendto would.
        """
        if gso_size:
            self._tcp.send_gso(dst, payload, now, src if src is not None else (self._addr.address or 0), gso_size)
            return
        self._ipv4.send(dst, protocol, payload, now, src=src, ttl=ttl, tos=tos, dont_fragment=dont_fragment)

    def _emit_udp(self, src: int, dst: int, segment: bytes, now: float, dont_fragment: bool) -> None:
        """UDP's way out: raises OSError (ENETUNREACH, EMSGSIZE) to the sender, as sendto does."""
        self._ipv4.send(dst, ipv4_wire.PROTO_UDP, segment, now, src=src, dont_fragment=dont_fragment)

    def send_frame(self, frame: bytes) -> None:
        """Put a whole Ethernet frame on the link (the DHCP client's ARP probes)."""
        self._link.send_frame(frame)


def _no_fast_path(frame: bytes | memoryview, now: float) -> None:
    """``answer_echo`` with the fast paths off: every frame takes receive_frame's layered way."""
    return None
