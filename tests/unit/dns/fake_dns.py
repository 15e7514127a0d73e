"""A small recursive-server stand-in for the resolver's tests, plus a fake network with a clock."""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from pystack.api.families import V4, V6, Where
from pystack.counters import Counters
from pystack.dns import DnsConfig, DnsDatagram, Query, Resolver
from pystack.wire import dns
from pystack.wire.dns import DnsMessage, Question, Record, Soa

NS1 = Where(V4, 0xC0000201)  # 192.0.2.1
NS2 = Where(V4, 0xC0000235)  # 192.0.2.53
NS6 = Where(V6, int(ipaddress.IPv6Address("2001:db8::53")))
WWW = 0xC6336450  # 198.51.100.80
WWW6 = ipaddress.IPv6Address("2001:db8:1::80")
SOA = Record("example.test", dns.TYPE_SOA, dns.CLASS_IN, 600,
             Soa("ns.example.test", "hostmaster.example.test", 1, 3600, 600, 86400, 30))


def _zone() -> list[Record]:
    a, cname, txt = dns.TYPE_A, dns.TYPE_CNAME, dns.TYPE_TXT
    return [
        Record("www.example.test", a, 1, 60, WWW),
        Record("www.example.test", dns.TYPE_AAAA, 1, 45, WWW6),
        Record("v6only.example.test", dns.TYPE_AAAA, 1, 60, ipaddress.IPv6Address("2001:db8:1::6")),
        Record("v6only.example.test", dns.TYPE_AAAA, 1, 60, ipaddress.IPv6Address("2001:db8:1::7")),
        Record("web.example.test", cname, 1, 300, "www.example.test"),
        Record("two.example.test", a, 1, 120, 0xC6336451),
        Record("two.example.test", a, 1, 30, 0xC6336452),
        Record("loop1.example.test", cname, 1, 60, "loop2.example.test"),
        Record("loop2.example.test", cname, 1, 60, "loop1.example.test"),
        Record("dangling.example.test", cname, 1, 60, "gone.example.test"),
        Record("textonly.example.test", txt, 1, 60, b"\x05hello"),
        Record("zero.example.test", a, 1, 0, 0xC6336453),
        Record("huge.example.test", a, 1, 0x7FFFFFFF, 0xC6336454),
        Record("negative.example.test", a, 1, 0x80000001, 0xC6336455),
    ]


@dataclass
class FakeDns:
    """Answers from a fixed zone. ``follow_cnames`` False answers only the first CNAME, like a server
    that leaves the chasing to the client; ``mode`` makes it misbehave."""

    zone: list[Record] = field(default_factory=_zone)
    soa: Record | None = SOA
    follow_cnames: bool = True
    mode: str = "ok"
    """ok, servfail, refused, silent, truncate."""
    seen: list[DnsMessage] = field(default_factory=list)

    def answer(self, payload: bytes) -> bytes | None:
        query = dns.parse(payload)
        self.seen.append(query)
        if self.mode == "silent":
            return None
        flags = dns.FLAG_QR | dns.FLAG_RA | (query.flags & dns.FLAG_RD)
        q = query.questions[0]
        if self.mode in ("servfail", "refused"):
            rcode = dns.RCODE_SERVFAIL if self.mode == "servfail" else dns.RCODE_REFUSED
            return dns.build(DnsMessage(query.id, flags | rcode, [q]))
        if self.mode == "truncate":
            return dns.build(DnsMessage(query.id, flags | dns.FLAG_TC, [q]))
        answers: list[Record] = []
        name = dns.name_key(q.name)
        for _ in range(20):
            here = [r for r in self.zone if dns.name_key(r.name) == name]
            wanted = [r for r in here if r.rtype == q.qtype]
            if wanted:
                answers += wanted
                break
            cnames = [r for r in here if r.rtype == dns.TYPE_CNAME]
            if not cnames:
                break
            answers.append(cnames[0])
            name = dns.name_key(cnames[0].rdata)
            if not self.follow_cnames:
                return dns.build(DnsMessage(query.id, flags, [q], answers))
        exists = any(dns.name_key(r.name) == name for r in self.zone)
        final_found = any(dns.name_key(r.name) == name and r.rtype == q.qtype for r in answers)
        rcode = dns.RCODE_NOERROR if exists or final_found else dns.RCODE_NXDOMAIN
        authority = [self.soa] if self.soa is not None and not final_found else []
        return dns.build(DnsMessage(query.id, flags | rcode, [q], answers, authority))


class Net:
    """Resolver + servers + fake clock. Datagrams are delivered at once unless a server is silent."""

    def __init__(self, servers: dict[Where, FakeDns] | None = None, config: DnsConfig | None = None,
                 seed: int = 7) -> None:
        self.servers = servers if servers is not None else {NS1: FakeDns()}
        self.now = 1000.0
        self.counters = Counters()
        self.resolver = Resolver(list(self.servers), random.Random(seed), config, self.counters)
        self.sent: list[tuple[float, DnsDatagram]] = []
        self.tamper: Callable[[DnsDatagram, bytes], list[tuple[Where, int, bytes, int]]] | None = None
        """(query, answer) -> what actually arrives, as (server, src port, payload, dst port) tuples."""

    def deliver(self, out: list[DnsDatagram]) -> None:
        pending = list(out)
        while pending:
            dgram = pending.pop(0)
            self.sent.append((self.now, dgram))
            server = self.servers.get(dgram.server)
            reply = server.answer(dgram.payload) if server is not None else None
            if reply is None:
                continue
            arrivals = self.tamper(dgram, reply) if self.tamper else [(dgram.server, dns.PORT, reply, dgram.src_port)]
            for src, sport, payload, dport in arrivals:
                pending += self.resolver.receive(src, sport, payload, self.now, dst_port=dport)

    def resolve(self, name: str, qtype: int = dns.TYPE_A, run: bool = True, **kw) -> Query:
        q, out = self.resolver.query(name, self.now, qtype, **kw)
        self.deliver(out)
        if run:
            self.run(until=lambda: q.done)
        return q

    def run(self, duration: float | None = None, until: Callable[[], bool] | None = None) -> None:
        end = self.now + duration if duration is not None else (math.inf if until else self.now)
        for _ in range(10_000):
            if until and until():
                return
            deadline = self.resolver.get_timer()
            if deadline is None or deadline > end:
                self.now = max(self.now, end) if math.isfinite(end) else self.now
                return
            self.now = max(self.now, deadline)
            self.deliver(self.resolver.handle_timer(self.now))
        raise RuntimeError("resolver did not settle")

    def questions(self) -> list[tuple[float, Where, Question]]:
        return [(t, d.server, dns.parse(d.payload).questions[0]) for t, d in self.sent]
