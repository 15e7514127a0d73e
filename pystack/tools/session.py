"""A client session on pystack: the TAP, the stack in its loop thread, an address (DHCP or static) and
IPv6 (link-local, then SLAAC from the routers' advertisements), names resolved over pystack's own UDP
(and TCP), connections over pystack's own TCP with the address families raced as RFC 8305 says.

It is what ``pystack fetch``, ``resolve`` and ``ping`` share. Every step is told to a
:class:`~pystack.tools.narrator.Narrator`; the frames themselves are told by the wire watcher, which
sits between the Runtime and the TAP (:class:`~pystack.tools.observe.ObservedLink`).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pystack.api.families import Where
from pystack.api.names import Names
from pystack.api.socket import AF_INET, AF_INET6, TcpSocket
from pystack.api.tls import TlsSocket
from pystack.config import StackConfig
from pystack.control.server import ControlError, ControlServer
from pystack.dhcp import Bound, Declined, DhcpClient, DhcpConfig, Failed, LeaseLost, ProbeAddress
from pystack.dhcp.client import Event
from pystack.dhcp.host import DhcpHost
from pystack.dhcp6 import Declined as Declined6
from pystack.dhcp6 import Informed, Leased, LeaseEnded, Released
from pystack.dhcp6.client import Event as Dhcp6Event
from pystack.dhcp6.host import EXIT_ATTEMPTS, Dhcp6Host
from pystack.dns import DnsError, Query
from pystack.dns import servers as nameservers
from pystack.ip6.addresses import AddressEvent, Event, Origin
from pystack.ip6.addresses import State as AddressState
from pystack.medium import Medium
from pystack.reasons import explain_frames
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.tcp.connection import Connection
from pystack.tcp.state import State
from pystack.trace import TraceWriter
from pystack.errors import CommandError, SetupError
from pystack.tools.happy_eyeballs import IPV4, IPV6, CancelAttempt, Candidate, HappyEyeballs, StartAttempt
from pystack.tools.narrator import (
    Narrator, describe_lease, describe_resolution, endpoint, host, ip, ip6, ms, seconds,
)
from pystack.tools.observe import ObservedLink, StateWatcher, WireNarration
from pystack.wire import dns as dns_wire
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire.ethernet import mac_to_str

log = logging.getLogger("pystack")

RELEASE_GRACE = 1.0
"""Seconds the loop keeps running after a DHCPRELEASE so that ARP can resolve the server and send it."""
DHCP_SAFETY = 10.0
"""Extra seconds to wait past the DHCP client's own give-up time before declaring the loop stuck."""
IPV6_SETTLE = 10.0
"""Seconds from IPv6's start that a command waits, when it needs IPv6, for a global address and a
router: enough for the link-local address's DAD, two router solicitations (RFC 4861 10: 4 s apart) and
the SLAAC address's DAD."""
RA_WAIT = 1.0
"""Seconds after the first router solicitation that an advertisement is awaited when IPv4 is there to
fall back on (RFC 4861 10: a router answers within MAX_RA_DELAY_TIME, 0.5 s), so that a name with AAAA
records on a network without IPv6 costs about a second, not the whole solicitation schedule."""
DNS_JOIN = 5.0
"""Seconds to let the resolver thread finish after the race is won (its answers fill the cache)."""
_QTYPE = {IPV6: dns_wire.TYPE_AAAA, IPV4: dns_wire.TYPE_A}
_RECORD = {IPV6: "AAAA", IPV4: "A"}


@dataclass
class Setup:
    """The flags every client command shares."""

    tap: str = "pst0"
    """The device to open: a TAP, or a TUN on the IP ``medium``."""
    fd: int | None = None
    """A TUN/TAP descriptor (or packet socket) handed over, used instead of opening ``tap``."""
    medium: Medium | None = None
    """What the link carries; None: Ethernet for ``tap``, what the device is for ``fd``."""
    mac: bytes = b""
    mtu: int = 1500
    address: ipaddress.IPv4Interface | None = None
    """Static address; None means DHCP."""
    gateway: ipaddress.IPv4Address | None = None
    address6: ipaddress.IPv6Interface | None = None
    """A static IPv6 address, beside what routers advertise (on a TUN, where none may, the way to have one)."""
    gateway6: ipaddress.IPv6Address | None = None
    """The default IPv6 router, instead of the advertised ones (on a TUN the peer takes what none claims)."""
    dns: list[Where] = field(default_factory=list)
    """DNS servers (IPv4 or IPv6) to use instead of those the lease, the routers or DHCPv6 name."""
    host_address: ipaddress.IPv4Interface | None = None
    dhcp_timeout: float = 60.0
    release: bool = False
    """Give the lease back on exit (otherwise it is left to run out, as a one-shot client does)."""
    pcap: str | None = None
    ladder_svg: str | None = None
    trace: str | None = None
    """Where to write TCP's connection events (pystack.trace), if anywhere."""
    """Where to draw the session's ladder diagram as SVG, if anywhere."""
    control: str | None = None
    """The control socket to serve for pystack ss and stats, if any (pystack exec's)."""
    timeout: float = 30.0
    """Seconds for a TCP connect, and for the peer to send something while we wait for it."""
    family: int = 0
    """0: both IPv6 and IPv4 (names asked for AAAA and A, connections raced); 4 or 6: that one only
    (``-4``: IPv6 is not even started; ``-6``: IPv4 is still leased, and DNS goes to the IPv6 servers
    when there are any, else to the IPv4 ones)."""

    @property
    def dhcp(self) -> bool:
        return self.address is None

    @property
    def families(self) -> list[int]:
        """The families to ask names for, in RFC 8305's order: AAAA first."""
        return [self.family] if self.family else [IPV6, IPV4]


class ClientSession:
    def __init__(self, setup: Setup, narrator: Narrator) -> None:
        self.setup = setup
        self.n = narrator
        self.rng = random.SystemRandom()  # RFC 5452 and RFC 2131: unpredictable IDs and ports
        self.stack: Stack | None = None
        self.runtime: Runtime | None = None
        self.wire: WireNarration | None = None
        self.states = StateWatcher(narrator)
        self.dhcp: DhcpHost | None = None
        self.lease: Bound | None = None
        self.failure: str | None = None
        self.dhcp6_dns: list[int] = []
        """DNS servers a DHCPv6 reply named (RFC 3646), IPv6 addresses as ints: the DHCPv6 client sets
        this (in the loop thread, under the runtime's lock) and :meth:`dns_servers` reads it with the
        lease's and the routers'."""
        self.dhcp6: Dhcp6Host | None = None
        """The DHCPv6 client on the stack, started by a router advertisement's M or O flag."""
        self.names: Names | None = None
        self._thread: threading.Thread | None = None
        self.control: ControlServer | None = None
        self.trace: TraceWriter | None = None
        self.ipv6_started: float | None = None
        """When IPv6 was brought up (None: it is off, with -4 or on a link that cannot carry it)."""
        self._resolvers: list[threading.Thread] = []

    # ------------------------------------------------------------------ the link and the loop

    def open(self) -> None:
        from pystack.link.setup import LinkSetupError, open_link

        s = self.setup
        try:
            link, pcap = open_link(s.tap, s.mtu, pcap=s.pcap, host_address=s.host_address, fd=s.fd, medium=s.medium)
        except LinkSetupError as exc:
            raise SetupError(str(exc)) from None
        self.stack = stack = Stack(s.mac, StackConfig(mtu=s.mtu, medium=link.medium))
        self.wire = WireNarration(self.n, s.mac, time.monotonic, link.medium)
        observed = ObservedLink(link, self.wire.frame, self.states.check)
        explain_frames(stack, pcap)
        if s.trace is not None:
            try:
                self.trace = TraceWriter(s.trace, time.monotonic(), stack.counters)
            except SetupError:
                link.close()
                raise
            self.trace.attach(stack.tcp, stack.tcp6)
        self.runtime = Runtime(stack, observed, pcap)
        self.runtime.tick_hooks.append(self.states.check)
        if s.control is not None:
            try:
                self.control = ControlServer(self.runtime, s.control)  # before the loop runs: it watches fds
            except ControlError as exc:
                self.runtime.close()
                self.runtime = None
                raise SetupError(str(exc)) from None
        if link.medium is Medium.IP:
            self.n.say(f"{link.KIND} {link.name} open: bare IP packets (no Ethernet header, no ARP), MTU {s.mtu}")
        else:
            self.n.set_us(mac_to_str(s.mac))
            self.n.say(f"{link.KIND} {link.name} open, pystack's MAC {mac_to_str(s.mac)}, MTU {s.mtu}")
        self._start_ipv6(link.medium)
        self._thread = self.runtime.start_thread()

    def _start_ipv6(self, medium: Medium) -> None:
        """IPv6 up before the loop runs, as a Linux host brings it up with the link: the link-local address
        and its DAD, router solicitations, SLAAC from what routers advertise (RFC 4861, RFC 4862)."""
        s, rt, stack = self.setup, self.runtime, self.stack
        assert rt is not None and stack is not None
        if s.family == IPV4:
            return
        why = f"it needs an MTU of 1280 at least (RFC 8200 5), not {s.mtu}" if s.mtu < ipv6_wire.MIN_MTU else None
        if why is not None:
            if s.family == IPV6:
                raise SetupError(f"-6 asks for IPv6, but {why}")
            self.n.say(f"IPv6 stays off: {why}")
            return
        stack.address6_observers.append(self._on_address6)
        self.ipv6_started = rt.now()
        if medium is Medium.IP:
            self.n.say("IPv6 up on the TUN: a link-local address with a stable opaque identifier (RFC 7217), no "
                       "neighbour discovery and no DAD (a point-to-point link: the peer takes every packet, as "
                       "Linux's IFF_NOARP devices), no DHCPv6 (its DUID-LL needs a MAC); router solicitations "
                       "still go out, and addresses come from advertisements (SLAAC) if any come back")
        stack.start_ipv6(self.ipv6_started)
        if medium is not Medium.IP:
            self.dhcp6 = Dhcp6Host.attach(stack, rng=self.rng, on_event=self._on_dhcp6)
            self.n.say("IPv6 up: a link-local address from the MAC (checked by DAD), then router solicitations; "
                       "addresses come from the routers' advertisements (SLAAC, RFC 4862), or from DHCPv6 when "
                       "they say so (M flag; the O flag asks it for DNS servers only, RFC 8415)")
        if s.address6 is not None:  # narrated by _on_address6
            stack.add_address6(int(s.address6.ip), s.address6.network.prefixlen, self.ipv6_started)
        if s.gateway6 is not None:
            stack.gateway6 = int(s.gateway6)
            self.n.role(str(s.gateway6), "router")
            self.n.say(f"IPv6 default router {s.gateway6} (--gateway6)")

    def _on_dhcp6(self, event: Dhcp6Event) -> None:
        """What the DHCPv6 client concluded (loop thread, under the lock): the wire narration tells each
        message, this the outcome; DNS servers go where :meth:`dns_servers` reads them."""
        if isinstance(event, Leased) and not event.renewed:
            self.n.say(f"   DHCPv6 lease: {ip6(event.address)}, preferred {seconds(event.preferred)}, valid "
                       f"{seconds(event.valid)}, renew in {seconds(event.t1)}; DAD checks it before use")
        elif isinstance(event, Informed):
            self.dhcp6_dns = list(event.dns_servers)
            search = f", search {', '.join(event.domains)}" if event.domains else ""
            self.n.say(f"   DHCPv6: DNS {', '.join(ip6(d) for d in event.dns_servers) or 'none named'}{search}")
        elif isinstance(event, LeaseEnded):
            self.n.say(f"   DHCPv6 lease of {ip6(event.address)} ended ({event.reason})")
        elif isinstance(event, Declined6):
            self.n.say(f"   DHCPv6: declined {ip6(event.address)}, another node uses it; asking again")
        elif isinstance(event, Released):
            addresses = ", ".join(ip6(a) for a in event.addresses)
            self.n.say(f"   DHCPv6: Release of {addresses} acknowledged by the server ({event.status})"
                       if event.status is not None else
                       f"   DHCPv6: no Reply to the Release of {addresses}; not waiting longer")

    def _on_address6(self, event: AddressEvent, _now: float) -> None:
        """An IPv6 address came, passed DAD, or went (called in the loop thread, under the lock)."""
        wire = self.wire
        assert wire is not None
        text = f"{ip6(event.address)}/{event.prefix_len}"
        if event.event is Event.ADDED:
            wire.addresses6.add(event.address)
            if self.stack is not None and self.stack.config.medium is Medium.IP:
                how = {Origin.LINK_LOCAL: "link-local address", Origin.SLAAC: "SLAAC address from the advertised "
                       "prefix"}.get(event.origin, f"{event.origin.value} address")
                formed = event.origin in (Origin.LINK_LOCAL, Origin.SLAAC)
                iid = " (stable opaque identifier, RFC 7217)" if formed else ""
                self.n.say(f"   IPv6 {how}: {text}{iid}, usable at once (no DAD on a point-to-point link)")
                return
            how = {Origin.LINK_LOCAL: "link-local address from our MAC (modified EUI-64, RFC 4291 appendix A)",
                   Origin.SLAAC: "SLAAC address: the advertised prefix and our MAC's interface identifier",
                   Origin.STATIC: "static address", Origin.DHCPV6: "DHCPv6 address"}[event.origin]
            self.n.say(f"   IPv6 {how}: {text}, tentative until DAD finds nobody else using it")
        elif event.event is Event.CONFIGURED:
            checked = "" if self.stack is not None and self.stack.config.medium is Medium.IP else " passed DAD:"
            self.n.say(f"   IPv6 address {text} ({event.origin.value}){checked} configured")
            self._tell_us()
        elif event.event is Event.DUPLICATE:
            wire.addresses6.discard(event.address)
            self.n.say(f"   IPv6 address {text} ({event.origin.value}) is in use by another node (DAD): not used")
        elif event.event is Event.REMOVED:
            wire.addresses6.discard(event.address)
            self.n.say(f"   IPv6 address {text} ({event.origin.value}) removed")
            self._tell_us()
        else:
            self.n.say(f"   IPv6 address {text} ({event.origin.value}) deprecated: kept, not chosen for new "
                       "connections")

    def _tell_us(self) -> None:
        """pystack's column in the ladder names its addresses: IPv4, then IPv6 global ones."""
        stack = self.stack
        assert stack is not None
        parts = [f"{ip(stack.address)}/{stack.netmask.bit_count()}"] if stack.address is not None else []
        parts += [ip6(a.address) for a in stack.addresses6
                  if a.usable and not ipv6_wire.is_link_local(a.address)]
        if parts:
            self.n.set_us(", ".join(parts))

    def stop_narrating_frames(self) -> None:
        """From now on frames, TCP states and IPv6 address events go untold: a program's own traffic
        (``pystack exec``)."""
        rt = self.runtime
        assert rt is not None
        with rt.lock:
            if isinstance(rt.link, ObservedLink):
                rt.link.on_frame = None
                rt.link.settle = None
            if self.states.check in rt.tick_hooks:
                rt.tick_hooks.remove(self.states.check)
            if self.stack is not None and self._on_address6 in self.stack.address6_observers:
                self.stack.address6_observers.remove(self._on_address6)

    def close(self) -> None:
        rt = self.runtime
        if rt is None:
            return
        if self.dhcp is not None and self.lease is not None:
            if self.setup.release:
                self._release()
            else:
                self.n.say(f"keeping the lease on {ip(self.lease.address)}: it runs out in "
                           f"{seconds(self.lease.lease)} unless renewed (--release gives it back)")
        if self.setup.release and self.dhcp6 is not None and self.dhcp6.leased:
            self._release6(self.dhcp6)
        for thread in self._resolvers:  # a race won before every answer came: let them land in the cache
            thread.join(DNS_JOIN)
        rt.stop()
        if self._thread is not None:
            self._thread.join(5)
        if self.control is not None:
            self.control.close()
        rt.close()
        if self.trace is not None:
            self.trace.close()
        if self.wire is not None:
            self.wire.flush()
        self.runtime = None

    def _release(self) -> None:
        rt, stack, host = self.runtime, self.stack, self.dhcp
        assert rt is not None and stack is not None and host is not None
        with rt.lock:
            host.release(rt.now())
            rt.flush()
            rt.wake()
            # The server's MAC may not be known yet: let ARP finish so the DHCPRELEASE leaves.
            deadline = time.monotonic() + RELEASE_GRACE
            while stack.arp.pending and time.monotonic() < deadline:
                rt.changed.wait(deadline - time.monotonic())

    def _release6(self, host: Dhcp6Host) -> None:
        """RFC 8415 18.2.7: the Release goes out and the loop keeps running until the server's Reply comes or
        the first REL_TIMEOUT passes (EXIT_ATTEMPTS), as the daemon does on its way out."""
        rt = self.runtime
        assert rt is not None
        with rt.lock:  # to ff02::1:2: no neighbour to resolve, the Release leaves with this flush
            host.release(rt.now(), EXIT_ATTEMPTS)
            rt.flush()
            rt.wake()
            deadline = time.monotonic() + RELEASE_GRACE + host.client.config.release.irt
            while host.releasing and time.monotonic() < deadline:  # the client's own timer ends it first
                rt.changed.wait(deadline - time.monotonic())

    # ------------------------------------------------------------------ the address

    def configure(self) -> None:
        if self.setup.dhcp:
            self._lease()
        else:
            self._static()
        assert self.stack is not None and self.wire is not None and self.runtime is not None
        self.wire.address = self.stack.address
        self.wire.netmask = self.stack.netmask
        if self.ipv6_started is not None:
            with self.runtime.lock:
                self._tell_us()
                ready = self._ipv6_ready()
            if ready:
                self.n.say(f"IPv6 ready too: {self._ipv6_summary()}")
            else:
                self.n.say("IPv6 still configuring (no global address and router yet): a name's IPv6 addresses "
                           f"will wait for it, up to {IPV6_SETTLE:g} s from its start")

    # ------------------------------------------------------------------ IPv6's state

    def _ipv6_ready(self) -> bool:
        """A global address past DAD, and a router to reach other networks through: on a TUN the peer is
        that; with --address6 the user said how IPv6 is set up, as --address without --gateway, so its
        network is enough (under the lock)."""
        stack = self.stack
        assert stack is not None
        has_global = any(a.usable and not ipv6_wire.is_link_local(a.address) for a in stack.addresses6)
        return has_global and (stack.gateway6 is not None or stack.config.medium is Medium.IP
                               or self.setup.address6 is not None or stack.nd.routers.default_router() is not None)

    def _ipv6_settling(self, patient: bool) -> bool:
        """Whether IPv6 may still become ready: an address in DAD, or routers not solicited yet (the
        link-local address is in DAD), or still being solicited -- ``patient``ly through the whole
        schedule, else only :data:`RA_WAIT` past the first solicitation (under the lock)."""
        stack, rt = self.stack, self.runtime
        assert stack is not None and rt is not None
        if any(a.state is AddressState.TENTATIVE for a in stack.addresses6):
            return True
        if self.dhcp6 is not None and self.dhcp6.acquiring():
            return True  # an advertisement's M flag started DHCPv6: an address is on its way
        routers = stack.nd.routers
        if routers.routers or not math.isfinite(routers.next_solicitation):
            return False  # a router answered (its prefixes are past DAD), or soliciting is over
        if patient or routers.solicitations_sent == 0:
            return True
        first = routers.next_solicitation - stack.config.ipv6.rtr_solicitation_interval
        return routers.solicitations_sent == 1 and rt.now() < first + RA_WAIT

    def _ipv6_summary(self) -> str:
        stack, rt = self.stack, self.runtime
        assert stack is not None and rt is not None
        with rt.lock:
            addresses = [f"{ip6(a.address)}/{a.prefix_len} ({a.origin.value})" for a in stack.addresses6 if a.usable]
            router = stack.gateway6 if stack.gateway6 is not None else stack.nd.routers.default_router()
            dns = [ip6(d) for d in stack.nd.routers.dns()]
        way = ip6(router) if router is not None else "the peer" if stack.config.medium is Medium.IP else "none"
        text = f"{', '.join(addresses) or 'no address'}, router {way}"
        return text + (f", DNS {', '.join(dns)} advertised (RDNSS)" if dns else "")

    def wait_ipv6(self, patient: bool = True) -> bool:
        """Wait (bounded by :data:`IPV6_SETTLE` from IPv6's start) until IPv6 is ready or cannot become so;
        whether it is ready. Not ``patient`` (IPv4 can do instead): no longer than :data:`RA_WAIT` past
        the first router solicitation if no router answers. With the runtime's lock held, or without."""
        rt = self.runtime
        assert rt is not None
        if self.ipv6_started is None:
            return False
        with rt.lock:
            if self._ipv6_ready():
                return True
            limit = self.ipv6_started + IPV6_SETTLE
            if not self._ipv6_settling(patient) or rt.now() >= limit:
                return False
            self.n.say(f"waiting for IPv6 to finish configuring (a global address past DAD and a router), "
                       f"up to {max(0.0, limit - rt.now()):.1f} s more")
            started = rt.now()
            while not self._ipv6_ready() and self._ipv6_settling(patient) and rt.now() < limit:
                rt.changed.wait(min(limit - rt.now(), RA_WAIT / 4))  # RA_WAIT passes with no frame
            ready = self._ipv6_ready()
        if ready:
            self.n.say(f"IPv6 ready after {ms(rt.now() - started)}: {self._ipv6_summary()}")
        else:
            self.n.say(f"IPv6 not ready after {ms(rt.now() - started)} (no router advertised a prefix we could "
                       f"use): {self._ipv6_summary()}")
        return ready

    def _family_usable(self, family: int) -> bool:
        """RFC 6724 rule 1 for Happy Eyeballs: a family with no source address or route goes last."""
        stack = self.stack
        assert stack is not None
        if family == IPV4:
            return stack.address is not None
        return self.ipv6_started is not None and self._ipv6_ready()

    def _static(self) -> None:
        s, rt, stack = self.setup, self.runtime, self.stack
        assert rt is not None and stack is not None and s.address is not None
        with rt.lock:
            stack.configure(int(s.address.ip), s.address.network.prefixlen,
                            int(s.gateway) if s.gateway else None, rt.now())
            rt.flush()
            rt.wake()
        if s.gateway:
            self.n.role(str(s.gateway), "router")
        for server in s.dns:
            self.n.role(nameservers.text(server), "DNS")
        self.n.set_us(f"{s.address}")
        self.n.say(f"static address {s.address}, router {s.gateway or 'none'}, DNS {nameservers.texts(s.dns)}")

    def _lease(self) -> None:
        s, rt, stack = self.setup, self.runtime, self.stack
        assert rt is not None and stack is not None
        config = DhcpConfig(acquire_timeout=s.dhcp_timeout)
        self.n.say(f"asking for an address with DHCP (RFC 2131; giving up after {s.dhcp_timeout:g} s)")
        started = time.monotonic()
        with rt.lock:
            client = DhcpClient(s.mac, rt.now(), self.rng, config, stack.counters)
            self.dhcp = DhcpHost.attach(stack, client, self.rng, on_event=self._on_dhcp_event)
            self.dhcp.poll(rt.now())
            rt.flush()
            rt.wake()
            deadline = time.monotonic() + s.dhcp_timeout + DHCP_SAFETY
            while self.lease is None and self.failure is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.failure = f"no DHCP lease within {s.dhcp_timeout:g} s"
                    break
                rt.changed.wait(left)
        if self.failure is not None:
            raise CommandError(f"DHCP gave up: {self.failure}")
        lease = self.lease
        assert lease is not None
        self.n.set_us(f"{ip(lease.address)}/{lease.prefix}")
        text = describe_lease(lease.address, lease.prefix, lease.router, lease.dns, lease.lease, lease.t1,
                              lease.t2, lease.server, lease.domain)
        self.n.say(f"lease after {ms(time.monotonic() - started)}: {text}")

    def _on_dhcp_event(self, event: Event) -> None:
        """Called in the loop thread, under the runtime's lock."""
        if isinstance(event, ProbeAddress):
            self.n.say(f"   checking that {ip(event.address)} is free: ARP probes, then a wait (RFC 5227 2.1)")
        elif isinstance(event, Bound):
            if self.lease is None:
                self.n.role(ip(event.server), "DHCP")
                if event.router is not None:
                    self.n.role(ip(event.router), "router")
                for server in ([nameservers.text(d) for d in self.setup.dns] or [ip(d) for d in event.dns]):
                    self.n.role(server, "DNS")
            elif event.renewed:
                self.n.say(f"   lease on {ip(event.address)} renewed: {seconds(event.lease)}")
            self.lease = event
        elif isinstance(event, Declined):
            self.n.say(f"   {ip(event.address)} is in use by another host: sent DHCPDECLINE, starting again")
        elif isinstance(event, LeaseLost):
            self.n.say(f"   lost the lease on {ip(event.address)} ({event.reason})")
            if event.reason != "released":
                self.lease = None
        elif isinstance(event, Failed):
            self.failure = event.reason

    # ------------------------------------------------------------------ names

    def dns_servers(self) -> list[Where]:
        """Every DNS server known now, IPv4 and IPv6, in the order a Linux host's resolv.conf lists them
        (:func:`pystack.dns.servers.listed`): ``--dns`` alone when given; else the DHCPv4 lease's (RFC 2132
        option 6), those the routers advertise (RDNSS, RFC 8106), then DHCPv6's (:attr:`dhcp6_dns`, RFC
        3646). The one place every source of servers feeds; read afresh for every question, so that a
        server whose lifetime ended (RFC 8106 5.1) or whose lease went is no longer asked."""
        if self.setup.dns:
            return list(self.setup.dns)
        rt, stack = self.runtime, self.stack
        assert rt is not None and stack is not None
        with rt.lock:
            lease = self.lease
            rdnss = stack.nd.routers.dns() if self.ipv6_started is not None else []
            return nameservers.listed(lease.dns if lease is not None else [], rdnss, self.dhcp6_dns)

    def dns_to_ask(self) -> list[Where]:
        """The servers a question goes to now, as :class:`Names` reads them before each: those of
        :meth:`dns_servers` in the family ``-4`` or ``-6`` asks for (``-6``: the IPv6 ones when there are
        any, else the IPv4 ones), at most MAXNS (3) as glibc."""
        known = self.dns_servers()
        family = self.setup.family
        if family == IPV6 and not any(server.version == IPV6 for server in known):
            family = IPV4
        return nameservers.of_family(known, family)

    def _names(self) -> Names:
        rt = self.runtime
        assert rt is not None and self.stack is not None
        if not self.setup.dns and self.ipv6_started is not None:
            # The routers' advertisements may name servers (RDNSS): wait for IPv6 to settle when no IPv6
            # server is known yet and -6 wants one, or when no server is known at all; briefly (RFC 4861's
            # first answer) when IPv4 servers can do instead.
            known = self.dns_servers()
            if (self.setup.family == IPV6 and not any(s.version == IPV6 for s in known)) or not known:
                self.wait_ipv6(patient=not known)
        if not self.dns_to_ask():
            which = f"IPv{self.setup.family} " if self.setup.family else ""
            raise CommandError(f"no {which}DNS server to ask: the lease named none, no router advertised one "
                               "(RDNSS), and no --dns was given")
        if self.names is None:
            self.names = Names(rt, self.dns_to_ask, rng=self.rng, connect=self._dns_tcp)
        return self.names

    def _families(self) -> list[int]:
        """The setup's families, without IPv6 when it is off (dual stack on a link without it)."""
        return [f for f in self.setup.families if f == IPV4 or self.ipv6_started is not None]

    def resolve(self, name: str) -> dict[int, Query]:
        """Ask for AAAA and A (or the one family asked for) at once, each answer told as it comes.
        Raises CommandError when no family has an address."""
        answers = self._ask(name, self._families(), None)
        if not any(q.error is None and q.addresses for q in answers.values()):
            raise CommandError(_resolution_error(name, answers))
        return answers

    def _ask(self, name: str, families: list[int],
             on_answer: Callable[[int, Query], None] | None) -> dict[int, Query]:
        names = self._names()
        servers = self.dns_to_ask()
        if self.setup.family == IPV6 and servers and servers[0].version == IPV4:
            self.n.say("no IPv6 DNS server (none advertised by the routers, none from DHCPv6 or --dns): "
                       "asking the IPv4 ones over IPv4")
        records = " and ".join(_RECORD[f] for f in families)
        together = ", asked together (RFC 8305 section 3)" if len(families) > 1 else ""
        first, rest = (servers[0], servers[1:]) if servers else (None, [])
        if first is not None:
            self.n.role(nameservers.text(first), "DNS")  # the others when they answer
        then = f"; {nameservers.texts(rest)} in turn if it does not answer" if rest else ""
        asking = f": asking {nameservers.text(first)} for {records} {name} over IPv{first.version}" if first else ""
        self.n.say(f"resolving {name} ({records}{together}) at {nameservers.texts(servers)}{asking}{then}")
        started = time.monotonic()

        def done(q: Query) -> None:
            family = IPV6 if q.qtype == dns_wire.TYPE_AAAA else IPV4
            took = ms(time.monotonic() - started)
            via = ""
            if q.server is not None and not q.from_cache:
                self.n.role(nameservers.text(q.server), "DNS")
                via = f" from {nameservers.text(q.server)} over IPv{q.server.version}"
            if q.error is None and q.addresses:
                self.n.say(f"resolved {_RECORD[family]} in {took}{via}: "
                           f"{describe_resolution(name, q.cname_chain, q.addresses, q.ttl, q.from_cache, family)}")
            else:
                self.n.say(f"no {_RECORD[family]} answer after {took}: {q.error or 'no address'}")
            if on_answer is not None:
                on_answer(family, q)

        try:
            queries = names.query_many(name, [_QTYPE[f] for f in families], on_done=done)
        except OSError as exc:
            raise CommandError(f"{name}: cannot send the DNS query: {exc.strerror or exc}") from None
        return dict(zip(families, queries))

    def lookup(self, name: str) -> tuple[int, int]:
        """(family, address) to send to: a literal itself, else the first address as RFC 6724 orders them
        (IPv6 first when it is ready to reach it), as getaddrinfo gives ping its first."""
        literal = _literal(name)
        if literal is not None:
            self._check_family(name, literal[0])
            if literal[0] == IPV6:
                self.wait_ipv6()
            return literal
        answers = self.resolve(name)
        found = {f: q.addresses for f, q in answers.items() if q.error is None and q.addresses}
        if IPV6 in found and (self.wait_ipv6(patient=IPV4 not in found) or IPV4 not in found):
            return IPV6, found[IPV6][0]
        return IPV4, found[IPV4][0]

    def _check_family(self, name: str, family: int) -> None:
        if self.setup.family and family != self.setup.family:
            raise CommandError(f"{name} is an IPv{family} address, but -{self.setup.family} asks for "
                               f"IPv{self.setup.family}")
        if family == IPV6 and self.ipv6_started is None:
            raise CommandError(f"{name} is an IPv6 address, and IPv6 is off")

    def _dns_tcp(self, server: Where, timeout: float) -> TcpSocket:
        address = nameservers.text(server)
        self.n.say(f"   the answer was truncated: asking {address} again over TCP port {dns_wire.PORT} over "
                   f"IPv{server.version} (RFC 7766, 2-byte length prefix)")
        return self._race(address, dns_wire.PORT, [server.version], {server.version: [server.ip]}, timeout,
                          "DNS over TCP")

    # ------------------------------------------------------------------ TCP

    def connect(self, name: str, port: int, timeout: float | None = None, role: str | None = None) -> TcpSocket:
        """A TCP connection to ``name`` (an address, or a name asked for AAAA and A), the families raced
        as RFC 8305 says; ``role`` names the peer in the ladder. Raises CommandError when none connects."""
        literal = _literal(name)
        if literal is not None:
            self._check_family(name, literal[0])
            if literal[0] == IPV6:
                self.wait_ipv6()
            return self._race(name, port, [literal[0]], {literal[0]: [literal[1]]}, timeout, "TCP", role)
        self._names()  # no DNS server: say so before anything starts
        return self._race(name, port, self._families(), None, timeout, "TCP", role)

    def _race(self, name: str, port: int, families: list[int], known: dict[int, list[int]] | None,
              timeout: float | None, label: str, role: str | None = None) -> TcpSocket:
        """Happy Eyeballs (pystack/tools/happy_eyeballs.py) driven by the runtime: DNS answers from the
        resolver thread, attempts started on pystack's TCP, the winner kept, the others aborted."""
        rt, stack = self.runtime, self.stack
        assert rt is not None and stack is not None
        inbox: list[tuple[int, Query | None]] = []
        errors: dict[int, DnsError] = {}

        def on_answer(family: int, q: Query | None) -> None:  # in the resolver thread
            with rt.lock:
                inbox.append((family, q))
                rt.changed.notify_all()

        if known is None:
            thread = threading.Thread(target=self._resolve_for_race, args=(name, families, on_answer),
                                      name="pystack-dns", daemon=True)
            self._resolvers.append(thread)
            thread.start()
        race = _Race(self, name, port, label, role)
        deadline = time.monotonic() + (self.setup.timeout if timeout is None else timeout)
        with rt.lock:
            he = HappyEyeballs(families, rt.now(), usable=self._family_usable)
            race.he = he
            for family, addresses in (known or {}).items():
                he.answer(family, addresses, rt.now())
            try:
                while he.winner is None:
                    while inbox:
                        family, q = inbox.pop(0)
                        addresses = q.addresses if q is not None and q.error is None else []
                        if q is not None and q.error is not None:
                            errors[family] = q.error
                        if family == IPV6 and addresses:
                            self.wait_ipv6(patient=IPV4 not in families or he.answered.get(IPV4) is False)
                        he.answer(family, addresses, rt.now())
                        race.tell_waiting()
                    race.check(rt.now())
                    if he.winner is not None:
                        break
                    for action in he.poll(rt.now()):
                        if isinstance(action, StartAttempt):
                            race.start(action, rt.now())
                    if he.exhausted:
                        raise CommandError(race.failure(errors))
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise CommandError(race.timed_out())
                    due = he.next_deadline()
                    wait = left if due is None else min(left, due - rt.now())
                    if wait > 0:
                        rt.changed.wait(wait)
            except BaseException:
                race.abort_all(rt.now())
                raise
            return race.won()

    def _resolve_for_race(self, name: str, families: list[int],
                          on_answer: Callable[[int, Query | None], None]) -> None:
        """The resolver thread of a race: every family ends with an answer, a failed one if need be."""
        told: set[int] = set()

        def answer(family: int, q: Query | None) -> None:
            told.add(family)
            on_answer(family, q)

        try:
            self._ask(name, families, answer)
        except Exception as exc:  # a send error (CommandError) or a bug: the race must still end
            if not isinstance(exc, CommandError):
                log.exception("internal error in the resolver thread (please report it)")
            else:
                self.n.say(str(exc))
        for family in families:
            if family not in told:
                on_answer(family, None)

    def tls(self, sock: TcpSocket, host: str, cacert: str | None) -> TlsSocket:
        """TLS over ``sock`` (pystack/api/tls.py), the server's certificate checked against ``cacert`` or the
        system's CAs and against ``host``; the handshake told as a step. One line when it fails."""
        import ssl

        try:
            context = ssl.create_default_context(cafile=cacert)
        except (OSError, ssl.SSLError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise SetupError(f"cannot read CA certificates from {cacert}: {why}") from None
        self.n.say(f"TLS handshake with {host} (SNI and name check: {host}; trusting "
                   f"{cacert or 'the system CAs'})")
        started = time.monotonic()
        try:
            tls = TlsSocket(sock, context, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise CommandError(f"TLS handshake with {host} failed: its certificate is not trusted "
                               f"({exc.verify_message})") from None
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            why = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else exc.strerror or str(exc)
            raise CommandError(f"TLS handshake with {host} failed: {why}") from None
        cipher = tls.cipher()
        cert = tls.getpeercert() or {}
        names = ", ".join(f"{kind} {value}" for kind, value in cert.get("subjectAltName", ()))
        self.n.say(f"TLS established in {ms(time.monotonic() - started)}: {tls.version()}, "
                   f"{cipher[0] if cipher else '?'} ({cipher[2] if cipher else '?'} bits); certificate of "
                   f"{_dn(cert.get('subject', ()))} ({names or 'no names'}), issued by {_dn(cert.get('issuer', ()))}, "
                   f"valid {cert.get('notBefore', '?')} to {cert.get('notAfter', '?')}")
        return tls

    def wait_closed(self, sock: TcpSocket, timeout: float) -> State:
        """After close(): wait (bounded) until the connection is in TIME_WAIT or CLOSED."""
        rt = self.runtime
        assert rt is not None
        deadline = time.monotonic() + timeout
        with rt.lock:
            while sock.state not in (State.TIME_WAIT, State.CLOSED):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                rt.changed.wait(left)
            self.states.check()
            return sock.state

    def counters_line(self) -> str:
        assert self.stack is not None
        c = self.stack.counters
        drops = sorted((k, v) for k, v in c.items() if k.startswith("drop.") and v)
        text = f"frames in {c['frames_in']}, out {c['frames_out']}"
        if drops:
            text += "; dropped: " + ", ".join(f"{k[5:]} {v}" for k, v in drops)
        return text


class _Race:
    """The attempts of one Happy Eyeballs race and what the narration says of them (under the lock)."""

    def __init__(self, session: ClientSession, name: str, port: int, label: str, role: str | None) -> None:
        self.session = session
        self.n = session.n
        self.name = name
        self.port = port
        self.label = label
        self.role = role
        self.he: HappyEyeballs | None = None
        self.attempts: dict[Candidate, Connection] = {}
        self.started: dict[Candidate, float] = {}
        self.number: dict[Candidate, int] = {}
        self.told_waiting = False
        self.winner_conn: Connection | None = None

    def _ep(self, c: Candidate) -> str:
        return endpoint(host(c.family, c.address), self.port)

    def _family(self, c: Candidate) -> str:
        return "IPv6" if c.family == IPV6 else "IPv4"

    def tell_waiting(self) -> None:
        he = self.he
        assert he is not None
        if he.waiting_since is not None and not self.told_waiting:
            self.told_waiting = True
            self.n.say(f"the A answer came first: waiting up to {he.config.resolution_delay * 1000:.0f} ms for "
                       "the AAAA answer before connecting over IPv4 (RFC 8305 section 3)")

    def start(self, action: StartAttempt, now: float) -> None:
        he, session = self.he, self.session
        rt, stack = session.runtime, session.stack
        assert he is not None and rt is not None and stack is not None
        c = action.candidate
        n = len(self.number) + 1
        self.number[c] = n
        if self.role:
            self.n.role(host(c.family, c.address), self.role)
        racing = len(he.order()) > 1 or len(he.asked) > 1
        prefix = f"Happy Eyeballs attempt {n}: " if racing else ""
        if action.why == "delay":
            last = he.tried[-2]
            self.n.say(f"{prefix}no answer from {self._ep(last)} within {he.config.attempt_delay * 1000:.0f} ms: "
                       f"connecting to {self._ep(c)} over IPv{c.family} as well, the earlier attempt still running "
                       "(RFC 8305 section 5)")
        elif action.why == "failed":
            self.n.say(f"{prefix}connecting to {self._ep(c)} over pystack's TCP ({self._family(c)}), "
                       "at once since the last attempt failed")
        else:
            order = ", ".join(self._ep(x) for x in he.order())
            among = f" (the order: {order}; RFC 8305 section 4)" if len(he.order()) > 1 else ""
            self.n.say(f"{prefix}connecting to {self._ep(c)} over pystack's TCP ({self._family(c)}){among}")
        try:
            conn = self._open(c, now)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.n.say(f"   cannot connect to {self._ep(c)}: {reason}")
            he.failed(c, reason, now)
            return
        self.attempts[c] = conn
        self.started[c] = time.monotonic()
        state_label = f"{self.label} state" + ("" if n == 1 else f" (attempt {n})")
        session.states.watch(state_label, lambda: conn.state)
        rt.flush()
        rt.changed.notify_all()
        rt.wake()

    def _open(self, c: Candidate, now: float) -> Connection:
        stack = self.session.stack
        assert stack is not None
        if c.family == IPV4:
            local = stack.source_for(c.address)
            if not local:
                raise OSError(errno.ENETUNREACH, "no IPv4 address to connect from")
            return stack.tcp.connect(local, c.address, self.port, now)
        local6 = stack.source_for6(c.address)
        if local6 is None or (ipv6_wire.is_link_local(local6) and not ipv6_wire.is_link_local(c.address)):
            raise OSError(errno.EADDRNOTAVAIL, "no IPv6 address to connect from (no router advertised a prefix)")
        stack.nd.route(c.address)  # ENETUNREACH when no router leads there
        return stack.tcp6.connect(local6, c.address, self.port, now)

    def check(self, now: float) -> None:
        """Which attempts failed, and whether one connected (the race is then won)."""
        he = self.he
        assert he is not None
        for c, conn in list(self.attempts.items()):
            if conn.error is not None:
                del self.attempts[c]
                timed_out = conn.error in (errno.ETIMEDOUT, errno.EAGAIN)
                reason = "no answer (timed out)" if timed_out else os.strerror(conn.error)
                self.n.say(f"   attempt to {self._ep(c)} failed: {reason}")
                he.failed(c, reason, now)
            elif conn.state not in (State.SYN_SENT, State.SYN_RECEIVED, State.CLOSED):
                del self.attempts[c]
                self.winner_conn = conn
                for action in he.connected(c, now):
                    if isinstance(action, CancelAttempt):
                        self._cancel(action.candidate, now)
                return

    def _cancel(self, c: Candidate, now: float) -> None:
        conn = self.attempts.pop(c, None)
        if conn is None:
            return
        self.n.say(f"   cancelling the attempt to {self._ep(c)} ({self._family(c)}): the race is won "
                   "(RFC 8305 section 5)")
        conn.abort(now)

    def abort_all(self, now: float) -> None:
        rt = self.session.runtime
        assert rt is not None
        for c in list(self.attempts):
            self.attempts.pop(c).abort(now)
        rt.flush()
        rt.wake()

    def won(self) -> TcpSocket:
        he, session, conn = self.he, self.session, self.winner_conn
        rt = session.runtime
        assert he is not None and he.winner is not None and conn is not None and rt is not None
        c = he.winner
        sock = TcpSocket(rt, conn, family=AF_INET6 if c.family == IPV6 else AF_INET)
        sock.settimeout(session.setup.timeout)
        rt.flush()
        rt.wake()
        took = ms(time.monotonic() - self.started[c])
        local = endpoint(host(c.family, conn.local_ip), conn.local_port)
        raced = f" ({self._family(c)}, attempt {self.number[c]} of {len(he.tried)})" if len(he.tried) > 1 else ""
        self.n.say(f"connected to {self._ep(c)} in {took} (from {local}){raced}")
        return sock

    def timed_out(self) -> str:
        he = self.he
        assert he is not None
        if len(he.tried) == 1:
            return f"cannot connect to {self._ep(he.tried[0])}: no answer (timed out)"
        return f"cannot connect to {self.name} port {self.port}: no answer (timed out)"

    def failure(self, errors: dict[int, DnsError]) -> str:
        he = self.he
        assert he is not None
        if not he.failures:
            return _resolution_error(self.name, {}, errors)
        if len(he.failures) == 1:
            c, reason = he.failures[0]
            return f"cannot connect to {self._ep(c)}: {reason}"
        return (f"cannot connect to {self.name} port {self.port}: "
                + "; ".join(f"{self._ep(c)}: {reason}" for c, reason in he.failures))


def _literal(name: str) -> tuple[int, int] | None:
    """(family, address) of an address literal, else None."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    return address.version, int(address)


def _resolution_error(name: str, answers: dict[int, Query], errors: dict[int, DnsError] | None = None) -> str:
    """The one line for a name no family resolved: the most telling error (NXDOMAIN before "no AAAA")."""
    found = dict(errors or {})
    for family, q in answers.items():
        if q.error is not None:
            found[family] = q.error
    if not found:
        return f"{name}: no address"
    telling = [e for e in found.values() if e.code != "nodata"]
    return str(telling[0] if telling else found.get(IPV4, next(iter(found.values()))))


def _dn(name: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """A distinguished name from getpeercert() as text: CN=..., O=..."""
    short = {"commonName": "CN", "organizationName": "O", "countryName": "C", "organizationalUnitName": "OU"}
    return ", ".join(f"{short.get(k, k)}={v}" for rdn in name for k, v in rdn) or "(empty)"
