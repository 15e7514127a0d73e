"""What routers advertise (RFC 4861 section 6.3, RFC 8106): the default router list, the on-link prefix
list, the DNS servers, the link's MTU, hop limit and ND timers, and the router solicitations a host
sends until an advertisement comes.

Addresses formed from the same advertisements are :mod:`pystack.ip6.addresses`' (SLAAC), and the
routers' link-layer addresses the neighbour cache's: the layer hands each part of an RA to its owner.
Sans-I/O with a fake clock; every list is bounded in :class:`pystack.ip6.config.Ipv6Config`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from pystack.counters import Counters
from pystack.ip6.config import Ipv6Config
from pystack.wire import ipv6
from pystack.wire.icmpv6 import INFINITE_LIFETIME, RouterAdvertisement


@dataclass(slots=True)
class DefaultRouter:
    address: int
    expires: float
    preference: int
    """RFC 4191: -1 low, 0 medium, 1 high."""


@dataclass(slots=True)
class OnLinkPrefix:
    prefix: int
    prefix_len: int
    expires: float


@dataclass(slots=True)
class DnsServer:
    address: int
    expires: float


class SendRouterSolicitation(NamedTuple):
    """Send a router solicitation to all routers (ff02::2), from a usable link-local address with its
    link-layer address, or from :: without one (RFC 4861 6.3.7)."""


class RouterExpired(NamedTuple):
    """A default router's lifetime ended (or it advertised 0): destinations through it need another."""

    address: int


Action = SendRouterSolicitation | RouterExpired


class RouterDiscovery:
    def __init__(self, config: Ipv6Config, counters: Counters, *, link_mtu: int = 1500,
                 rng: Callable[[], float] = random.random) -> None:
        self.config = config
        self.counters = counters
        self.rng = rng
        self.max_link_mtu = link_mtu
        self.link_mtu = link_mtu
        """The MTU to send with: the link's, or less when an RA's MTU option says so (RFC 4861 6.3.4)."""
        self.cur_hop_limit = config.default_hop_limit
        self.base_reachable_time: float | None = None
        """Seconds, when an RA specified it: the neighbour cache's to apply (so is ``retrans_timer``)."""
        self.retrans_timer: float | None = None
        self.routers: dict[int, DefaultRouter] = {}
        self.prefixes: dict[tuple[int, int], OnLinkPrefix] = {}
        self.dns_servers: dict[int, DnsServer] = {}
        self.solicitations_sent = 0
        self.next_solicitation = math.inf

    # --- router solicitation (6.3.7) ---------------------------------------------------------------------

    def start(self, now: float) -> None:
        """The interface came up: solicit after a random delay up to MAX_RTR_SOLICITATION_DELAY."""
        self.solicitations_sent = 0
        self.next_solicitation = now + self.rng() * self.config.max_rtr_solicitation_delay

    # --- advertisements (6.3.4) -------------------------------------------------------------------------

    def on_advertisement(self, src: int, ra: RouterAdvertisement, now: float) -> list[Action]:
        """A validated router advertisement from ``src``. Its prefixes' A flags are the address
        table's; the parameters it sets are left in the attributes for the layer to apply."""
        actions: list[Action] = []
        if ra.router_lifetime:
            self.next_solicitation = math.inf  # a router answered: stop soliciting
        if ra.cur_hop_limit:
            self.cur_hop_limit = ra.cur_hop_limit
        if ra.reachable_time:
            self.base_reachable_time = ra.reachable_time / 1000
        if ra.retrans_timer:
            self.retrans_timer = ra.retrans_timer / 1000
        router = self.routers.get(src)
        if ra.router_lifetime == 0:
            if router is not None:
                del self.routers[src]
                actions.append(RouterExpired(src))
        elif router is not None:
            router.expires = now + ra.router_lifetime
            router.preference = ra.preference
        elif len(self.routers) < self.config.max_default_routers:
            self.routers[src] = DefaultRouter(src, now + ra.router_lifetime, ra.preference)
        else:
            self.counters.drop("ndisc.router_list_full")
        mtu = ra.options.mtu
        if mtu is not None:
            if ipv6.MIN_MTU <= mtu <= self.max_link_mtu:
                self.link_mtu = mtu
            else:
                self.counters.drop("ndisc.bad_mtu")
        for info in ra.options.prefixes:
            if info.on_link and not ipv6.is_link_local(info.prefix):
                self._on_link(info.prefix, info.prefix_len, info.valid_lifetime, now)
        for rdnss in ra.options.rdnss:
            for server in rdnss.servers:
                self._dns_server(server, rdnss.lifetime, now)
        return actions

    def _on_link(self, prefix: int, prefix_len: int, valid: int, now: float) -> None:
        key = (prefix, prefix_len)
        entry = self.prefixes.get(key)
        if valid == 0:
            self.prefixes.pop(key, None)  # a known prefix times out now; an unknown one is ignored
        elif entry is not None:
            entry.expires = now + _seconds(valid)
        elif len(self.prefixes) < self.config.max_onlink_prefixes:
            self.prefixes[key] = OnLinkPrefix(prefix, prefix_len, now + _seconds(valid))
        else:
            self.counters.drop("ndisc.prefix_list_full")

    def _dns_server(self, address: int, lifetime: int, now: float) -> None:
        """RFC 8106 5.3.1: lifetime 0 deletes, a known server is refreshed, a new one is added; when the
        list is full the one expiring soonest makes room, if the new one outlives it."""
        entry = self.dns_servers.get(address)
        expires = now + _seconds(lifetime)
        if lifetime == 0:
            self.dns_servers.pop(address, None)
        elif entry is not None:
            entry.expires = expires
        elif len(self.dns_servers) < self.config.max_dns_servers:
            self.dns_servers[address] = DnsServer(address, expires)
        else:
            soonest = min(self.dns_servers.values(), key=lambda s: s.expires)
            if soonest.expires < expires:
                del self.dns_servers[soonest.address]
                self.dns_servers[address] = DnsServer(address, expires)
            else:
                self.counters.drop("ndisc.dns_server_list_full")

    # --- timers --------------------------------------------------------------------------------------------

    def poll(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if now >= self.next_solicitation:
            self.solicitations_sent += 1
            actions.append(SendRouterSolicitation())
            more = self.solicitations_sent < self.config.max_rtr_solicitations
            self.next_solicitation = now + self.config.rtr_solicitation_interval if more else math.inf
        for router in [r for r in self.routers.values() if r.expires <= now]:
            del self.routers[router.address]
            actions.append(RouterExpired(router.address))
        for key in [k for k, p in self.prefixes.items() if p.expires <= now]:
            del self.prefixes[key]
        for address in [a for a, s in self.dns_servers.items() if s.expires <= now]:
            del self.dns_servers[address]
        return actions

    def next_deadline(self) -> float | None:
        times = [self.next_solicitation]
        times += [r.expires for r in self.routers.values()]
        times += [p.expires for p in self.prefixes.values()]
        times += [s.expires for s in self.dns_servers.values()]
        deadline = min(times)
        return None if deadline == math.inf else deadline

    # --- lookups (RFC 4861 5.2: next-hop determination) ------------------------------------------------------

    def is_on_link(self, address: int) -> bool:
        """Link-local addresses and those in an advertised on-link prefix are reached directly."""
        if ipv6.is_link_local(address) or ipv6.is_multicast(address):
            return True
        # Asked for every packet sent (through Ndisc.route): a plain loop, no generator to build.
        for p in self.prefixes.values():
            if address >> (128 - p.prefix_len) == p.prefix >> (128 - p.prefix_len):
                return True
        return False

    def default_router(self, reachable: Callable[[int], bool] = lambda _address: True) -> int | None:
        """The router for off-link destinations (6.3.6): the most preferred (RFC 4191) of those
        ``reachable`` does not rule out, the first advertised among equals; else any."""
        if not self.routers:
            return None
        ranked = sorted(self.routers.values(), key=lambda r: -r.preference)
        for router in ranked:
            if reachable(router.address):
                return router.address
        return ranked[0].address

    def dns(self) -> list[int]:
        return list(self.dns_servers)


def _seconds(lifetime: int) -> float:
    return math.inf if lifetime == INFINITE_LIFETIME else float(lifetime)
