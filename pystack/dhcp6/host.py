"""Runs a :class:`Dhcp6Client` on a :class:`~pystack.stack.Stack`: the glue between the two sans-I/O parts.

It binds UDP port 546 over IPv6 and sends the client's messages to ff02::1:2 port 547 from the
link-local address (RFC 8415 section 7.1), so it starts the client only once that address is usable.
What starts it: a router advertisement's M flag (stateful) or O flag without M (stateless), as
systemd-networkd does, or the owner (``pystack run --dhcp6``) at once. A leased address goes into the
interface's table with origin DHCPv6 and the lease's lifetimes, through DAD, as a /128: RFC 8415's IA
Address option carries no prefix length, and an address implies no on-link prefix (RFC 5942 5), so Linux's
DHCPv6 clients (systemd-networkd, NetworkManager) add a /128 and leave on-link to the router
advertisements' prefixes, which Ndisc.is_on_link follows as they come and go; a duplicate is declined; the
address goes when its lease ends. The DNS servers of the last Reply are in :attr:`Dhcp6Host.dns_servers`.
Each callback runs the client at the time its event came (``UdpEndpoint.event_time``, the address
event's time), not at ``Stack.now``, which is only the time of whatever the stack was last given.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from pystack.dhcp6.client import Declined, Dhcp6Client, Event, Informed, Leased, LeaseEnded, Mode, Released, State
from pystack.ip6.addresses import AddressEvent, Origin
from pystack.ip6.addresses import Event as AddressEventKind
from pystack.reasons import udp_key
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire.dhcp6 import ALL_DHCP_RELAY_AGENTS_AND_SERVERS, CLIENT_PORT, SERVER_PORT
from pystack.wire.icmpv6 import RouterAdvertisement

if TYPE_CHECKING:
    from pystack.stack import Stack

log = logging.getLogger("pystack")

EXIT_ATTEMPTS = 1
"""Releases an owner on its way out sends (``pystack run`` stopped, ``pystack fetch --release``): it waits
for the Reply or the first REL_TIMEOUT (~1 s), whichever comes first, as Linux's clients hold shutdown only
briefly, not for RFC 8415's REL_MAX_RC 4 (~15 s)."""


class Dhcp6Host:
    def __init__(self, stack: Stack, client: Dhcp6Client, on_event: Callable[[Event], None] | None = None) -> None:
        self.stack = stack
        self.client = client
        self.on_event = on_event
        self.endpoint = stack.udp6.bind(0, CLIENT_PORT)
        self.dns_servers: tuple[int, ...] = ()
        self.domains: tuple[str, ...] = ()
        self.leased: dict[int, Leased] = {}
        """The addresses the client holds, as last leased or renewed."""
        self._wanted: Mode | None = None
        """The mode asked for before the link-local address was usable: started when it is."""

    @classmethod
    def attach(cls, stack: Stack, *, rng: random.Random | None = None, client: Dhcp6Client | None = None,
               on_event: Callable[[Event], None] | None = None, follow_ra: bool = True) -> Dhcp6Host:
        """A host wired into ``stack``'s hooks: timer source, IPv6 address events, router advertisements
        (``follow_ra``: their M and O flags start the client) and port 546 datagrams as they arrive."""
        if client is None:
            client = Dhcp6Client(stack.mac, rng or stack.rng, counters=stack.counters)
        host = cls(stack, client, on_event)
        stack.timer_sources.append(host)
        stack.address6_observers.append(host.on_address_event)
        if follow_ra:
            stack.nd.ra_observers.append(host.on_router_advertisement)
        host.endpoint.on_event = lambda endpoint: host.poll(endpoint.event_time)
        return host

    # ------------------------------------------------------------------ starting

    def start(self, mode: Mode, now: float) -> None:
        """Start (or switch to) ``mode`` once the link-local address is usable (now, if it is)."""
        if self.stack.nd.link_local() == ipv6_wire.UNSPECIFIED:
            self._wanted = mode
            return
        self._wanted = None
        self.client.start(mode, now)
        self.poll(now)

    def acquiring(self) -> bool:
        """Whether a stateful exchange is under way with no address leased yet (an address is on its way)."""
        if self._wanted is Mode.STATEFUL:
            return True
        client = self.client
        return client.mode is Mode.STATEFUL and client.state in (State.SOLICITING, State.REQUESTING)

    def on_router_advertisement(self, ra: RouterAdvertisement, now: float) -> None:
        """RFC 4861 4.2: M says addresses come from DHCPv6, O (without M) that other configuration does."""
        if ra.managed:
            self.start(Mode.STATEFUL, now)
        elif ra.other and self.client.mode is None and self._wanted is None:
            self.start(Mode.STATELESS, now)

    def on_address_event(self, event: AddressEvent, now: float) -> None:
        kind = event.event
        if kind is AddressEventKind.CONFIGURED and event.origin is Origin.LINK_LOCAL and self._wanted is not None:
            self.start(self._wanted, now)
        elif kind is AddressEventKind.DUPLICATE and event.origin is Origin.DHCPV6 and event.address in self.leased:
            self.client.address_duplicate(event.address, now)
            self.poll(now)

    # ------------------------------------------------------------------ the timer source

    def get_timer(self) -> float | None:
        return self.client.get_timer()

    def handle_timer(self, now: float) -> None:
        deadline = self.client.get_timer()
        if deadline is not None and deadline <= now:
            self.client.handle_timer(now)
        self.poll(now)

    def release(self, now: float, attempts: int | None = None) -> None:
        """On clean shutdown: the leased addresses leave the table and Release goes out (RFC 8415 18.2.7);
        the owner keeps the loop turning while :attr:`releasing` (``attempts``: see Dhcp6Client.release).
        To ff02::1:2, so no neighbour has to answer first."""
        self.client.release(now, attempts)
        self.poll(now)

    @property
    def releasing(self) -> bool:
        """Whether a Release waits for its Reply: the loop must keep running to hear it."""
        return self.client.releasing

    # ------------------------------------------------------------------ moving datagrams and events

    def poll(self, now: float) -> None:
        """Move everything between the endpoint, the client and the stack until quiet."""
        counters = self.stack.counters
        for _ in range(self.client.config.host_rounds):
            busy = False
            while (item := self.endpoint.recvfrom()) is not None:
                data, (_src, sport) = item
                if sport != SERVER_PORT:
                    counters.drop("dhcp6.wrong_source_port")
                    continue
                self.client.receive(data, now)
            for dgram in self.client.datagrams_to_send():
                busy = True
                self._send(dgram.payload, dgram.why, now)
            for event in self.client.events():
                busy = True
                self._apply(event, now)
            if not busy:
                return

    def _send(self, payload: bytes, why: str, now: float) -> None:
        stack = self.stack
        dst = ALL_DHCP_RELAY_AGENTS_AND_SERVERS
        src = stack.nd.link_local()
        if src == ipv6_wire.UNSPECIFIED:
            stack.counters.drop("dhcp6.no_link_local")  # the client retransmits: it goes out later
            return
        if stack.why is not None and why:
            stack.why(udp_key(src, dst, CLIENT_PORT, SERVER_PORT), why)
        try:
            self.endpoint.sendto(payload, (dst, SERVER_PORT), now)
        except OSError:
            stack.counters.drop("dhcp6.unsendable")

    def _apply(self, event: Event, now: float) -> None:
        stack = self.stack
        if isinstance(event, Leased):
            if not event.renewed:
                log.info("DHCPv6: leased %s/128 (preferred %s, valid %s; renew at %s)",
                         ipv6_wire.int_to_addr(event.address), _s(event.preferred), _s(event.valid), _s(event.t1))
            try:
                stack.add_address6(event.address, 128, now, origin=Origin.DHCPV6, valid=event.valid,
                                   preferred=event.preferred)
            except ValueError:
                stack.counters.drop("dhcp6.unusable_address")
            else:
                self.leased[event.address] = event
        elif isinstance(event, LeaseEnded):
            log.info("DHCPv6: lease of %s ended (%s)", ipv6_wire.int_to_addr(event.address), event.reason)
            if self.leased.pop(event.address, None) is not None:
                stack.remove_address6(event.address, now)
        elif isinstance(event, Declined):
            log.warning("DHCPv6: declined %s (another node uses it)", ipv6_wire.int_to_addr(event.address))
            if self.leased.pop(event.address, None) is not None:
                stack.remove_address6(event.address, now)
        elif isinstance(event, Released):
            addresses = ", ".join(map(ipv6_wire.int_to_addr, event.addresses))
            if event.status is None:
                log.info("DHCPv6: no Reply to the Release of %s; not waiting longer", addresses)
            else:
                log.info("DHCPv6: Release of %s acknowledged by the server (%s)", addresses, event.status)
        elif isinstance(event, Informed):
            if (event.dns_servers, event.domains) != (self.dns_servers, self.domains):
                log.info("DHCPv6: DNS servers %s%s", ", ".join(map(ipv6_wire.int_to_addr, event.dns_servers)) or "none",
                         f" (search {', '.join(event.domains)})" if event.domains else "")
            self.dns_servers, self.domains = event.dns_servers, event.domains
        if self.on_event is not None:
            self.on_event(event)


def _s(seconds: float) -> str:
    return "infinite" if not math.isfinite(seconds) else f"{seconds:g} s"
