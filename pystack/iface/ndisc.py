"""Neighbour discovery (RFC 4861) and address autoconfiguration (RFC 4862) for one interface: IPv6's
ARP and more. It owns the interface's IPv6 addresses (pystack.ip6.addresses), the neighbour cache
(pystack.ip6.neighbours), what routers advertise (pystack.ip6.routers) and the multicast groups
(pystack.iface.mld), turns their actions into frames, and routes: which next hop, and its MAC.

ND messages reach it from ICMPv6 (pystack.iface.icmpv6) after RFC 4861's validity checks of
pystack.wire.icmpv6; everything it sends it builds whole and puts on the link itself, so it needs
nothing from the IPv6 layer above it. Every address configured or gone is logged at info level with its
origin, and a duplicate found by DAD at warning.
"""

from __future__ import annotations

import errno
import logging
import math
import random
from typing import Callable

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.ethernet import EthernetLink
from pystack.iface.mld import Mld
from pystack.ip6 import neighbours as nc
from pystack.ip6.addresses import Action as AddressAction
from pystack.ip6.addresses import AddressEvent, AddressTable, DadProbe, Event, Origin, State
from pystack.ip6.neighbours import NeighbourCache
from pystack.ip6.routers import RouterDiscovery, SendRouterSolicitation
from pystack.wire import ethernet
from pystack.wire import icmpv6 as icmpv6_wire
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire.errors import WireError
from pystack.wire.icmpv6 import Icmpv6Message
from pystack.wire.ipv6 import Ipv6Packet

log = logging.getLogger("pystack")

AddressObserver = Callable[[AddressEvent, float], None]
"""Told each address event and the time it happened."""

_EVENT_WORDS = {Event.CONFIGURED: "configured", Event.DEPRECATED: "deprecated (its preferred lifetime ended)",
                Event.REMOVED: "removed"}


def _text(address: int) -> str:
    return ipv6_wire.int_to_addr(address)


class Ndisc:
    """ND, SLAAC and DAD of one interface. ``addresses``, ``neighbours``, ``routers`` and ``mld`` are the
    tables; ``gateway`` a default router set by hand (it goes before advertised ones)."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, rng: random.Random) -> None:
        cfg6 = config.ipv6
        self.config = cfg6
        self.counters = counters
        self.link = link
        self.addresses = AddressTable(cfg6, counters, link.mac, rng=rng.random, nonces=lambda: rng.randbytes(6))
        self.changes = 0
        """Counts the changes to what sending a packet reads here: an address event, a router advertisement,
        the timers' work (lifetimes, routers, prefixes), the gateway, a neighbour entry's state or
        link-layer address (the cache's ``changed``), a path MTU (pystack.iface.ipv6). A sender that
        remembers a route and a neighbour's MAC (pystack.iface.ipv6.Ipv6.way) trusts them while it is the
        same."""
        self.neighbours = NeighbourCache(cfg6, counters, rng=rng.random, changed=self.changed)
        self.routers = RouterDiscovery(cfg6, counters, link_mtu=config.mtu, rng=rng.random)
        self.mld = Mld(counters, link, rng, self.link_local)
        self.lladdr: bytes | None = link.mac
        """Our link-layer address for the options that carry it; None on a link without them (the IP
        medium's, pystack.iface.ip_link6.PointToPointNd: RFC 4861 4.3, "on link layers that have addresses")."""
        self._gateway: int | None = None
        self.observers: list[AddressObserver] = []
        """Told of every address event (added, configured, deprecated, removed, duplicate)."""
        self.ra_observers: list[Callable[[icmpv6_wire.RouterAdvertisement, float], None]] = []
        """Told of every valid router advertisement, after it is applied (its M and O flags start DHCPv6)."""
        self.started = False
        self._soliciting = False
        self._joined: set[int] = set()
        """Addresses whose solicited-node group we joined (left once, when they go or prove duplicate)."""

    def changed(self) -> None:
        self.changes += 1

    @property
    def gateway(self) -> int | None:
        return self._gateway

    @gateway.setter
    def gateway(self, gateway: int | None) -> None:
        self._gateway = gateway
        self.changes += 1

    # ------------------------------------------------------------------ the interface's addresses

    def start(self, now: float) -> None:
        """IPv6 comes up: listen to all-nodes, form the link-local address (DAD first); routers are
        solicited once it is usable (as Linux does, so the solicitation can carry our MAC)."""
        self.started = True
        self.mld.join(ipv6_wire.ALL_NODES, now)
        self._apply(self.addresses.start(now), now)

    def add(self, address: int, prefix_len: int, now: float, origin: Origin = Origin.STATIC, *,
            valid: float = math.inf, preferred: float = math.inf) -> None:
        """An address (tentative until DAD passes), static unless ``origin`` says otherwise, with lifetimes
        in seconds from ``now`` (a DHCPv6 lease's). Raises ValueError for one no interface may have."""
        if (ipv6_wire.is_multicast(address) or address in (ipv6_wire.UNSPECIFIED, ipv6_wire.LOOPBACK)
                or not 1 <= prefix_len <= 128):
            raise ValueError(f"{_text(address)}/{prefix_len} cannot be an interface's address")
        self._apply(self.addresses.add(address, prefix_len, origin, now, valid=valid, preferred=preferred), now)

    def remove(self, address: int, now: float) -> None:
        self._apply(self.addresses.remove(address), now)

    def link_local(self) -> int:
        """Our usable link-local address, or :: while there is none (MLD's and ND's source)."""
        for entry in self.addresses:
            if entry.origin is Origin.LINK_LOCAL and entry.usable:
                return entry.address
        return ipv6_wire.UNSPECIFIED

    def _apply(self, actions: list[AddressAction], now: float) -> None:
        for action in actions:
            if isinstance(action, DadProbe):
                self._dad_probe(action)
            else:
                self._address_event(action, now)

    def _dad_probe(self, probe: DadProbe) -> None:
        """RFC 4862 5.4.2: from ::, to the solicited-node group, with a nonce (RFC 7527)."""
        group = ipv6_wire.solicited_node(probe.address)
        msg = icmpv6_wire.build_ns(ipv6_wire.UNSPECIFIED, group, probe.address, nonce=probe.nonce)
        self.counters["ndisc.dad_probes_sent"] += 1
        self._send_nd(ipv6_wire.UNSPECIFIED, group, msg, ipv6_wire.multicast_mac(group))

    def _address_event(self, event: AddressEvent, now: float) -> None:
        self.changes += 1  # an address added, usable, deprecated, duplicate or gone: routes and sources move
        address, kind = event.address, event.event
        what = f"IPv6 address {_text(address)}/{event.prefix_len} ({event.origin.value})"
        if kind is Event.ADDED:
            self.mld.join(ipv6_wire.solicited_node(address), now)  # before the first probe (5.4.2)
            self._joined.add(address)
            log.debug("%s tentative: duplicate address detection", what)
        elif kind is Event.DUPLICATE:
            self._leave(address, now)
            log.warning("%s is in use by another node (DAD): not used", what)
        else:
            if kind is Event.REMOVED:
                self._leave(address, now)
            log.info("%s %s", what, _EVENT_WORDS[kind])
            if kind is Event.CONFIGURED and event.origin is Origin.LINK_LOCAL and not self._soliciting:
                self._soliciting = True
                self.routers.start(now)
        for observer in self.observers:
            observer(event, now)

    def _leave(self, address: int, now: float) -> None:
        if address in self._joined:
            self._joined.discard(address)
            self.mld.leave(ipv6_wire.solicited_node(address), now)

    # ------------------------------------------------------------------ routing (RFC 4861 5.2)

    def is_on_link(self, dst: int) -> bool:
        """Link-local and multicast destinations, those in an advertised on-link prefix, and those in the
        prefix of an address configured by hand (as Linux's prefix route for it); no other address's prefix
        makes anything on-link (RFC 5942 5: a SLAAC or DHCPv6 address waits for the prefixes' L flag)."""
        if self.routers.is_on_link(dst):
            return True
        # Asked for every packet sent: the table's own view (no copy), the prefix compared first.
        for entry in self.addresses.table.values():
            plen = entry.prefix_len
            if ((entry.address ^ dst) >> (128 - plen) == 0 and plen < 128 and entry.origin is Origin.STATIC
                    and entry.state is not State.DUPLICATE):
                return True
        return False

    def route(self, dst: int) -> int:
        """The next hop for a unicast ``dst``. Raises OSError ENETUNREACH with no way there."""
        if self.is_on_link(dst):
            return dst
        if self.gateway is not None:
            return self.gateway
        router = self.routers.default_router(self._maybe_reachable)
        if router is None:
            raise OSError(errno.ENETUNREACH, "network is unreachable")
        return router

    def _maybe_reachable(self, address: int) -> bool:
        """RFC 4861 6.3.6: a router whose resolution is under way or failed is passed over if another is
        known to be (or probably be) reachable."""
        entry = self.neighbours.lookup(address)
        return entry is not None and entry.state is not nc.State.INCOMPLETE

    @property
    def mtu(self) -> int:
        """The link's MTU for IPv6: ours, or less when a router's advertisement says so (RFC 4861 6.3.4)."""
        return self.routers.link_mtu

    @property
    def hop_limit(self) -> int:
        return self.routers.cur_hop_limit

    def resolve(self, next_hop: int, packet: bytes, now: float) -> bytes | None:
        """The MAC for ``next_hop``, or None with ``packet`` (a whole IPv6 packet) queued until the
        neighbour answers (RFC 4861 7.2.2)."""
        mac, actions = self.neighbours.resolve(next_hop, packet, now)
        self._neighbour_actions(actions, now)
        return mac

    def confirm(self, dst: int, now: float) -> float:
        """An upper layer has proof that packets to ``dst`` arrive (TCP's new data acknowledged, 7.3.1): the
        next hop they go to, the router for an off-link ``dst``, is REACHABLE. Returns how long that holds
        (ReachableTime)."""
        try:
            next_hop = self.route(dst)
        except OSError:
            pass
        else:
            self.neighbours.confirm(next_hop, now)
        return self.neighbours.reachable_time

    def _neighbour_actions(self, actions: list[nc.Action], now: float) -> list[bytes]:
        """Send what the neighbour cache asks; return the packets of resolutions that failed."""
        failed: list[bytes] = []
        for action in actions:
            if isinstance(action, nc.Solicit):
                self._solicit(action.target, action.lladdr)
            elif isinstance(action, nc.Release):
                self.link.send_all(action.lladdr, ethernet.ETHERTYPE_IPV6, action.packets)
            elif isinstance(action, nc.Unreachable):
                failed += action.packets
            else:  # RouterLost (7.2.5): no longer a default router
                self.routers.routers.pop(action.target, None)
                self.changes += 1
        return failed

    def _solicit(self, target: int, lladdr: bytes | None) -> None:
        """Resolve (to the solicited-node group) or probe (unicast) ``target`` (RFC 4861 7.2.2, 7.3.3)."""
        src = self.addresses.source_for(target)
        if src is None:
            self.counters.drop("ndisc.no_source_address")
            return
        if lladdr is None:
            dst, mac = ipv6_wire.solicited_node(target), None
        else:
            dst, mac = target, lladdr
        if mac is None:
            mac = ipv6_wire.multicast_mac(dst)
        self.counters["ndisc.ns_sent"] += 1
        self._send_nd(src, dst, icmpv6_wire.build_ns(src, dst, target, source_lladdr=self.lladdr), mac)

    def _send_nd(self, src: int, dst: int, message: bytes, mac: bytes) -> None:
        """An ND message, hop limit 255 (RFC 4861 7.1: the proof it never left the link)."""
        packet = ipv6_wire.build(src, dst, ipv6_wire.NH_ICMPV6, message, hop_limit=icmpv6_wire.ND_HOP_LIMIT)
        self.link.send(mac, ethernet.ETHERTYPE_IPV6, packet)

    # ------------------------------------------------------------------ receive (from ICMPv6)

    def receive(self, pkt: Ipv6Packet, msg: Icmpv6Message, fragmented: bool, now: float) -> None:
        """An ND message (types 133 to 137); raises WireError for what RFC 4861 says to discard."""
        mtype = msg.type
        if mtype == icmpv6_wire.TYPE_NEIGHBOUR_SOLICITATION:
            self._on_ns(pkt, msg, fragmented, now)
        elif mtype == icmpv6_wire.TYPE_NEIGHBOUR_ADVERTISEMENT:
            self._on_na(pkt, msg, fragmented, now)
        elif mtype == icmpv6_wire.TYPE_ROUTER_ADVERTISEMENT:
            self._on_ra(pkt, msg, fragmented, now)
        elif mtype == icmpv6_wire.TYPE_ROUTER_SOLICITATION:
            icmpv6_wire.parse_rs(msg, src=pkt.src, hop_limit=pkt.hop_limit, fragmented=fragmented)
            raise WireError("ndisc.rs_ignored")  # hosts discard them (RFC 4861 6.2.6)
        else:
            icmpv6_wire.parse_redirect(msg, src=pkt.src, hop_limit=pkt.hop_limit, fragmented=fragmented)
            raise WireError("ndisc.redirect_ignored")  # our routes come from RAs and the gateway only

    def _count_skipped(self, invalid: int) -> None:
        """Options the message is used without (a wrong length, a second of a kind that comes once: RFC 4861
        4.6) are bad input dropped, so counted."""
        if invalid:
            self.counters["drop.ndisc.invalid_option"] += invalid

    def _on_ns(self, pkt: Ipv6Packet, msg: Icmpv6Message, fragmented: bool, now: float) -> None:
        """RFC 4861 7.2.3 and RFC 4862 5.4.3."""
        ns = icmpv6_wire.parse_ns(msg, src=pkt.src, dst=pkt.dst, hop_limit=pkt.hop_limit, fragmented=fragmented)
        self._count_skipped(ns.options.invalid)
        entry = self.addresses.get(ns.target)
        if entry is None or entry.state is State.DUPLICATE:
            raise WireError("ndisc.ns_not_for_us")
        self.counters["ndisc.ns_received"] += 1
        if entry.state is State.TENTATIVE:
            self._apply(self.addresses.on_solicitation(ns.target, pkt.src, ns.options.nonce, now), now)
            return
        lladdr = ns.options.source_lladdr
        if pkt.src == ipv6_wire.UNSPECIFIED:
            # Another node's DAD for our address: defend it, to all nodes (7.2.4).
            self._advertise(ns.target, ipv6_wire.ALL_NODES, False, ipv6_wire.multicast_mac(ipv6_wire.ALL_NODES), now)
            return
        if lladdr is None:
            if ipv6_wire.is_multicast(pkt.dst):
                raise WireError("ndisc.ns_without_lladdr")  # 7.2.3: a multicast one must carry it
        else:
            self._neighbour_actions(self.neighbours.learn(pkt.src, lladdr, now), now)
        self._advertise(ns.target, pkt.src, True, lladdr, now)

    def _advertise(self, target: int, dst: int, solicited: bool, mac: bytes | None, now: float) -> None:
        """A neighbour advertisement for our ``target``, override set (7.2.4: not an anycast address)."""
        msg = icmpv6_wire.build_na(target, dst, target, solicited=solicited, override=True,
                                   target_lladdr=self.lladdr)
        self.counters["ndisc.na_sent"] += 1
        if mac is None:
            packet = ipv6_wire.build(target, dst, ipv6_wire.NH_ICMPV6, msg, hop_limit=icmpv6_wire.ND_HOP_LIMIT)
            mac = self.resolve(dst, packet, now)
            if mac is None:
                return  # queued until the asker resolves (a unicast solicitation without its lladdr)
            self.link.send(mac, ethernet.ETHERTYPE_IPV6, packet)
            return
        self._send_nd(target, dst, msg, mac)

    def _on_na(self, pkt: Ipv6Packet, msg: Icmpv6Message, fragmented: bool, now: float) -> None:
        """RFC 4861 7.2.5 and RFC 4862 5.4.4."""
        na = icmpv6_wire.parse_na(msg, dst=pkt.dst, hop_limit=pkt.hop_limit, fragmented=fragmented)
        self._count_skipped(na.options.invalid)
        self.counters["ndisc.na_received"] += 1
        entry = self.addresses.get(na.target)
        if entry is not None and entry.state is not State.DUPLICATE:
            self._apply(self.addresses.on_advertisement(na.target, now), now)
            return
        self._neighbour_actions(self.neighbours.on_advertisement(
            na.target, na.options.target_lladdr, now, solicited=na.solicited, override=na.override,
            router=na.router), now)

    def _on_ra(self, pkt: Ipv6Packet, msg: Icmpv6Message, fragmented: bool, now: float) -> None:
        """RFC 4861 6.3.4, RFC 4862 5.5.3, RFC 8106."""
        ra = icmpv6_wire.parse_ra(msg, src=pkt.src, hop_limit=pkt.hop_limit, fragmented=fragmented)
        self._count_skipped(ra.options.invalid)
        self.counters["ndisc.ra_received"] += 1
        routers = self.routers
        known = pkt.src in routers.routers
        routers.on_advertisement(pkt.src, ra, now)
        self.changes += 1  # routers, prefixes, the link's MTU or hop limit may have changed
        if not known and pkt.src in routers.routers:
            log.info("IPv6 default router %s (router advertisement, lifetime %d s)", _text(pkt.src),
                     ra.router_lifetime)
        self.neighbours.set_timers(now, base_reachable_time=routers.base_reachable_time,
                                   retrans_timer=routers.retrans_timer)
        if routers.retrans_timer:
            self.addresses.retrans_timer = routers.retrans_timer
        self._neighbour_actions(self.neighbours.learn(pkt.src, ra.options.source_lladdr, now, router=True), now)
        for info in ra.options.prefixes:
            self._apply(self.addresses.on_prefix(info, now), now)
        for observer in self.ra_observers:
            observer(ra, now)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        best = math.inf
        for d in (self.addresses.next_deadline(), self.neighbours.next_deadline(), self.routers.next_deadline(),
                  self.mld.next_deadline()):
            if d is not None and d < best:
                best = d
        return None if best == math.inf else best

    def handle_timer(self, now: float) -> list[bytes]:
        """Run what is due; return the packets whose neighbour never answered (7.2.2: each earns an
        address unreachable error to its sender)."""
        self._apply(self.addresses.poll(now), now)
        failed = self._neighbour_actions(self.neighbours.poll(now), now)
        self.changes += 1  # routers and prefixes whose lifetime ended went without a word
        for action in self.routers.poll(now):
            if isinstance(action, SendRouterSolicitation):
                self._router_solicitation()
            else:
                log.info("IPv6 default router %s gone (its lifetime ended)", _text(action.address))
        self.mld.handle_timer(now)
        return failed

    def _router_solicitation(self) -> None:
        """To all routers, from our link-local address with our MAC, or from :: without (RFC 4861 6.3.7)."""
        src = self.link_local()
        lladdr = self.lladdr if src != ipv6_wire.UNSPECIFIED else None
        self.counters["ndisc.rs_sent"] += 1
        self._send_nd(src, ipv6_wire.ALL_ROUTERS,
                      icmpv6_wire.build_rs(src, ipv6_wire.ALL_ROUTERS, source_lladdr=lladdr),
                      ipv6_wire.multicast_mac(ipv6_wire.ALL_ROUTERS))
