"""The IP medium's IPv6 (pystack.medium, pystack.iface.ip_link): neighbour discovery's place on a link with
no link-layer addresses, as a TUN is, following what Linux does on a point-to-point IFF_NOARP device."""

from __future__ import annotations

import dataclasses
import random

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.ethernet import EthernetLink
from pystack.iface.ip_link import NO_LINK_ADDRESS
from pystack.iface.ndisc import Ndisc
from pystack.ip6.addresses import AddressTable
from pystack.ip6.config import IID_STABLE
from pystack.wire import ipv6 as ipv6_wire


class PointToPointNd(Ndisc):
    """Neighbour discovery's place on the IP medium, as Linux runs IPv6 on a TUN (IFF_POINTOPOINT |
    IFF_NOARP, no link-layer address):

    - every next hop is resolved at once with :data:`NO_LINK_ADDRESS` (nothing queued, no solicitation:
      Linux's ndisc_constructor gives such a device's neighbours NUD_NOARP), and a destination with no
      route goes to the peer, which routes it (a "dev tun0" route);
    - no duplicate address detection: its solicitations could only reach the peer, and Linux skips it on
      an IFF_NOARP device (addrconf_dad_begin), so every address is usable at once;
    - the interface identifiers are stable and opaque (RFC 7217), from a random secret unless one is
      configured, as Linux's IN6_ADDR_GEN_MODE_RANDOM for a device with no EUI-64;
    - no link-layer address options (RFC 4861 4.3-4.4: only on link layers that have addresses).

    Router solicitations, advertisements (SLAAC over the TUN) and MLD work as on Ethernet."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, rng: random.Random) -> None:
        super().__init__(config, counters, link, rng)
        cfg6 = config.ipv6
        secret = cfg6.stable_secret if cfg6.iid_mode == IID_STABLE else rng.randbytes(16)
        self.addresses = AddressTable(
            dataclasses.replace(cfg6, dad_transmits=0, iid_mode=IID_STABLE, stable_secret=secret), counters,
            link.mac, rng=rng.random, nonces=lambda: rng.randbytes(6))
        self.lladdr = None

    def start(self, now: float) -> None:
        """IPv6 comes up: all-nodes joined, and the link-local address usable at once (no DAD, so no
        random delay before its first probe either)."""
        self.started = True
        self.mld.join(ipv6_wire.ALL_NODES, now)
        self._apply(self.addresses.start(now, delay=0.0), now)

    def route(self, dst: int) -> int:
        try:
            return super().route(dst)
        except OSError:
            return dst  # the peer routes what no prefix or router claims

    def resolve(self, next_hop: int, packet: bytes, now: float) -> bytes:
        return NO_LINK_ADDRESS
