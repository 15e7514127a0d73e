"""A stub resolver (RFC 1035 section 7, RFC 1123 section 6.1.3) as a sans-I/O object.

The owner sends the :class:`DnsDatagram` values that :meth:`Resolver.query`, :meth:`Resolver.receive`
and :meth:`Resolver.handle_timer` return, from the datagram's source port to the server's port 53, and
feeds back every datagram that arrives on those ports. A :class:`Query` handle tells the outcome.
A server is an IPv4 or IPv6 address (:mod:`pystack.dns.servers`); the owner carries each datagram over
the server's own family.

Against spoofing (RFC 5452): every transmission has a fresh random ID, the source port is random,
and an answer counts only if its ID, the server it came from, the port pair and the question all
match what we sent. Anything else is dropped and counted.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pystack.api.families import Where
from pystack.counters import Counters
from pystack.dns.cache import CacheEntry, DnsCache
from pystack.dns.config import DnsConfig
from pystack.dns.servers import text as _ip
from pystack.wire import WireError
from pystack.wire import dns as wire
from pystack.wire.dns import DnsMessage, RData, Record

log = logging.getLogger("pystack")

@dataclass(frozen=True, slots=True)
class DnsDatagram:
    """One UDP payload to send from ``src_port`` to ``server``:``port``, over the server's IP version."""

    server: Where
    port: int
    src_port: int
    payload: bytes


class DnsError(Exception):
    """Why a name did not resolve. ``code`` is one of: nxdomain, nodata, servfail, refused, timeout,
    cname_loop, bad_name, truncated, overloaded."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Status(enum.Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    NEEDS_TCP = "needs_tcp"
    """The answer had TC set (RFC 1035 section 4.1.1): ask again over TCP (RFC 7766 section 5)."""


@dataclass(eq=False)
class Query:
    """The handle of one resolution. Read it once :attr:`done` is true."""

    name: str
    qtype: int
    src_port: int
    status: Status = Status.PENDING
    records: list[RData] = field(default_factory=list)
    """Data of the answer records of ``qtype`` for the final name: addresses (ints) for A."""
    cname_chain: list[str] = field(default_factory=list)
    """CNAME targets followed from ``name``, in order."""
    ttl: int = 0
    """Seconds the answer stays valid (the smallest TTL along the chain)."""
    ttl_known: bool = False
    from_cache: bool = False
    error: DnsError | None = None
    server: Where | None = None
    """The server that answered."""
    wire_query: bytes = b""
    """The last query sent, for a TCP retry (RFC 1035 section 4.2.2 frames it with a 2-byte length)."""
    on_done: Callable[[Query], None] | None = None
    # -- in flight
    current: str = ""
    outstanding: dict[int, Where] = field(default_factory=dict)
    """ID -> server for every transmission still answerable."""
    attempt: int = 0
    deadline: float | None = None
    errors: dict[Where, int] = field(default_factory=dict)
    """server -> rcode of the failures heard this round."""
    started: float = 0.0
    via_tcp: bool = False
    """Asked again over TCP after a truncated answer (see :meth:`Resolver.tcp_query`)."""

    @property
    def done(self) -> bool:
        return self.status is not Status.PENDING

    @property
    def needs_tcp(self) -> bool:
        return self.status is Status.NEEDS_TCP

    @property
    def addresses(self) -> list[int]:
        """The answer's addresses as ints: IPv4 ones for an A query, IPv6 ones for AAAA."""
        return [int(r) for r in self.records if isinstance(r, (int, ipaddress.IPv6Address))]

    def result(self) -> list[RData]:
        """The answer's records, or raise the :class:`DnsError` (also when TCP is needed)."""
        if self.status is Status.DONE:
            return list(self.records)
        if self.error is not None:
            raise self.error
        if self.status is Status.NEEDS_TCP:
            raise DnsError("truncated", f"{self.name}: answer truncated, retry over TCP")
        raise DnsError("pending", f"{self.name}: not resolved yet")


class Resolver:
    def __init__(self, servers: Sequence[Where], rng: random.Random, config: DnsConfig | None = None,
                 counters: Counters | None = None) -> None:
        self.servers = list(servers)
        self.rng = rng
        self.config = config or DnsConfig()
        self.counters = counters if counters is not None else Counters()
        self.cache = DnsCache(self.config.cache_size)
        self._by_id: dict[int, Query] = {}
        self._pending: list[Query] = []

    # ------------------------------------------------------------------ the sans-I/O interface

    def query(self, name: str, now: float, qtype: int = wire.TYPE_A, src_port: int | None = None,
              on_done: Callable[[Query], None] | None = None) -> tuple[Query, list[DnsDatagram]]:
        """Start resolving ``name``. The handle may already be done (cache, literal, bad name)."""
        cfg = self.config
        port = src_port if src_port is not None else self.rng.randint(cfg.port_low, cfg.port_high)
        q = Query(name=name, qtype=qtype, src_port=port, on_done=on_done, started=now)
        try:
            key = wire.name_key(name)
            if not key:
                raise ValueError("empty name")
        except ValueError as exc:
            self._finish(q, error=DnsError("bad_name", f"{name!r} is not a valid DNS name: {exc}"))
            return q, []
        literal = _literal(name, qtype)
        if literal is not None:
            q.records = [literal]
            self._finish(q, status=Status.DONE)
            return q, []
        q.current = key
        if self._from_cache(q, now):
            return q, []
        if not self.servers:
            self._finish(q, error=DnsError("timeout", f"{name}: no DNS server configured"))
            return q, []
        if len(self._pending) >= cfg.max_outstanding:
            self.counters.drop("dns.too_many_queries")
            self._finish(q, error=DnsError("overloaded", f"{name}: too many queries in flight"))
            return q, []
        self._pending.append(q)
        return q, self._transmit(q, now)

    def receive(self, server: Where, src_port: int, payload: bytes | memoryview, now: float,
                dst_port: int | None = None) -> list[DnsDatagram]:
        """A datagram from ``server``:``src_port`` (to our ``dst_port``, if the caller knows it)."""
        try:
            return self._receive(server, src_port, payload, now, dst_port)
        except Exception:  # a bug must not take the caller down with it: count and log it
            self.counters.drop("internal_error")
            log.exception("internal error in the DNS resolver (please report it)")
            return []

    def _receive(self, server: Where, src_port: int, payload: bytes | memoryview, now: float,
                 dst_port: int | None) -> list[DnsDatagram]:
        if len(payload) < wire.HEADER_LEN:
            self.counters.drop("dns.truncated")
            return []
        ident = (payload[0] << 8) | payload[1]
        q = self._by_id.get(ident)
        if q is None:
            self.counters.drop("dns.unknown_id")
            return []
        if q.outstanding.get(ident) != server:
            self.counters.drop("dns.wrong_server")
            return []
        if src_port != wire.PORT or (dst_port is not None and dst_port != q.src_port):
            self.counters.drop("dns.wrong_port")
            return []
        try:
            msg = wire.parse(payload)
        except WireError as exc:
            self.counters.drop(exc.reason)
            return []
        if not msg.is_response or msg.opcode != wire.OPCODE_QUERY:
            self.counters.drop("dns.not_a_response")
            return []
        if (len(msg.questions) != 1 or msg.questions[0].qtype != q.qtype
                or msg.questions[0].qclass != wire.CLASS_IN or wire.name_key(msg.questions[0].name) != q.current):
            self.counters.drop("dns.wrong_question")
            return []
        self.counters["dns.answers"] += 1
        return self._answer(q, server, msg, now)

    def get_timer(self) -> float | None:
        deadlines = [q.deadline for q in self._pending if q.deadline is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> list[DnsDatagram]:
        out: list[DnsDatagram] = []
        for q in [q for q in self._pending if q.deadline is not None and q.deadline <= now]:
            self.counters["dns.timeouts"] += 1
            q.attempt += 1
            out += self._next_attempt(q, now)
        return out

    def refused(self, server: Where, now: float) -> list[DnsDatagram]:
        """``server`` answered a question with ICMP port unreachable: no DNS server runs there. Every query
        whose turn it is asks the next server at once rather than at its timeout, as glibc does (res_send.c:
        its socket, connected to the server, reads ECONNREFUSED and ends that server's turn); a question
        of an earlier turn is only forgotten. The owner learns of it through IP_RECVERR."""
        out: list[DnsDatagram] = []
        for q in list(self._pending):
            stale = [ident for ident, s in q.outstanding.items() if s == server]
            if q.via_tcp or not stale:
                continue
            self.counters["dns.port_unreachable"] += 1
            for ident in stale:
                del q.outstanding[ident]
                self._by_id.pop(ident, None)
            if self.servers[q.attempt % len(self.servers)] == server:
                q.attempt += 1
                out += self._next_attempt(q, now)
        return out

    def cancel(self, q: Query) -> None:
        if not q.done:
            self._finish(q, error=DnsError("cancelled", f"{q.name}: cancelled"))

    # ------------------------------------------------------------------ the TCP retry

    def tcp_query(self, q: Query, now: float) -> tuple[Where, bytes]:
        """Ask ``q`` again over TCP after a truncated answer (RFC 7766 section 5).

        Returns the server to connect to (port 53) and the query message, with a fresh ID; frame it with
        :func:`pystack.dns.tcp.frame`. The caller owns the TCP timeout: it ends the attempt with
        :meth:`receive_tcp` or :meth:`tcp_failed`.
        """
        if q.status is not Status.NEEDS_TCP or q.server is None:
            raise ValueError("tcp_query is for a query whose UDP answer was truncated")
        ident = self._new_id()
        q.status = Status.PENDING
        q.error = None
        q.via_tcp = True
        q.outstanding = {ident: q.server}
        self._by_id[ident] = q
        q.wire_query = wire.build_query(ident, q.current, q.qtype)
        q.deadline = None
        self._pending.append(q)
        self.counters["dns.tcp_queries_sent"] += 1
        return q.server, q.wire_query

    def receive_tcp(self, q: Query, message: bytes | memoryview, now: float) -> list[DnsDatagram]:
        """The answer read from the TCP stream (without its length prefix). If it leads on to a CNAME
        target the server did not resolve, the datagrams to send for that are returned."""
        try:
            msg = wire.parse(message)
        except WireError as exc:
            self.counters.drop(exc.reason)
            self.tcp_failed(q, "malformed answer", now)
            return []
        if q.done or not q.via_tcp or q.outstanding.get(msg.id) is None:
            self.counters.drop("dns.unknown_id")
            self.tcp_failed(q, "answer with the wrong ID", now)
            return []
        server = q.outstanding[msg.id]
        if (not msg.is_response or len(msg.questions) != 1 or msg.questions[0].qtype != q.qtype
                or wire.name_key(msg.questions[0].name) != q.current):
            self.counters.drop("dns.wrong_question")
            self.tcp_failed(q, "answer to another question", now)
            return []
        self.counters["dns.tcp_answers"] += 1
        if msg.truncated:
            self._finish(q, error=DnsError("truncated", f"{q.name}: answer truncated even over TCP "
                                                        f"(from {_ip(server)})"))
            return []
        q.via_tcp = False
        q.deadline = None
        return self._answer(q, server, msg, now)

    def tcp_failed(self, q: Query, reason: str, now: float) -> None:
        """The TCP retry did not produce an answer: the query fails with ``reason``."""
        if not q.done or q.status is Status.NEEDS_TCP:
            server = _ip(q.server) if q.server is not None else "the server"
            self._finish(q, error=DnsError("truncated", f"{q.name}: answer truncated over UDP, and the TCP "
                                                        f"retry to {server} failed: {reason}"))

    # ------------------------------------------------------------------ sending

    def _transmit(self, q: Query, now: float) -> list[DnsDatagram]:
        """Send attempt ``q.attempt``: servers in turn, each round waiting longer (RFC 1536 section 1)."""
        n = len(self.servers)
        server = self.servers[q.attempt % n]
        rounds = q.attempt // n
        ident = self._new_id()
        q.outstanding[ident] = server
        self._by_id[ident] = q
        q.wire_query = wire.build_query(ident, q.current, q.qtype)
        q.deadline = now + self.config.timeout * (self.config.backoff ** rounds)
        self.counters["dns.queries_sent"] += 1
        return [DnsDatagram(server, wire.PORT, q.src_port, q.wire_query)]

    def _next_attempt(self, q: Query, now: float) -> list[DnsDatagram]:
        n = len(self.servers)
        if q.attempt >= n * self.config.attempts:
            if q.errors:
                self._fail_with_rcode(q, next(reversed(q.errors.values())), next(reversed(q.errors)))
            else:
                servers = ", ".join(_ip(s) for s in self.servers)
                self._finish(q, error=DnsError(
                    "timeout", f"{q.name}: no answer from {servers} ({q.attempt} queries in {now - q.started:.1f} s)"))
            return []
        if q.attempt % n == 0:
            q.errors.clear()  # a new round: every server gets another chance
        return self._transmit(q, now)

    def _new_id(self) -> int:
        for _ in range(64):
            ident = self.rng.getrandbits(16)
            if ident not in self._by_id:
                return ident
        raise RuntimeError("no free DNS ID")  # unreachable while max_outstanding is far below 65536

    # ------------------------------------------------------------------ answers

    def _answer(self, q: Query, server: Where, msg: DnsMessage, now: float) -> list[DnsDatagram]:
        q.server = server
        if msg.truncated:
            self.counters["dns.truncated_answers"] += 1
            self._finish(q, status=Status.NEEDS_TCP)
            return []
        rcode = msg.rcode
        if rcode not in (wire.RCODE_NOERROR, wire.RCODE_NXDOMAIN):
            # SERVFAIL, REFUSED, NOTIMP, FORMERR: this server cannot help; try the next one at once.
            q.errors[server] = rcode
            for ident in [i for i, s in q.outstanding.items() if s == server]:
                del q.outstanding[ident]
                self._by_id.pop(ident, None)
            if set(self.servers) <= set(q.errors):
                self._fail_with_rcode(q, rcode, server)
                return []
            q.attempt += 1
            return self._next_attempt(q, now)
        chain, final, ttl, records = self._follow(q, msg)
        if chain is None:
            return []
        q.cname_chain += chain
        if len(q.cname_chain) > self.config.max_cname_hops:
            self._finish(q, error=DnsError("cname_loop", f"{q.name}: more than {self.config.max_cname_hops} "
                                                         "CNAMEs (a loop?)"))
            return []
        if ttl is not None:
            q.ttl = ttl if q.ttl_known is False else min(q.ttl, ttl)
            q.ttl_known = True
        if rcode == wire.RCODE_NXDOMAIN:
            # RFC 2308 section 2.1: the name error is about the last name of the chain.
            self._negative(q, msg, "nxdomain", final, server, now)
            return []
        if records:
            q.records = records
            self._finish(q, status=Status.DONE)
            self._cache_answer(q, now)
            return []
        if chain and not _soa(msg):
            # The server followed a CNAME but did not resolve its target: ask for the target ourselves.
            q.current = final
            q.attempt = 0
            q.errors.clear()
            self._forget_ids(q)
            return self._transmit(q, now)
        self._negative(q, msg, "nodata", final, server, now)
        return []

    def _follow(self, q: Query, msg: DnsMessage) -> tuple[list[str] | None, str, int | None, list[RData]]:
        """Walk CNAMEs from the question within the answer section (bounded); collect the final records."""
        name = q.current
        chain: list[str] = []
        ttls: list[int] = []
        answers = [(wire.name_key(r.name), r) for r in msg.answers if r.rclass == wire.CLASS_IN]
        for _ in range(self.config.max_cname_hops + 1):
            found = [r for k, r in answers if k == name and r.rtype == q.qtype]
            if found:
                ttls += [_ttl(r) for r in found]
                return chain, name, min(ttls), [r.rdata for r in found]
            cnames = [r for k, r in answers if k == name and r.rtype == wire.TYPE_CNAME]
            if not cnames or q.qtype == wire.TYPE_CNAME:
                return chain, name, min(ttls) if ttls else None, []
            target = cnames[0].rdata
            assert isinstance(target, str)
            ttls.append(_ttl(cnames[0]))
            name = wire.name_key(target)
            chain.append(target)
        self._finish(q, error=DnsError("cname_loop", f"{q.name}: CNAME chain longer than "
                                                     f"{self.config.max_cname_hops} (a loop?)"))
        return None, name, None, []

    def _negative(self, q: Query, msg: DnsMessage, kind: str, final: str, server: Where, now: float) -> None:
        about = f" (for {final})" if q.cname_chain else ""
        text = {"nxdomain": "no such name", "nodata": f"no {_type_name(q.qtype)} record"}[kind]
        rcode = "NXDOMAIN" if kind == "nxdomain" else "NOERROR, no data"
        self._finish(q, error=DnsError(kind, f"{q.name}: {text}{about} ({rcode} from {_ip(server)})"))
        soa = _soa(msg)
        if soa is None:
            return  # RFC 2308 section 5: without an SOA, a negative answer is not cached
        assert isinstance(soa.rdata, wire.Soa)
        ttl = min(_ttl(soa), soa.rdata.minimum, self.config.max_negative_ttl)
        if q.ttl_known:
            ttl = min(ttl, q.ttl)  # the CNAMEs leading here expire too
        entry = CacheEntry(now + ttl, (), tuple(q.cname_chain), kind)
        self.cache.put((wire.name_key(q.name), q.qtype), entry, now)

    def _cache_answer(self, q: Query, now: float) -> None:
        ttl = min(q.ttl, self.config.max_ttl)
        entry = CacheEntry(now + ttl, tuple(q.records), tuple(q.cname_chain))
        self.cache.put((wire.name_key(q.name), q.qtype), entry, now)

    def _from_cache(self, q: Query, now: float) -> bool:
        entry = self.cache.get((q.current, q.qtype), now)
        if entry is None:
            return False
        self.counters["dns.cache_hits"] += 1
        q.from_cache = True
        q.cname_chain = list(entry.chain)
        q.ttl = max(0, int(entry.expires - now))
        if entry.negative is None:
            q.records = list(entry.data)
            self._finish(q, status=Status.DONE)
        else:
            text = "no such name" if entry.negative == "nxdomain" else f"no {_type_name(q.qtype)} record"
            self._finish(q, error=DnsError(entry.negative, f"{q.name}: {text} (cached)"))
        return True

    def _fail_with_rcode(self, q: Query, rcode: int, server: Where) -> None:
        code = {wire.RCODE_SERVFAIL: "servfail", wire.RCODE_REFUSED: "refused"}.get(rcode, "servfail")
        name = wire.RCODE_NAMES.get(rcode, f"RCODE {rcode}")
        self._finish(q, error=DnsError(code, f"{q.name}: server failure ({name} from {_ip(server)}"
                                             f"{' and the others' if len(self.servers) > 1 else ''})"))

    def _forget_ids(self, q: Query) -> None:
        for ident in q.outstanding:
            self._by_id.pop(ident, None)
        q.outstanding.clear()

    def _finish(self, q: Query, status: Status = Status.FAILED, error: DnsError | None = None) -> None:
        q.status = status
        q.error = error
        q.deadline = None
        self._forget_ids(q)
        if q in self._pending:
            self._pending.remove(q)
        self.counters[f"dns.result.{status.value}"] += 1
        if q.on_done is not None:
            q.on_done(q)


def _ttl(record: Record) -> int:
    """RFC 2181 section 8: a TTL with the top bit set is read as zero."""
    return 0 if record.ttl & 0x80000000 else record.ttl


def _soa(msg: DnsMessage) -> Record | None:
    for r in msg.authority:
        if r.rtype == wire.TYPE_SOA and isinstance(r.rdata, wire.Soa):
            return r
    return None


def _literal(name: str, qtype: int) -> RData | None:
    """An address literal of the family ``qtype`` asks for is its own answer (an A or AAAA query)."""
    try:
        if qtype == wire.TYPE_A:
            return int(ipaddress.IPv4Address(name))
        if qtype == wire.TYPE_AAAA:
            return ipaddress.IPv6Address(name)
    except ValueError:
        pass
    return None


def _type_name(qtype: int) -> str:
    return {wire.TYPE_A: "A", wire.TYPE_AAAA: "AAAA", wire.TYPE_CNAME: "CNAME", wire.TYPE_MX: "MX",
            wire.TYPE_TXT: "TXT", wire.TYPE_PTR: "PTR", wire.TYPE_NS: "NS"}.get(qtype, f"type {qtype}")
