"""A client session on pystack: the TAP, the stack in its loop thread, an address (DHCP or static),
names resolved over pystack's own UDP (and TCP), connections over pystack's own TCP.

It is what ``pystack fetch``, ``resolve`` and ``ping`` share. Every step is told to a
:class:`~pystack.tools.narrator.Narrator`; the frames themselves are told by the wire watcher, which
sits between the Runtime and the TAP (:class:`~pystack.tools.observe.ObservedLink`).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import random
import threading
import time
from dataclasses import dataclass, field

from pystack.api.names import Names
from pystack.api.socket import TcpSocket
from pystack.api.tls import TlsSocket
from pystack.config import StackConfig
from pystack.control.server import ControlError, ControlServer
from pystack.dhcp import Bound, Declined, DhcpClient, DhcpConfig, Failed, LeaseLost, ProbeAddress
from pystack.dhcp.client import Event
from pystack.dhcp.host import DhcpHost
from pystack.dns import DnsError, Query
from pystack.medium import Medium
from pystack.reasons import explain_frames
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.tcp.state import State
from pystack.trace import TraceWriter
from pystack.tools.errors import CommandError, SetupError
from pystack.tools.narrator import Narrator, describe_lease, describe_resolution, ip, ms, seconds
from pystack.tools.observe import ObservedLink, StateWatcher, WireNarration
from pystack.wire.ethernet import mac_to_str

RELEASE_GRACE = 1.0
"""Seconds the loop keeps running after a DHCPRELEASE so that ARP can resolve the server and send it."""
DHCP_SAFETY = 10.0
"""Extra seconds to wait past the DHCP client's own give-up time before declaring the loop stuck."""


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
    dns: list[int] = field(default_factory=list)
    """DNS servers to use instead of the ones the lease names."""
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

    @property
    def dhcp(self) -> bool:
        return self.address is None


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
        self.dns_servers: list[int] = []
        self.names: Names | None = None
        self._thread: threading.Thread | None = None
        self.control: ControlServer | None = None
        self.trace: TraceWriter | None = None

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
        self._thread = self.runtime.start_thread()

    def stop_narrating_frames(self) -> None:
        """From now on frames and TCP states go untold: a program's own traffic (``pystack exec``)."""
        rt = self.runtime
        assert rt is not None
        with rt.lock:
            if isinstance(rt.link, ObservedLink):
                rt.link.on_frame = None
                rt.link.settle = None
            if self.states.check in rt.tick_hooks:
                rt.tick_hooks.remove(self.states.check)

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

    # ------------------------------------------------------------------ the address

    def configure(self) -> None:
        if self.setup.dhcp:
            self._lease()
        else:
            self._static()
        assert self.stack is not None and self.wire is not None
        self.wire.address = self.stack.address
        self.wire.netmask = self.stack.netmask

    def _static(self) -> None:
        s, rt, stack = self.setup, self.runtime, self.stack
        assert rt is not None and stack is not None and s.address is not None
        with rt.lock:
            stack.configure(int(s.address.ip), s.address.network.prefixlen,
                            int(s.gateway) if s.gateway else None, rt.now())
            rt.flush()
            rt.wake()
        self.dns_servers = list(s.dns)
        if s.gateway:
            self.n.role(str(s.gateway), "router")
        for server in self.dns_servers:
            self.n.role(ip(server), "DNS")
        self.n.set_us(f"{s.address}")
        self.n.say(f"static address {s.address}, router {s.gateway or 'none'}, "
                   f"DNS {', '.join(ip(d) for d in self.dns_servers) or 'none'}")

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
        self.dns_servers = list(s.dns) or list(lease.dns)
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
                for server in (self.setup.dns or event.dns):
                    self.n.role(ip(server), "DNS")
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

    def lookup(self, name: str) -> int:
        """The first IPv4 address of ``name`` (a literal is its own answer)."""
        try:
            return int(ipaddress.IPv4Address(name))
        except ValueError:
            pass
        q = self.resolve(name)
        return q.addresses[0]

    def resolve(self, name: str) -> Query:
        rt = self.runtime
        assert rt is not None and self.stack is not None
        if not self.dns_servers:
            raise CommandError("no DNS server to ask: the lease named none and no --dns was given")
        if self.names is None:
            self.names = Names(rt, self.dns_servers, rng=self.rng, connect=self._dns_tcp)
        servers = ", ".join(ip(s) for s in self.dns_servers)
        self.n.say(f"resolving {name} (A) at {servers}")
        started = time.monotonic()
        try:
            q = self.names.query(name)
        except OSError as exc:
            raise CommandError(f"{name}: cannot send the DNS query: {exc.strerror or exc}") from None
        if q.error is not None or not q.addresses:
            err = q.error or DnsError("nodata", f"{name}: no address")
            raise CommandError(str(err))
        self.n.say(f"resolved in {ms(time.monotonic() - started)}: "
                   f"{describe_resolution(name, q.cname_chain, q.addresses, q.ttl, q.from_cache)}")
        return q

    def _dns_tcp(self, address: tuple[str, int], timeout: float) -> TcpSocket:
        self.n.say(f"   the answer was truncated: asking {address[0]} again over TCP port {address[1]} "
                   "(RFC 7766, 2-byte length prefix)")
        return self.connect(int(ipaddress.IPv4Address(address[0])), address[1], timeout, label="DNS over TCP")

    # ------------------------------------------------------------------ TCP

    def connect(self, addr: int, port: int, timeout: float | None = None, label: str = "TCP") -> TcpSocket:
        rt = self.runtime
        assert rt is not None
        sock = TcpSocket(rt)
        sock.settimeout(self.setup.timeout if timeout is None else timeout)
        with rt.lock:
            self.states.watch(f"{label} state", lambda: sock.state)
        self.n.say(f"connecting to {ip(addr)}:{port} over pystack's TCP")
        started = time.monotonic()
        err = sock.connect_ex((ip(addr), port))
        if err:
            sock.close()
            timed_out = err in (errno.ETIMEDOUT, errno.EINPROGRESS, errno.EAGAIN)
            why = "no answer (timed out)" if timed_out else os.strerror(err)
            raise CommandError(f"cannot connect to {ip(addr)}:{port}: {why}")
        self.n.say(f"connected to {ip(addr)}:{port} in {ms(time.monotonic() - started)} "
                   f"(from {sock.getsockname()[0]}:{sock.getsockname()[1]})")
        return sock

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


def _dn(name: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """A distinguished name from getpeercert() as text: CN=..., O=..."""
    short = {"commonName": "CN", "organizationName": "O", "countryName": "C", "organizationalUnitName": "OU"}
    return ", ".join(f"{short.get(k, k)}={v}" for rdn in name for k, v in rdn) or "(empty)"
