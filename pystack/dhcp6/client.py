"""A DHCPv6 client (RFC 8415) as a sans-I/O state machine, stateful or stateless.

Stateful (a router advertisement's M flag): Solicit, collect Advertise messages during the first
timeout, Request from the best server, take the IA_NA's addresses from its Reply; Renew at T1, Rebind at
T2, each address gone when its valid lifetime ends; Decline an address duplicate address detection
finds in use; Release them on the way out and wait for the Reply (section 18.2.7). Stateless (the O flag): Information-Request, for the DNS servers, asked again after the
information refresh time (section 21.23). Every message is retransmitted as section 15 says.

The owner feeds it the payloads of UDP datagrams received on port 546 and the time, and collects:

* :meth:`Dhcp6Client.datagrams_to_send` -- payloads for UDP 546 -> 547 at ff02::1:2 (section 7.1),
  sent from the interface's link-local address;
* :meth:`Dhcp6Client.events` -- :class:`Advertised`, :class:`Leased`, :class:`LeaseEnded`,
  :class:`Declined`, :class:`Informed` and :class:`Released`;
* :meth:`Dhcp6Client.get_timer` -- when to call :meth:`Dhcp6Client.handle_timer` next.

Replies that are malformed, or not for this client and this exchange, are dropped and counted
(``drop.dhcp6.*``).
"""

from __future__ import annotations

import enum
import logging
import math
import random
from dataclasses import dataclass, field, replace

from pystack.counters import Counters
from pystack.dhcp6.config import Dhcp6Config, Retransmission
from pystack.wire import WireError
from pystack.wire import dhcp6 as wire
from pystack.wire.dhcp6 import Dhcp6Message, IaAddress, IaNa

log = logging.getLogger("pystack")

IAID = 1
"""The one IA_NA of the one interface (section 12: any number stable for the interface)."""
_ORO = (wire.OPT_DNS_SERVERS, wire.OPT_DOMAIN_LIST)


class Mode(enum.Enum):
    STATEFUL = "stateful"
    STATELESS = "stateless"


class State(enum.Enum):
    STOPPED = "STOPPED"
    SOLICITING = "SOLICITING"
    REQUESTING = "REQUESTING"
    BOUND = "BOUND"
    RENEWING = "RENEWING"
    REBINDING = "REBINDING"
    DECLINING = "DECLINING"
    RELEASING = "RELEASING"
    INFORMING = "INFORMING"
    INFORMED = "INFORMED"


_EXPECTS = {State.SOLICITING: wire.ADVERTISE, State.REQUESTING: wire.REPLY, State.RENEWING: wire.REPLY,
            State.REBINDING: wire.REPLY, State.DECLINING: wire.REPLY, State.RELEASING: wire.REPLY,
            State.INFORMING: wire.REPLY}
_SENDS = {State.SOLICITING: wire.SOLICIT, State.REQUESTING: wire.REQUEST, State.RENEWING: wire.RENEW,
          State.REBINDING: wire.REBIND, State.DECLINING: wire.DECLINE, State.RELEASING: wire.RELEASE,
          State.INFORMING: wire.INFORMATION_REQUEST}
_HOLDING = (State.BOUND, State.RENEWING, State.REBINDING, State.DECLINING)


# ---------------------------------------------------------------------- what comes out


@dataclass(frozen=True, slots=True)
class Dhcp6Datagram:
    """One UDP payload to send from port 546 to ff02::1:2 port 547."""

    payload: bytes
    message: str
    """Its type's name (Solicit, Request ...)."""
    why: str = ""


@dataclass(frozen=True, slots=True)
class Advertised:
    """A server offered ``addresses`` (narration only: the client picks the server itself)."""

    server_id: bytes
    addresses: tuple[int, ...]
    preference: int


@dataclass(frozen=True, slots=True)
class Leased:
    """Use ``address`` with these lifetimes (seconds from now, ``math.inf`` if infinite)."""

    address: int
    preferred: float
    valid: float
    t1: float
    t2: float
    server_id: bytes
    renewed: bool = False


@dataclass(frozen=True, slots=True)
class LeaseEnded:
    """Stop using ``address``: "expired", "released", "declined", "withdrawn" (lifetime 0 in a reply) or
    the status a server answered (NoBinding, NotOnLink ...)."""

    address: int
    reason: str


@dataclass(frozen=True, slots=True)
class Declined:
    """``address`` was in use (DAD): Decline was sent, and the client goes on with what is left."""

    address: int


@dataclass(frozen=True, slots=True)
class Informed:
    """DNS servers and search domains from a Reply (stateless, or with a lease)."""

    dns_servers: tuple[int, ...]
    domains: tuple[str, ...]
    refresh: float
    server_id: bytes


@dataclass(frozen=True, slots=True)
class Released:
    """The Release exchange is over (section 18.2.7): ``status`` is the server's answer ("Success",
    "NoBinding" ...: any status ends it, section 18.2.10.2), or None when no Reply came in time. The
    addresses were already given up (:class:`LeaseEnded` "released") when the Release went out."""

    addresses: tuple[int, ...]
    status: str | None


Event = Advertised | Leased | LeaseEnded | Declined | Informed | Released


@dataclass(slots=True)
class _Address:
    address: int
    preferred_until: float
    valid_until: float


@dataclass(slots=True)
class _Lease:
    server_id: bytes
    addresses: dict[int, _Address] = field(default_factory=dict)
    renew_at: float = math.inf
    rebind_at: float = math.inf

    @property
    def expires_at(self) -> float:
        return max((a.valid_until for a in self.addresses.values()), default=0.0)


# ---------------------------------------------------------------------- the client


class Dhcp6Client:
    """One interface's DHCPv6 client. Idle until :meth:`start` (stateful or stateless)."""

    def __init__(self, mac: bytes, rng: random.Random, config: Dhcp6Config | None = None,
                 counters: Counters | None = None) -> None:
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        self.rng = rng
        self.config = config or Dhcp6Config()
        self.counters = counters if counters is not None else Counters()
        self.duid = wire.duid_ll(mac)
        self.mode: Mode | None = None
        self.state = State.STOPPED
        self.lease: _Lease | None = None
        self.xid = 0
        self._out: list[Dhcp6Datagram] = []
        self._events: list[Event] = []
        self._deadline: float | None = None
        """When the next message of the exchange is due (or the state's next step)."""
        self._params = self.config.solicit
        self._rt = 0.0
        self._sent = 0
        self._first_sent: float | None = None
        self._mrd_end = math.inf
        self._advertisements: list[Dhcp6Message] = []
        self._first_rt_over = False
        self._server: Dhcp6Message | None = None
        """The Advertise (or Reply) of the server we Request from."""
        self._declining: list[int] = []
        self._releasing: tuple[tuple[int, ...], bytes] = ((), b"")
        """The addresses a Release gives back, and the server it goes to."""
        self._failures = 0
        self._sol_max_rt = self.config.solicit.mrt

    # ------------------------------------------------------------------ the sans-I/O interface

    def datagrams_to_send(self) -> list[Dhcp6Datagram]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def get_timer(self) -> float | None:
        deadline = self._deadline
        lease = self.lease
        if lease is not None and lease.addresses:
            soonest = min(a.valid_until for a in lease.addresses.values())
            if math.isfinite(soonest) and (deadline is None or soonest < deadline):
                deadline = soonest
        return deadline

    def start(self, mode: Mode, now: float) -> None:
        """Begin (or switch to) stateful or stateless configuration. Stateful while holding a lease is
        kept; a running exchange of the same mode is left alone."""
        if mode is self.mode and self.state is not State.STOPPED:
            return
        self.mode = mode
        if mode is Mode.STATEFUL:
            if self.state not in _HOLDING:
                self._solicit(now, delay=self.rng.uniform(0.0, self.config.sol_max_delay))
        else:
            self._inform(now, delay=self.rng.uniform(0.0, self.config.inf_max_delay))

    def handle_timer(self, now: float) -> None:
        self._expire(now)
        if self._deadline is None or now < self._deadline:
            return
        state = self.state
        if state is State.BOUND:
            self._renew(now)
        elif state is State.INFORMED:
            self._inform(now, delay=0.0)
        elif state is State.SOLICITING and self._sent and not self._first_rt_over:
            self._first_rt_over = True  # section 18.2.1: the first timeout ends the wait for Advertises
            if self._advertisements:
                self._request(self._best_advertisement(), now)
            else:
                self._transmit(now)
        elif state in _SENDS:
            if self._exhausted(now):
                self._exchange_failed(now)
            else:
                self._transmit(now)

    def receive(self, payload: bytes | memoryview, now: float) -> None:
        """A datagram that arrived on UDP port 546."""
        try:
            self._receive(payload, now)
        except Exception:  # a bug must not take the interface down: count and log it
            self.counters.drop("internal_error")
            log.exception("internal error in the DHCPv6 client (please report it)")

    def address_duplicate(self, address: int, now: float) -> None:
        """Duplicate address detection found a leased ``address`` in use: Decline it (section 18.2.8)."""
        lease = self.lease
        if lease is None or address not in lease.addresses or self.state not in _HOLDING:
            self.counters.drop("dhcp6.stray_duplicate")
            return
        del lease.addresses[address]
        self.counters["dhcp6.declines_sent"] += 1
        self._events.append(Declined(address))
        self._declining.append(address)
        self._begin(State.DECLINING, self.config.decline, now)
        self._transmit(now)

    def release(self, now: float, attempts: int | None = None) -> None:
        """Clean shutdown: give the addresses back (section 18.2.7). They are given up at once
        (:class:`LeaseEnded` "released"); the Release is retransmitted as section 15 says, REL_TIMEOUT and
        REL_MAX_RC (section 7.6), or at most ``attempts`` times: 1 waits for the Reply or the first timeout,
        whichever comes first. :class:`Released` tells the end; :attr:`releasing` is true until then.
        With nothing leased it just stops; a Release under way goes on."""
        if self.state is State.RELEASING:
            return
        lease = self.lease
        self.lease = None
        if lease is None or not lease.addresses or self.state not in _HOLDING:
            self.stop()
            return
        addresses = tuple(lease.addresses)
        for address in addresses:
            self._events.append(LeaseEnded(address, "released"))
        params = self.config.release
        if attempts is not None:
            params = replace(params, mrc=min(attempts, params.mrc) if params.mrc else attempts)
        self._declining = []
        self._releasing = (addresses, lease.server_id)
        self._begin(State.RELEASING, params, now)
        self._transmit(now)

    @property
    def releasing(self) -> bool:
        """A Release is out and its Reply neither came nor was given up on."""
        return self.state is State.RELEASING

    def stop(self) -> None:
        """Stop without telling the server (leases simply run out)."""
        self.state = State.STOPPED
        self._deadline = None

    # ------------------------------------------------------------------ exchanges (section 15)

    def _begin(self, state: State, params: Retransmission, now: float, *, delay: float = 0.0,
               mrd: float = 0.0) -> None:
        """A new exchange: a new transaction ID, its first message due after ``delay``."""
        self.state = state
        self._params = params
        self.xid = self._new_xid()
        self._sent = 0
        self._first_sent = None
        mrd = mrd or params.mrd
        self._mrd_end = now + delay + mrd if mrd else math.inf
        self._deadline = now + delay

    def _transmit(self, now: float) -> None:
        """Send the exchange's message (again) and set the next timeout (section 15)."""
        params = self._params
        if self._first_sent is None:
            self._first_sent = now
        if not self._sent:
            # The first Solicit's timeout must be above IRT (section 18.2.1): RAND only positive there.
            rand = self.rng.uniform(0.0, 0.1) if self.state is State.SOLICITING else self.rng.uniform(-0.1, 0.1)
            self._rt = params.irt + rand * params.irt
        else:
            self._rt = 2 * self._rt + self.rng.uniform(-0.1, 0.1) * self._rt
        mrt = self._sol_max_rt if self.state is State.SOLICITING else params.mrt
        if mrt and self._rt > mrt:
            self._rt = mrt + self.rng.uniform(-0.1, 0.1) * mrt
        attempt = self._sent
        self._sent += 1
        self._deadline = min(now + self._rt, self._mrd_end)
        self._send_current(now, attempt)

    def _exhausted(self, now: float) -> bool:
        params = self._params
        return bool(params.mrc and self._sent >= params.mrc) or now >= self._mrd_end

    def _exchange_failed(self, now: float) -> None:
        state = self.state
        self.counters[f"dhcp6.{_key(wire.MESSAGE_NAMES[_SENDS[state]])}_gave_up"] += 1
        if state is State.REQUESTING:
            self._restart(now)
        elif state is State.RENEWING:
            self._rebind(now)
        elif state is State.REBINDING:
            self._expire(now, force=True)
        elif state is State.DECLINING:
            self._after_decline(now)
        elif state is State.RELEASING:
            self._released(None)

    def _send_current(self, now: float, attempt: int) -> None:
        state = self.state
        lease = self.lease
        again = f" retransmission #{attempt} (RFC 8415 15)" if attempt else ""
        if state is State.SOLICITING:
            msg = self._message(wire.SOLICIT, now, ia=self._ia([]))
            why = "Solicit: the router advertisement says managed (M), looking for a DHCPv6 server"
        elif state is State.REQUESTING:
            server = self._server
            assert server is not None and server.server_id is not None
            msg = self._message(wire.REQUEST, now, server_id=server.server_id, ia=self._ia(_offered(server)))
            why = "Request: the addresses the chosen server advertised (RFC 8415 18.2.2)"
        elif state in (State.RENEWING, State.REBINDING):
            assert lease is not None
            renewing = state is State.RENEWING
            msg = self._message(wire.RENEW if renewing else wire.REBIND, now,
                                server_id=lease.server_id if renewing else None, ia=self._ia(list(lease.addresses)))
            why = ("Renew: T1 passed, extend the lease with its server (RFC 8415 18.2.4)" if renewing
                   else "Rebind: T2 passed, extend the lease with any server (RFC 8415 18.2.5)")
        elif state is State.DECLINING:
            assert lease is not None
            msg = self._message(wire.DECLINE, now, server_id=lease.server_id, ia=self._ia(self._declining), oro=False)
            why = "Decline: duplicate address detection found the leased address in use (RFC 8415 18.2.8)"
        elif state is State.RELEASING:
            addresses, server_id = self._releasing
            msg = self._message(wire.RELEASE, now, server_id=server_id, ia=self._ia(list(addresses)), oro=False)
            why = "Release: giving the addresses back, waiting for the server's Reply (RFC 8415 18.2.7)"
        else:
            msg = self._message(wire.INFORMATION_REQUEST, now, oro_extra=(wire.OPT_INFORMATION_REFRESH_TIME,))
            why = "Information-Request: the router advertisement says other configuration (O), asking for DNS servers"
        self.counters[f"dhcp6.{_key(msg.name)}_sent"] += 1
        self._emit(msg, why + again)

    # ------------------------------------------------------------------ stateful

    def _solicit(self, now: float, delay: float) -> None:
        self._advertisements = []
        self._first_rt_over = False
        self._server = None
        self._begin(State.SOLICITING, self.config.solicit, now, delay=delay)

    def _restart(self, now: float) -> None:
        """Solicit again after a wait that doubles with each failure in a row (NoAddrsAvail, a Request
        never answered), so a server that refuses everything is not answered with a storm."""
        self._failures += 1
        wait = min(self.config.restart_wait_max, self.config.solicit.irt * 2 ** min(self._failures, 20))
        self._solicit(now, delay=wait * self.rng.uniform(0.9, 1.1))

    def _on_advertise(self, msg: Dhcp6Message, now: float) -> None:
        if msg.sol_max_rt is not None:  # section 18.2.9: honoured even from an Advertise without addresses
            low, high = self.config.sol_max_rt_range
            if low <= msg.sol_max_rt <= high:
                self._sol_max_rt = float(msg.sol_max_rt)
        if (msg.status is not None and msg.status.code != wire.SUCCESS) or not _offered(msg):
            self.counters.drop("dhcp6.advertise_without_address")
            return
        self.counters["dhcp6.advertise_received"] += 1
        self._events.append(Advertised(msg.server_id or b"", tuple(_offered(msg)), msg.preference or 0))
        if len(self._advertisements) < self.config.max_advertisements:
            self._advertisements.append(msg)
        else:
            self.counters.drop("dhcp6.too_many_advertisements")
        # Section 18.2.1: preference 255 is taken at once, as is any Advertise after the first timeout.
        if msg.preference == 255 or self._first_rt_over:
            self._request(self._best_advertisement(), now)

    def _best_advertisement(self) -> Dhcp6Message:
        """Section 18.2.9: the highest preference; the first among equals."""
        return max(self._advertisements, key=lambda m: m.preference or 0)

    def _request(self, server: Dhcp6Message, now: float) -> None:
        self._server = server
        self._advertisements = []
        self._begin(State.REQUESTING, self.config.request, now)
        self._transmit(now)

    def _on_reply(self, msg: Dhcp6Message, now: float) -> None:
        state = self.state
        if state is State.INFORMING:
            self._on_information(msg, now)
            return
        if state is State.DECLINING:
            self._after_decline(now)
            return
        if state is State.RELEASING:
            ia = next((i for i in msg.ia_na if i.iaid == IAID), None)
            status = msg.status or (ia.status if ia is not None else None)
            self._released(status.name if status is not None else "Success")
            return
        status = msg.status
        if status is not None and status.code != wire.SUCCESS:
            self.counters[f"dhcp6.status_{status.name.lower()}"] += 1
            if state is State.REQUESTING:
                self._restart(now)  # section 18.2.10: UnspecFail, NotOnLink ...: try the servers again
            return  # Renew and Rebind retransmit until their time runs out
        ia = next((i for i in msg.ia_na if i.iaid == IAID), None)
        if ia is None:
            self.counters.drop("dhcp6.reply_without_ia")
            return
        if ia.status is not None and ia.status.code != wire.SUCCESS:
            self.counters[f"dhcp6.status_{ia.status.name.lower()}"] += 1
            self._ia_refused(ia.status.code, ia.status.name, msg, now)
            return
        if ia.t1 and ia.t2 and ia.t1 > ia.t2:
            self.counters.drop("dhcp6.bad_t1_t2")  # section 21.4: the client discards the IA_NA
            return
        addresses = [a for a in ia.addresses if 0 < a.valid and a.preferred <= a.valid
                     and (a.status is None or a.status.code == wire.SUCCESS)]
        if len(addresses) < len(ia.addresses):
            self.counters.drop("dhcp6.unusable_iaaddr")
        if not addresses and state is State.REQUESTING:
            self.counters["dhcp6.status_noaddrsavail"] += 1
            self._restart(now)
            return
        self._take(msg, ia, addresses, now)

    def _ia_refused(self, code: int, name: str, msg: Dhcp6Message, now: float) -> None:
        state = self.state
        if state is State.REQUESTING:
            self._restart(now)  # section 18.2.10.1: NoAddrsAvail, NotOnLink ...: solicit again later
        elif code == wire.NO_BINDING and state is State.RENEWING and self._server is not None:
            self._request(self._server, now)  # the server lost our binding: ask it again
        elif code == wire.NO_BINDING and state in (State.RENEWING, State.REBINDING):
            self._drop_lease(name, now)
        elif code in (wire.NOT_ON_LINK, wire.NO_ADDRS_AVAIL):
            self._drop_lease(name, now)

    def _take(self, msg: Dhcp6Message, ia: IaNa, addresses: list[IaAddress], now: float) -> None:
        cfg = self.config
        server_id = msg.server_id or b""
        lease = self.lease if self.lease is not None else _Lease(server_id)
        held = set(lease.addresses)
        renewed = bool(held)
        lease.server_id = server_id
        for iaaddr in addresses:
            if iaaddr.address not in lease.addresses and len(lease.addresses) >= cfg.max_addresses:
                self.counters.drop("dhcp6.too_many_leased_addresses")
                continue
            valid = max(_seconds(iaaddr.valid), cfg.min_lifetime)
            preferred = min(_seconds(iaaddr.preferred), valid)
            lease.addresses[iaaddr.address] = _Address(iaaddr.address, now + preferred, now + valid)
        for iaaddr in ia.addresses:  # section 18.2.10.1: a valid lifetime of 0 withdraws the address
            if iaaddr.valid == 0 and lease.addresses.pop(iaaddr.address, None) is not None:
                self._events.append(LeaseEnded(iaaddr.address, "withdrawn"))
        if not lease.addresses:
            self.lease = None
            self._restart(now)
            return
        shortest = min(a.preferred_until for a in lease.addresses.values()) - now
        t1 = _seconds(ia.t1) if ia.t1 else 0.5 * shortest  # section 21.4: 0 leaves T1 and T2 to the client
        t2 = _seconds(ia.t2) if ia.t2 else 0.8 * shortest
        t1 = max(t1, cfg.min_lifetime) if math.isfinite(t1) else t1
        t2 = max(t2, t1)
        lease.renew_at, lease.rebind_at = now + t1, now + t2
        self.lease = lease
        self._failures = 0
        self.state = State.BOUND
        self._deadline = lease.renew_at if math.isfinite(lease.renew_at) else None
        self.counters["dhcp6.leases_renewed" if renewed else "dhcp6.leases_bound"] += 1
        for entry in lease.addresses.values():
            self._events.append(Leased(entry.address, entry.preferred_until - now, entry.valid_until - now,
                                       t1, t2, server_id, entry.address in held))
        self._informed(msg, math.inf)

    def _renew(self, now: float) -> None:
        lease = self.lease
        assert lease is not None
        self._begin(State.RENEWING, self.config.renew, now, mrd=max(lease.rebind_at - now, 0.001))
        self._transmit(now)

    def _rebind(self, now: float) -> None:
        lease = self.lease
        assert lease is not None
        self._begin(State.REBINDING, self.config.rebind, now, mrd=max(lease.expires_at - now, 0.001))
        self._transmit(now)

    def _after_decline(self, now: float) -> None:
        self._declining = []
        lease = self.lease
        if lease is None or not lease.addresses:
            self.lease = None
            self._restart(now)  # section 18.2.8: with nothing left, solicit anew
            return
        self.state = State.BOUND
        self._deadline = lease.renew_at if math.isfinite(lease.renew_at) else None
        if self._deadline is not None and self._deadline <= now:
            self._renew(now)

    def _released(self, status: str | None) -> None:
        """Section 18.2.10.2: any Reply ends the Release, as does the last timeout without one."""
        self.counters["dhcp6.releases_acknowledged" if status is not None else "dhcp6.releases_unanswered"] += 1
        addresses, self._releasing = self._releasing[0], ((), b"")
        self._events.append(Released(addresses, status))
        self.stop()

    def _expire(self, now: float, force: bool = False) -> None:
        """Addresses whose valid lifetime ended go (all of them when Rebind ran out of time)."""
        lease = self.lease
        if lease is None:
            return
        for entry in [a for a in lease.addresses.values() if force or a.valid_until <= now]:
            del lease.addresses[entry.address]
            self.counters["dhcp6.addresses_expired"] += 1
            self._events.append(LeaseEnded(entry.address, "expired"))
        if not lease.addresses and self.state in _HOLDING:
            self.lease = None
            self._solicit(now, delay=0.0)

    def _drop_lease(self, reason: str, now: float) -> None:
        lease = self.lease
        if lease is not None:
            for address in list(lease.addresses):
                self._events.append(LeaseEnded(address, reason))
        self.lease = None
        self._solicit(now, delay=0.0)

    # ------------------------------------------------------------------ stateless (section 18.2.6)

    def _inform(self, now: float, delay: float) -> None:
        self._begin(State.INFORMING, self.config.information, now, delay=delay)

    def _on_information(self, msg: Dhcp6Message, now: float) -> None:
        cfg = self.config
        if msg.refresh_time is None:
            refresh = cfg.irt_default
        else:
            refresh = max(_seconds(msg.refresh_time), cfg.irt_minimum)
        self.state = State.INFORMED
        self._deadline = now + refresh if math.isfinite(refresh) else None
        self.counters["dhcp6.information_received"] += 1
        self._informed(msg, refresh, always=True)

    def _informed(self, msg: Dhcp6Message, refresh: float, always: bool = False) -> None:
        cfg = self.config
        servers = tuple(dict.fromkeys(s for s in msg.dns_servers if _usable(s)))
        if len(servers) > cfg.max_dns_servers:
            self.counters.drop("dhcp6.too_many_dns_servers")
            servers = servers[:cfg.max_dns_servers]
        domains = msg.domains[:cfg.max_domains]
        if servers or domains or always:
            self._events.append(Informed(servers, domains, refresh, msg.server_id or b""))

    # ------------------------------------------------------------------ receiving (section 16)

    def _receive(self, payload: bytes | memoryview, now: float) -> None:
        try:
            msg = wire.parse(payload)
        except WireError as exc:
            self.counters.drop(exc.reason)
            return
        reason = self._check(msg)
        if reason:
            self.counters.drop(reason)
            return
        if msg.msg_type == wire.ADVERTISE:
            self._on_advertise(msg, now)
        else:
            self._on_reply(msg, now)

    def _check(self, msg: Dhcp6Message) -> str | None:
        mtype = msg.msg_type
        if mtype == wire.RECONFIGURE:
            return "dhcp6.reconfigure_ignored"  # it needs RFC 8415 20.4's authentication, which we lack
        if mtype not in (wire.ADVERTISE, wire.REPLY):
            return "dhcp6.not_a_server_message"
        expected = _EXPECTS.get(self.state)
        if expected is None or (self.state is State.SOLICITING and not self._sent):
            return "dhcp6.not_expecting"
        if mtype != expected:
            return "dhcp6.unexpected_message"
        if msg.xid != self.xid:
            return "dhcp6.wrong_xid"
        if msg.server_id is None:
            return "dhcp6.no_server_id"  # sections 16.3 and 16.10
        if msg.client_id is None:
            return "dhcp6.no_client_id"  # we always send ours
        if msg.client_id != self.duid:
            return "dhcp6.wrong_client_id"
        expected_server = self._expected_server()
        if expected_server is not None and msg.server_id != expected_server:
            return "dhcp6.wrong_server"
        return None

    def _expected_server(self) -> bytes | None:
        """The server a Request, Renew or Decline went to: only its Reply is taken."""
        state = self.state
        if state is State.REQUESTING and self._server is not None:
            return self._server.server_id
        if state in (State.RENEWING, State.DECLINING) and self.lease is not None:
            return self.lease.server_id
        if state is State.RELEASING:
            return self._releasing[1]
        return None

    # ------------------------------------------------------------------ building

    def _message(self, mtype: int, now: float, *, server_id: bytes | None = None, ia: IaNa | None = None,
                 oro: bool = True, oro_extra: tuple[int, ...] = ()) -> Dhcp6Message:
        # Section 21.9: hundredths of a second since the exchange's first message, 0xffff at most.
        first = self._first_sent if self._first_sent is not None else now
        elapsed = min(int((now - first) * 100), 0xFFFF)
        options = _ORO + oro_extra if oro else ()
        if mtype == wire.SOLICIT:
            options += (wire.OPT_SOL_MAX_RT,)  # section 18.2.1: MUST be requested in Solicit
        return Dhcp6Message(mtype, self.xid, client_id=self.duid, server_id=server_id,
                            ia_na=(ia,) if ia is not None else (), oro=options, elapsed=max(elapsed, 0))

    @staticmethod
    def _ia(addresses: list[int]) -> IaNa:
        """Our IA_NA; T1, T2 and lifetimes 0: the server chooses (section 18.2)."""
        return IaNa(IAID, 0, 0, tuple(IaAddress(a, 0, 0) for a in addresses))

    def _emit(self, msg: Dhcp6Message, why: str) -> None:
        self._out.append(Dhcp6Datagram(wire.build(msg), msg.name, why))

    def _new_xid(self) -> int:
        xid = self.rng.getrandbits(24)
        while xid == self.xid:
            xid = self.rng.getrandbits(24)
        return xid


def _offered(msg: Dhcp6Message) -> list[int]:
    """The addresses of our IA_NA in an Advertise or Reply, those without an error status."""
    return [a.address for ia in msg.ia_na if ia.iaid == IAID and (ia.status is None or ia.status.code == wire.SUCCESS)
            for a in ia.addresses if a.status is None or a.status.code == wire.SUCCESS]


def _key(name: str) -> str:
    """A message's name as a counter key: "Information-Request" -> "information_request"."""
    return name.lower().replace("-", "_")


def _seconds(value: int) -> float:
    return math.inf if value == wire.INFINITY else float(value)


def _usable(address: int) -> bool:
    """A unicast address a DNS server can have: not ::, loopback or multicast."""
    return address not in (0, 1) and address >> 120 != 0xFF
