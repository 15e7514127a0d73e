"""IPv6 (RFC 8200) for one interface: receiving (addressed to us, the extension headers walked, fragments
reassembled) and handing each packet to the protocol above it by Next Header; sending (routed through
neighbour discovery, fragmented to the MTU, or looped back when it is to ourselves).

What RFC 8200 answers with a Parameter Problem (an unknown Next Header or option, a bad fragment, a
routing header of type 0) is answered through ``errors`` (ICMPv6, pystack.iface.icmpv6, registers
itself), then dropped and counted like every other refusal. Addresses, routes and neighbours are
pystack.iface.ndisc's.
"""

from __future__ import annotations

import errno
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Protocol

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.ethernet import EthernetLink
from pystack.iface.ndisc import Ndisc
from pystack.ip6.addresses import State
from pystack.ip6.neighbours import State as NeighbourState
from pystack.ip6.reassembly import Reassembler
from pystack.medium import Medium
from pystack.wire import ethernet
from pystack.wire import icmpv6 as icmpv6_wire
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire.errors import WireError
from pystack.wire.gso import GsoFrame, segment
from pystack.wire.ipv6 import HeaderChain, Ipv6Packet, ParameterProblem

Deliver6 = Callable[[Ipv6Packet, HeaderChain, float], None]
"""``deliver(packet, chain, now)``: a whole packet for us; its upper-layer header starts at ``chain.offset``
of ``packet.datagram``."""


class Transport6(Protocol):
    """What IPv6 needs of a transport it hands packets to (TCP's and UDP's layers, as over IPv4)."""

    def receive(self, src: int, dst: int, segment: memoryview, now: float,
                checksum_trusted: bool = False) -> bool | None:
        """One packet's upper-layer part; False when no socket has its port (port unreachable)."""


class ErrorReporter6(Protocol):
    """ICMPv6 as IPv6 sees it (pystack.iface.icmpv6.Icmpv6)."""

    def send_error(self, pkt: Ipv6Packet, mtype: int, code: int, rest: int, now: float, *,
                   multicast_ok: bool = False) -> None:
        """Tell ``pkt``'s sender about it, quoting as much of it as fits (RFC 4443 2.4)."""


_REACHABLE = NeighbourState.REACHABLE
_DELAY = NeighbourState.DELAY
_PROBE = NeighbourState.PROBE


@dataclass(slots=True)
class Way:
    """What sending to one destination takes (:meth:`Ipv6.way`), remembered while neighbour discovery's
    change count is ``changes`` and ``now`` is before ``until``."""

    changes: int
    until: float
    """When the neighbour's REACHABLE time or the path MTU runs out (math.inf when neither does)."""
    next_hop: int
    mac: bytes
    mtu: int
    hop_limit: int


class Ipv6:
    """IPv6 of one interface. ``protocols`` maps a Next Header value to what takes its packets."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, nd: Ndisc,
                 rng: random.Random) -> None:
        self.config = config
        self.cfg6 = cfg6 = config.ipv6
        self.counters = counters
        self.link = link
        self.nd = nd
        self.reassembler = Reassembler(cfg6, counters)
        self.protocols: dict[int, Deliver6] = {}
        self._upper: frozenset[int] = frozenset()
        self.errors: ErrorReporter6 | None = None
        self.link_unicast = True
        """False while handling a packet that came in a link-layer multicast or broadcast frame."""
        self.fragmented = False
        """True while handling a packet rebuilt from fragments (ND refuses those: RFC 6980)."""
        self.checksum_trusted = False
        self.timers_changed = True
        """Set by whatever may move a deadline (a send, a frame, a timer): the stack then asks again."""
        self._ident = rng.getrandbits(32)
        self.path_mtu: OrderedDict[int, tuple[int, float]] = OrderedDict()
        """Destination -> (its path MTU, when that expires), for those a Packet Too Big lowered (RFC 8201)."""
        self._ways: dict[int, Way] = {}
        """Destination -> its :class:`Way`, for the fast paths; emptied when ``destination_cache_size`` full."""
        self._neighbours = nd.neighbours.entries
        self.point_to_point = config.medium is Medium.IP
        """On the IP medium a packet has no link header and its next hop nothing to resolve."""

    def attach(self, next_header: int, deliver: Deliver6) -> None:
        self.protocols[next_header] = deliver
        self._upper = frozenset(self.protocols)

    def attach_transport(self, next_header: int, layer: Transport6, multicast: bool = False) -> None:
        """Hand packets of ``next_header`` to ``layer``; ``multicast``: it takes packets sent to a group
        (UDP does; TCP is unicast only)."""
        def deliver(pkt: Ipv6Packet, chain: HeaderChain, now: float) -> None:
            group = ipv6_wire.is_multicast(pkt.dst)
            if pkt.src == ipv6_wire.UNSPECIFIED:
                raise WireError("ipv6.unspecified_source")  # RFC 4291 2.5.2: never the source of a reply
            if (group or not self.link_unicast) and not multicast:
                raise WireError("ipv6.transport_not_unicast")  # as Linux's tcp_v6_rcv (PACKET_HOST only)
            taken = layer.receive(pkt.src, pkt.dst, pkt.datagram[chain.offset:], now, self.checksum_trusted)
            if taken is False and not group and self.errors is not None:
                # No socket on that port (RFC 4443 3.1, code 4); never about a packet to a group (2.4 (e.3)).
                self.errors.send_error(pkt, icmpv6_wire.TYPE_DEST_UNREACHABLE, icmpv6_wire.CODE_PORT_UNREACHABLE,
                                       0, now)

        self.attach(next_header, deliver)

    def next_ident(self) -> int:
        """The Identification of the next fragmented packet (RFC 8200 4.5; one counter for all, started
        at random as RFC 7739 asks)."""
        self._ident = ident = (self._ident + 1) & 0xFFFFFFFF
        return ident

    def learn_path_mtu(self, dst: int, mtu: int, now: float) -> None:
        """A Packet Too Big about a packet we sent to ``dst``: send it no larger than ``mtu`` (never below
        1280, RFC 8201 4) for ``path_mtu_timeout`` seconds; a larger value is not believed (5.4)."""
        mtu = max(mtu, ipv6_wire.MIN_MTU)
        if mtu >= self.mtu_for(dst, now):
            return
        table = self.path_mtu
        table.pop(dst, None)
        if len(table) >= self.cfg6.path_mtu_entries:
            table.popitem(last=False)
        table[dst] = (mtu, now + self.cfg6.path_mtu_timeout)
        self.nd.changed()
        self.counters["ipv6.path_mtu_lowered"] += 1

    def mtu_for(self, dst: int, now: float) -> int:
        """The largest packet to send to ``dst``: the link's, or the path's when a router said less."""
        link = self.nd.mtu
        if not self.path_mtu:
            return link
        entry = self.path_mtu.get(dst)
        if entry is None:
            return link
        if entry[1] <= now:
            del self.path_mtu[dst]  # RFC 8201 4: try the link's MTU again
            self.nd.changed()
            return link
        return min(entry[0], link)

    def way(self, dst: int, now: float) -> Way | None:
        """How to send a packet to the unicast ``dst`` now, as :meth:`send` would, without its checks: the
        next hop's MAC, the path MTU and the hop limit; the neighbour entry moved as a packet sent to it
        moves it (RFC 4861 7.3.3: to the recent end, and STALE turns DELAY). None when ``dst`` is ours, has
        no route or a neighbour to resolve: :meth:`send` loops it back, counts it or queues it.

        The fast paths' way out (the ICMPv6 echo, TCP's segments): per packet a dictionary lookup and two
        comparisons, since whatever a route, an address, a neighbour's state or MAC or a path MTU is made of
        bumps ``nd.changes`` when it changes (tests/unit/ip6/test_ways.py proves each kind)."""
        way = self._ways.get(dst)
        if way is not None and way.changes == self.nd.changes and now < way.until:
            self._neighbours.move_to_end(way.next_hop)
            return way
        return self._find_way(dst, now)

    def _find_way(self, dst: int, now: float) -> Way | None:
        nd = self.nd
        if nd.addresses.is_assigned(dst):
            return None
        try:
            next_hop = nd.route(dst)
        except OSError:
            return None
        entry = self._neighbours.get(next_hop)
        if entry is None or entry.lladdr is None:
            return None  # unknown or INCOMPLETE
        if entry.state is _REACHABLE and now < entry.deadline or entry.state is _DELAY or entry.state is _PROBE:
            self._neighbours.move_to_end(next_hop)
        else:
            nd.resolve(next_hop, b"", now)  # STALE (or REACHABLE past its time): DELAY, with its timer
            self.timers_changed = True
        until = entry.deadline if entry.state is _REACHABLE else math.inf
        mtu = self.mtu_for(dst, now)
        pmtu = self.path_mtu.get(dst)
        if pmtu is not None and pmtu[1] < until:
            until = pmtu[1]
        ways = self._ways
        if len(ways) >= self.cfg6.destination_cache_size:
            ways.clear()
        way = ways[dst] = Way(nd.changes, until, next_hop, entry.lladdr, mtu, nd.hop_limit)
        return way

    def is_ours(self, address: int) -> bool:
        return self.nd.addresses.is_assigned(address)

    # ------------------------------------------------------------------ receive

    def receive(self, data: memoryview, link_unicast: bool, now: float) -> None:
        """A packet from the link (raises WireError, counted by the caller, for what it refuses)."""
        self.timers_changed = True
        self.link_unicast = link_unicast
        self.fragmented = False
        pkt = ipv6_wire.parse(data)
        dst = pkt.dst
        if ipv6_wire.is_multicast(dst):
            if dst not in self.nd.mld.groups:
                raise WireError("ipv6.group_not_joined")
        elif not self.nd.addresses.is_assigned(dst):
            entry = self.nd.addresses.get(dst)
            if entry is not None and entry.state is State.TENTATIVE:
                raise WireError("ipv6.tentative_destination")  # RFC 4862 5.4: silently discarded
            raise WireError("ipv6.not_for_us")  # a host does not forward
        chain = self._walk(pkt, False, now)
        if chain.fragment is not None:
            whole = self.reassembler.add(pkt, chain, now)
            if whole is None:
                return
            pkt = ipv6_wire.parse(whole)
            chain = self._walk(pkt, True, now)
            self.fragmented = True
        if chain.protocol == ipv6_wire.NH_NONE:
            raise WireError("ipv6.no_next_header")  # RFC 8200 4.7: nothing follows
        self.protocols[chain.protocol](pkt, chain, now)

    def _walk(self, pkt: Ipv6Packet, reassembled: bool, now: float) -> HeaderChain:
        """The extension headers, walked; a Parameter Problem is answered before the packet is dropped."""
        cfg6 = self.cfg6
        try:
            return ipv6_wire.walk(pkt, upper_layers=self._upper, max_headers=cfg6.max_extension_headers,
                                  max_options=cfg6.max_options_per_header, reassembled=reassembled)
        except ParameterProblem as problem:
            if self.errors is not None:
                self.errors.send_error(pkt, icmpv6_wire.TYPE_PARAMETER_PROBLEM, problem.code, problem.pointer, now,
                                       multicast_ok=problem.multicast_ok)
            raise

    # ------------------------------------------------------------------ send

    def source_for(self, dst: int) -> int | None:
        return self.nd.addresses.source_for(dst)

    def send(self, dst: int, next_header: int, payload: bytes | memoryview, now: float, *, src: int | None = None,
             hop_limit: int | None = None, traffic_class: int = 0) -> None:
        """Route, fragment to the MTU and send (or queue behind neighbour discovery) one packet.
        Raises OSError (ENETUNREACH, EADDRNOTAVAIL, EMSGSIZE) as the kernel's sendto would."""
        self.timers_changed = True
        nd = self.nd
        if src is None:
            src = nd.addresses.source_for(dst)
            if src is None:
                raise OSError(errno.EADDRNOTAVAIL, "no IPv6 source address for this destination")
        if len(payload) > ipv6_wire.MAX_PAYLOAD:
            raise OSError(errno.EMSGSIZE, "message too long")
        hops = hop_limit or nd.hop_limit
        if nd.addresses.is_assigned(dst):
            self._loopback(src, dst, next_header, payload, hops, traffic_class, now)
            return
        if ipv6_wire.is_multicast(dst):
            next_hop, mac = dst, ipv6_wire.multicast_mac(dst)
        else:
            next_hop, mac = nd.route(dst), None
        mtu = self.mtu_for(dst, now)
        if ipv6_wire.HEADER_LEN + len(payload) <= mtu:
            packets = [ipv6_wire.build(src, dst, next_header, payload, hop_limit=hops, traffic_class=traffic_class)]
        else:
            packets = ipv6_wire.fragment(src, dst, next_header, payload, mtu, ident=self.next_ident(), hop_limit=hops,
                                         traffic_class=traffic_class)
        if mac is None:
            mac = nd.resolve(next_hop, packets[0], now)
            if mac is None:
                for packet in packets[1:]:
                    nd.resolve(next_hop, packet, now)  # queued behind the first
                return
        self.link.send_all(mac, ethernet.ETHERTYPE_IPV6, packets)

    def send_gso(self, src: int, dst: int, segment_bytes: bytes | memoryview, now: float, gso_size: int) -> None:
        """A TCP segment larger than the MTU, for the link to cut into ``gso_size``-byte pieces
        (segmentation offload, VIRTIO_NET_HDR_GSO_TCPV6): one GsoFrame, or the real wire segments queued
        while neighbour discovery resolves. Raises OSError ENETUNREACH like :meth:`send`."""
        self.timers_changed = True
        nd = self.nd
        header = ipv6_wire.build_header(src, dst, ipv6_wire.NH_TCP, len(segment_bytes), hop_limit=nd.hop_limit)
        next_hop = nd.route(dst)
        if self.point_to_point:
            self.link.send_frame(GsoFrame(header + segment_bytes, gso_size))
            self.counters["gso_frames_out"] += 1
            return
        entry = nd.neighbours.lookup(next_hop)
        if entry is None or entry.lladdr is None:
            frame = ethernet.header(b"\x00" * 6, self.link.mac, ethernet.ETHERTYPE_IPV6) + header + segment_bytes
            for piece in segment(frame, gso_size):
                nd.resolve(next_hop, piece[14:], now)
            return
        mac = nd.resolve(next_hop, b"", now)  # the entry's state moves as for any packet (7.3.3)
        self.link.send_frame(GsoFrame(ethernet.header(mac or entry.lladdr, self.link.mac, ethernet.ETHERTYPE_IPV6)
                                      + header + segment_bytes, gso_size))
        self.counters["gso_frames_out"] += 1

    def _loopback(self, src: int, dst: int, next_header: int, payload: bytes | memoryview, hops: int,
                  traffic_class: int, now: float) -> None:
        """Packets to our own address never reach the wire (as the kernel's lo)."""
        packet = ipv6_wire.build(src, dst, next_header, payload, hop_limit=hops, traffic_class=traffic_class)
        self.counters["ipv6.loopback"] += 1
        try:
            self.receive(memoryview(packet), True, now)
        except WireError as exc:
            self.counters.drop(exc.reason)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        return self.reassembler.next_deadline()

    def handle_timer(self, now: float) -> None:
        """Partial packets that waited too long: Time Exceeded, code 1, quoting the first fragment, if it
        came (RFC 8200 4.5)."""
        self.timers_changed = True
        for first in self.reassembler.expire(now):
            if self.errors is not None:
                try:
                    pkt = ipv6_wire.parse(first)
                except WireError:
                    continue
                self.errors.send_error(pkt, icmpv6_wire.TYPE_TIME_EXCEEDED, icmpv6_wire.CODE_REASSEMBLY_TIMEOUT, 0,
                                       now)
