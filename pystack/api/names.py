"""Host names to addresses (IPv4 and IPv6) for programs on one stack: the hosts table first, then
pystack's own stub resolver over the stack's UDP (and TCP when an answer comes back truncated), as
glibc's ``hosts: files dns``.

Lookups from several threads take turns (one lock around the resolver, which is sans-I/O and not
thread-safe); its cache makes the repeated ones cheap. The DNS servers (IPv4 or IPv6,
:mod:`pystack.dns.servers`) are a fixed list or a function read before every question, so that a
session's servers follow its lease and the routers' advertisements as they come and go; each question
travels in its server's family.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import threading
from collections.abc import Callable, Sequence

from pystack.api import families
from pystack.api.families import Where
from pystack.api.socket import IP_RECVERR, IPPROTO_IP, IPPROTO_IPV6, IPV6_RECVERR, TcpSocket, UdpSocket
from pystack.dns import DnsConfig, DnsError, Query, Resolver
from pystack.dns import blocking as dns_blocking
from pystack.dns.hosts import HostsTable
from pystack.runtime import Runtime
from pystack.wire import dns as wire

ConnectTcp = Callable[[Where, float], TcpSocket]
"""Open a TCP connection to a DNS server's port 53 within a timeout (for answers truncated over UDP)."""
Servers = Sequence[Where] | Callable[[], Sequence[Where]]
"""The DNS servers to ask, in order: a list, or a function giving the current list."""


class Names:
    def __init__(self, runtime: Runtime, servers: Servers = (), hosts: HostsTable | None = None,
                 config: DnsConfig | None = None, rng: random.Random | None = None,
                 connect: ConnectTcp | None = None) -> None:
        self.runtime = runtime
        self.hosts = hosts if hosts is not None else HostsTable()
        self.config = config or DnsConfig()
        self.rng = rng or random.SystemRandom()  # RFC 5452: unpredictable IDs and ports
        self._servers = servers
        self.resolver = Resolver(self.servers, self.rng, self.config, runtime.stack.counters)
        self._connect = connect or self._connect_plain
        self._lock = threading.Lock()

    @property
    def servers(self) -> list[Where]:
        """The servers a question asked now goes to, in order."""
        return list(self._servers() if callable(self._servers) else self._servers)

    def query(self, name: str, qtype: int = wire.TYPE_A) -> Query:
        """Ask DNS (not the hosts table); the finished query. OSError when it cannot be sent."""
        with self._lock:
            self.resolver.servers = self.servers
            sock = self._udp_socket(dns_blocking.socket_family(self.resolver.servers))
            try:
                return dns_blocking.resolve(sock, self.resolver, name, qtype, connect=self._connect)
            finally:
                sock.close()

    def query_many(self, name: str, qtypes: Sequence[int],
                   on_done: Callable[[Query], None] | None = None) -> list[Query]:
        """Ask DNS every question of ``qtypes`` about ``name`` at once (AAAA and A, RFC 8305 section 3);
        ``on_done`` hears each as it finishes. The finished queries; OSError when they cannot be sent."""
        with self._lock:
            self.resolver.servers = self.servers
            sock = self._udp_socket(dns_blocking.socket_family(self.resolver.servers))
            try:
                return dns_blocking.resolve_many(sock, self.resolver, name, qtypes, connect=self._connect,
                                                 on_done=on_done)
            finally:
                sock.close()

    def addresses(self, name: str, version: int = 4) -> tuple[str, list[int]]:
        """(canonical name, addresses of IP ``version``: A records for 4, AAAA for 6) of ``name``; a
        literal of that family is its own answer. Raises DnsError."""
        found = self.lookup(name, (version,))[version]
        if isinstance(found, DnsError):
            raise found
        return found

    def lookup(self, name: str, versions: Sequence[int]) -> dict[int, tuple[str, list[int]] | DnsError]:
        """For each IP version asked, (canonical name, addresses) of ``name`` or why there are none. A
        literal answers for its own version. As glibc's ``hosts: files dns``: when the hosts table knows
        the name in any version asked, it alone answers; else DNS is asked every question at once (AAAA
        and A, RFC 8305 section 3)."""
        try:
            literal = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return {v: (name, [int(literal)]) if literal.version == v else
                    DnsError("nodata", f"{name}: an IPv{literal.version} address, not IPv{v}") for v in versions}
        known = {v: self.hosts.addresses(name, v) for v in versions}
        if any(entry is not None for entry in known.values()):
            return {v: entry if entry is not None else DnsError("nodata", f"{name}: no IPv{v} address in the "
                                                                          "hosts table")
                    for v, entry in known.items()}
        qtypes = [wire.TYPE_AAAA if v == 6 else wire.TYPE_A for v in versions]
        try:
            queries = self.query_many(name, qtypes)
        except OSError as exc:
            failed = DnsError("timeout", f"{name}: cannot send the DNS query: {exc.strerror or exc}")
            return {v: failed for v in versions}
        answers: dict[int, tuple[str, list[int]] | DnsError] = {}
        for v, q in zip(versions, queries):
            if q.error is not None:
                answers[v] = q.error
            elif not q.addresses:
                answers[v] = DnsError("nodata", f"{name}: no address")
            else:
                answers[v] = (q.cname_chain[-1].rstrip(".") if q.cname_chain else name), q.addresses
        return answers

    def names(self, address: int, version: int = 4) -> list[str]:
        """The names of ``address`` (IP ``version``): the hosts table's, else its PTR records (RFC 1035
        3.5; RFC 3596 2.5 for IPv6, under ip6.arpa). Raises DnsError."""
        known = self.hosts.names(address, version)
        if known:
            return known
        reverse = (ipaddress.IPv6Address(address) if version == 6 else ipaddress.IPv4Address(address)).reverse_pointer
        try:
            q = self.query(reverse, wire.TYPE_PTR)
        except OSError as exc:
            raise DnsError("timeout", f"{reverse}: cannot send the DNS query: {exc.strerror or exc}") from None
        if q.error is not None:
            raise q.error
        found = [str(r).rstrip(".") for r in q.records if isinstance(r, str)]
        if not found:
            raise DnsError("nodata", f"{reverse}: no PTR record")
        return found

    def _udp_socket(self, family: int) -> UdpSocket:
        """A UDP socket of ``family`` on a random port (RFC 5452 section 9.2); on ``::`` an AF_INET6 one
        carries IPv4 too (IPv4-mapped). With IP_RECVERR (IPV6_RECVERR) it tells which server answered port
        unreachable, so that the next is asked at once (pystack.dns.blocking)."""
        for _ in range(32):
            sock = UdpSocket(self.runtime, family)
            sock.setsockopt(IPPROTO_IP, IP_RECVERR, 1)
            if family == families.AF_INET6:
                sock.setsockopt(IPPROTO_IPV6, IPV6_RECVERR, 1)
            try:
                port = self.rng.randint(self.config.port_low, self.config.port_high)
                sock.bind(("0.0.0.0" if family == families.AF_INET else "::", port))
                return sock
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, "no free UDP port for DNS")

    def _connect_plain(self, server: Where, timeout: float) -> TcpSocket:
        family = families.AF_INET if server.version == families.V4 else families.AF_INET6
        sock = TcpSocket(self.runtime, family=family)
        sock.settimeout(timeout)
        try:
            sock.connect(families.write(family, server.version, server.ip, wire.PORT))
        except OSError:
            sock.close()
            raise
        return sock
