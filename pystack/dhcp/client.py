"""A DHCP client (RFC 2131) as a sans-I/O state machine.

The owner feeds it the payloads of UDP datagrams received on port 68 and the time, and collects:

* :meth:`DhcpClient.datagrams_to_send` -- payloads for UDP 68 -> 67, each with its IP source and
  destination (0.0.0.0 -> 255.255.255.255 until we hold an address; unicast to the server to renew);
* :meth:`DhcpClient.events` -- :class:`Bound`, :class:`LeaseLost`, :class:`Declined`,
  :class:`ProbeAddress` (check the address with ARP, RFC 5227, then call :meth:`DhcpClient.probe_result`)
  and :class:`Failed`;
* :meth:`DhcpClient.get_timer` -- when to call :meth:`DhcpClient.handle_timer` next.

Replies that are malformed, or not for this client and this exchange, are dropped and counted.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from dataclasses import dataclass

from pystack.counters import Counters
from pystack.dhcp.config import DhcpConfig
from pystack.wire import WireError
from pystack.wire import dhcp as wire
from pystack.wire.dhcp import DhcpMessage

log = logging.getLogger("pystack")

BROADCAST = 0xFFFFFFFF
CLIENT_PORT = wire.CLIENT_PORT
SERVER_PORT = wire.SERVER_PORT
_PARAMETERS = bytes([wire.OPT_SUBNET_MASK, wire.OPT_ROUTER, wire.OPT_DNS, wire.OPT_DOMAIN,
                     wire.OPT_LEASE_TIME, wire.OPT_T1, wire.OPT_T2])


class State(enum.Enum):
    INIT = "INIT"
    SELECTING = "SELECTING"
    REQUESTING = "REQUESTING"
    PROBING = "PROBING"
    BOUND = "BOUND"
    RENEWING = "RENEWING"
    REBINDING = "REBINDING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


_ACQUIRING = (State.INIT, State.SELECTING, State.REQUESTING)
_HOLDING = (State.BOUND, State.RENEWING, State.REBINDING)


# ---------------------------------------------------------------------- what comes out


@dataclass(frozen=True, slots=True)
class DhcpDatagram:
    """One UDP payload to send from port 68 to port 67."""

    payload: bytes
    dst: int
    src: int
    """0 until an address is bound (RFC 2131 section 4.1); the bound address when renewing."""
    why: str = ""
    """Why it is sent (a capture's comment, pystack.reasons)."""


@dataclass(frozen=True, slots=True)
class Bound:
    """We may use ``address``: configure the interface. Durations are seconds (``math.inf`` if infinite)."""

    address: int
    prefix: int
    router: int | None
    dns: tuple[int, ...]
    domain: str | None
    lease: float
    t1: float
    t2: float
    server: int
    renewed: bool = False
    """True when this extends a lease we already held (same address; only times or options changed)."""


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """Stop using ``address`` now. ``reason``: "expired", "nak", "released" or "address_changed"."""

    address: int
    reason: str


@dataclass(frozen=True, slots=True)
class Declined:
    """The offered address was in use (ARP conflict); we sent DHCPDECLINE and will start again."""

    address: int
    server: int


@dataclass(frozen=True, slots=True)
class ProbeAddress:
    """Probe ``address`` with ARP (RFC 5227), then call ``probe_result(address, conflict, now)``."""

    address: int


@dataclass(frozen=True, slots=True)
class Failed:
    """No lease within ``DhcpConfig.acquire_timeout``; the client has stopped."""

    reason: str


Event = Bound | LeaseLost | Declined | ProbeAddress | Failed


@dataclass(slots=True)
class Lease:
    address: int
    prefix: int
    routers: list[int]
    dns: list[int]
    domain: str | None
    server: int
    duration: float
    t1: float
    t2: float
    start: float
    """When the REQUEST that won this lease was first sent: the lease runs from there (RFC 2131 4.4.1)."""

    @property
    def renew_at(self) -> float:
        return self.start + self.t1

    @property
    def rebind_at(self) -> float:
        return self.start + self.t2

    @property
    def expires_at(self) -> float:
        return self.start + self.duration


# ---------------------------------------------------------------------- the client


class DhcpClient:
    """One interface's DHCP client. Starts at construction: the first DISCOVER is due at ``now``
    (plus the optional startup delay)."""

    def __init__(self, mac: bytes, now: float, rng: random.Random, config: DhcpConfig | None = None,
                 counters: Counters | None = None, requested_address: int | None = None) -> None:
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        self.mac = mac
        self.rng = rng
        self.config = config or DhcpConfig()
        self.counters = counters if counters is not None else Counters()
        self.client_id = b"\x01" + mac  # RFC 2132 section 9.14: hardware type 1 and the MAC
        self.state = State.STOPPED
        self.lease: Lease | None = None
        self.previous_address = requested_address
        """Asked for again in DISCOVER (option 50), as RFC 2131 section 4.4.1 allows."""
        self.xid = 0
        self._out: list[DhcpDatagram] = []
        self._events: list[Event] = []
        self._deadline: float | None = None
        self._attempts = 0
        self._exchange_start = now  # for 'secs' and the lease start
        self._first_request = now
        self._offer: DhcpMessage | None = None
        self._pending: Lease | None = None
        self._give_up_at: float | None = None
        self._acquire_start = now
        self._tally = {"discovers": 0, "offers": 0, "naks": 0, "declines": 0, "request_timeouts": 0}
        self.start(now)

    # ------------------------------------------------------------------ the sans-I/O interface

    def datagrams_to_send(self) -> list[DhcpDatagram]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def get_timer(self) -> float | None:
        deadline = self._deadline
        if self._give_up_at is not None and self.state in _ACQUIRING:
            deadline = self._give_up_at if deadline is None else min(deadline, self._give_up_at)
        return deadline

    def handle_timer(self, now: float) -> None:
        if self._give_up_at is not None and self.state in _ACQUIRING and now >= self._give_up_at:
            self._fail(now)
            return
        if self._deadline is None or now < self._deadline:
            return
        state = self.state
        if state is State.INIT:
            self._discover(now)
        elif state is State.SELECTING:
            self._attempts += 1
            self._send_discover(now)
        elif state is State.REQUESTING:
            self._attempts += 1
            if self._attempts >= self.config.request_retries:
                self._tally["request_timeouts"] += 1
                self.counters["dhcp.request_timeouts"] += 1
                self._discover(now)  # RFC 2131 4.4.1: no answer to our REQUESTs, back to INIT
            else:
                self._send_request(now)
        elif state is State.PROBING:
            self.counters["dhcp.probe_result_timeouts"] += 1
            self._bind(now, renewed=False)
        elif state is State.BOUND:
            self._renew(now)
        elif state is State.RENEWING:
            assert self.lease is not None
            if now >= self.lease.rebind_at:
                self._rebind(now)
            else:
                self._send_renewal(now)
        elif state is State.REBINDING:
            assert self.lease is not None
            if now >= self.lease.expires_at:
                self._lose("expired", now)
            else:
                self._send_renewal(now)

    def receive(self, payload: bytes | memoryview, now: float) -> None:
        """A datagram that arrived on UDP port 68."""
        try:
            self._receive(payload, now)
        except Exception:  # a bug must not take the interface down: count and log it
            self.counters.drop("internal_error")
            log.exception("internal error in the DHCP client (please report it)")

    def _receive(self, payload: bytes | memoryview, now: float) -> None:
        try:
            msg = wire.parse(payload)
        except WireError as exc:
            self.counters.drop(exc.reason)
            return
        reason = self._check_reply(msg)
        if reason:
            self.counters.drop(reason)
            return
        mtype = msg.message_type
        state = self.state
        if state is State.SELECTING and mtype == wire.OFFER:
            self._on_offer(msg, now)
        elif state is State.REQUESTING and mtype in (wire.ACK, wire.NAK):
            self._on_requesting_answer(msg, now)
        elif state in (State.RENEWING, State.REBINDING) and mtype in (wire.ACK, wire.NAK):
            self._on_renewal_answer(msg, now)
        else:
            self.counters.drop("dhcp.unexpected_message")

    def probe_result(self, address: int, conflict: bool, now: float) -> None:
        """The answer to a :class:`ProbeAddress`: did anyone on the link claim ``address``?"""
        if self.state is not State.PROBING or self._pending is None or self._pending.address != address:
            self.counters.drop("dhcp.stray_probe_result")
            return
        if not conflict:
            self._bind(now, renewed=False)
            return
        # RFC 2131 section 3.1 step 5 and RFC 5227 section 2.1.1: decline, wait, start again.
        pending = self._pending
        self._tally["declines"] += 1
        self.counters["dhcp.declines_sent"] += 1
        msg = self._message(wire.DECLINE, flags=0, options={
            wire.OPT_REQUESTED_IP: wire.option_u32(pending.address),
            wire.OPT_SERVER_ID: wire.option_u32(pending.server)}, secs=False)
        self._emit(msg, BROADCAST, 0, "DHCPDECLINE: another host has the address (RFC 2131 4.4.1, RFC 5227)")
        self._events.append(Declined(pending.address, pending.server))
        self._pending = None
        if self.previous_address == pending.address:
            self.previous_address = None
        self.state = State.INIT
        self._deadline = now + self.config.decline_wait

    def release(self, now: float) -> None:
        """Clean shutdown: give the lease back (RFC 2131 section 4.4.6) and stop."""
        lease = self.lease
        if self.state in _HOLDING and lease is not None:
            self.xid = self._new_xid()
            msg = self._message(wire.RELEASE, flags=0, ciaddr=lease.address,
                                options={wire.OPT_SERVER_ID: wire.option_u32(lease.server)}, secs=False)
            self._emit(msg, lease.server, lease.address, "DHCPRELEASE: giving the lease back (RFC 2131 4.4.6)")
            self.counters["dhcp.releases_sent"] += 1
            self._events.append(LeaseLost(lease.address, "released"))
            self.lease = None
        self.stop()

    def stop(self) -> None:
        """Stop without telling the server (the lease, if any, simply runs out)."""
        self.state = State.STOPPED
        self._deadline = None
        self._give_up_at = None

    def start(self, now: float) -> None:
        """(Re)start acquiring a lease, e.g. after :class:`Failed` or :meth:`stop`."""
        self._begin_acquisition(now)
        self.state = State.INIT
        delay = self.rng.uniform(0.0, self.config.startup_delay) if self.config.startup_delay > 0 else 0.0
        self._deadline = now + delay

    def _begin_acquisition(self, now: float) -> None:
        """Start the clock of ``acquire_timeout`` and the tally its error message reports."""
        self._acquire_start = now
        timeout = self.config.acquire_timeout
        self._give_up_at = now + timeout if timeout is not None else None
        self._tally = dict.fromkeys(self._tally, 0)

    # ------------------------------------------------------------------ acquiring

    def _discover(self, now: float) -> None:
        self.state = State.SELECTING
        self.xid = self._new_xid()
        self._attempts = 0
        self._exchange_start = now
        self._offer = None
        self._send_discover(now)

    def _send_discover(self, now: float) -> None:
        options = {}
        if self.previous_address:
            options[wire.OPT_REQUESTED_IP] = wire.option_u32(self.previous_address)
        self._tally["discovers"] += 1
        self.counters["dhcp.discovers_sent"] += 1
        self._emit(self._message(wire.DISCOVER, now=now, options=options), BROADCAST, 0,
                   _retransmitted("DHCPDISCOVER", self._attempts))
        self._deadline = now + self._backoff(self._attempts)

    def _on_offer(self, msg: DhcpMessage, now: float) -> None:
        if not _usable_address(msg.yiaddr):
            self.counters.drop("dhcp.bad_offered_address")
            return
        if msg.server_id is None:
            self.counters.drop("dhcp.no_server_id")  # RFC 2131 table 3: MUST in DHCPOFFER
            return
        # The first acceptable offer wins (RFC 2131 section 4.4.1 lets the client choose any).
        self._tally["offers"] += 1
        self.counters["dhcp.offers_received"] += 1
        self._offer = msg
        self.state = State.REQUESTING
        self._attempts = 0
        self._first_request = now
        self._send_request(now)

    def _send_request(self, now: float) -> None:
        offer = self._offer
        assert offer is not None and offer.server_id is not None
        # RFC 2131 section 4.3.2 / table 5: SELECTING-state REQUEST: ciaddr 0, requested IP and server id set.
        options = {wire.OPT_REQUESTED_IP: wire.option_u32(offer.yiaddr),
                   wire.OPT_SERVER_ID: wire.option_u32(offer.server_id)}
        self.counters["dhcp.requests_sent"] += 1
        self._emit(self._message(wire.REQUEST, now=now, options=options), BROADCAST, 0,
                   _retransmitted("DHCPREQUEST for the offered address", self._attempts))
        self._deadline = now + self._backoff(self._attempts)

    def _on_requesting_answer(self, msg: DhcpMessage, now: float) -> None:
        offer = self._offer
        assert offer is not None
        if msg.server_id is not None and msg.server_id != offer.server_id:
            self.counters.drop("dhcp.wrong_server")
            return
        if msg.message_type == wire.NAK:
            # RFC 2131 section 4.4.1: restart the configuration process. The first time at once; after
            # repeated NAKs with the retransmission backoff, so a server that NAKs everything is not
            # answered with a storm of DISCOVERs.
            self._tally["naks"] += 1
            self.counters["dhcp.naks_received"] += 1
            if self._tally["naks"] == 1:
                self._discover(now)
            else:
                self.state = State.INIT
                self._deadline = now + self._backoff(self._tally["naks"] - 2)
            return
        lease = self._lease_from_ack(msg, offer.server_id or 0, self._first_request)
        if lease is None:
            return
        self._take(lease, now)

    def _take(self, lease: Lease, now: float) -> None:
        """An acknowledged address we do not use yet: probe it first (RFC 2131 4.4.1, RFC 5227)."""
        self._pending = lease
        if not self.config.arp_probe:
            self._bind(now, renewed=False)
            return
        self.state = State.PROBING
        self._deadline = now + self.config.probe_result_timeout
        self._events.append(ProbeAddress(lease.address))

    def _bind(self, now: float, renewed: bool) -> None:
        lease = self._pending
        assert lease is not None
        self._pending = None
        self.lease = lease
        self.previous_address = lease.address
        self.state = State.BOUND
        self._give_up_at = None
        self._deadline = lease.renew_at if math.isfinite(lease.duration) else None
        self.counters["dhcp.leases_renewed" if renewed else "dhcp.leases_bound"] += 1
        self._events.append(Bound(lease.address, lease.prefix, lease.routers[0] if lease.routers else None,
                                  tuple(lease.dns), lease.domain, lease.duration, lease.t1, lease.t2,
                                  lease.server, renewed))

    def _fail(self, now: float) -> None:
        t = self._tally
        waited = now - self._acquire_start
        if not t["offers"]:
            reason = (f"no DHCP server answered: {t['discovers']} DHCPDISCOVER sent in {waited:.0f} s "
                      "without a DHCPOFFER")
        else:
            reason = (f"no usable lease in {waited:.0f} s: {t['offers']} DHCPOFFER received, "
                      f"{t['naks']} DHCPNAK, {t['declines']} address conflicts (DHCPDECLINE), "
                      f"{t['request_timeouts']} DHCPREQUEST exchanges unanswered")
        self.counters["dhcp.gave_up"] += 1
        self.state = State.FAILED
        self._deadline = None
        self._give_up_at = None
        self._events.append(Failed(reason))

    # ------------------------------------------------------------------ renewing, rebinding, expiry

    def _renew(self, now: float) -> None:
        self.state = State.RENEWING
        self.xid = self._new_xid()
        self._exchange_start = self._first_request = now
        self._send_renewal(now)

    def _rebind(self, now: float) -> None:
        self.state = State.REBINDING
        self.xid = self._new_xid()
        self._exchange_start = self._first_request = now
        self._send_renewal(now)

    def _send_renewal(self, now: float) -> None:
        lease = self.lease
        assert lease is not None
        # RFC 2131 section 4.3.2: RENEWING unicasts to the server, REBINDING broadcasts; both carry ciaddr
        # and neither the requested-IP nor the server-id option. The server answers to ciaddr directly.
        renewing = self.state is State.RENEWING
        msg = self._message(wire.REQUEST, now=now, flags=0, ciaddr=lease.address)
        self.counters["dhcp.renewals_sent" if renewing else "dhcp.rebinds_sent"] += 1
        self._emit(msg, lease.server if renewing else BROADCAST, lease.address,
                   "DHCPREQUEST to renew the lease (RENEWING, RFC 2131 4.4.5)" if renewing
                   else "DHCPREQUEST to any server (REBINDING, RFC 2131 4.4.5)")
        # RFC 2131 section 4.4.5: wait half the time left until T2 (renewing) or expiry (rebinding),
        # but at least the minimum; never past the point where the next state begins.
        end = lease.rebind_at if renewing else lease.expires_at
        self._deadline = min(end, now + max(self.config.renew_min_interval, (end - now) / 2))

    def _on_renewal_answer(self, msg: DhcpMessage, now: float) -> None:
        lease = self.lease
        assert lease is not None
        if self.state is State.RENEWING and msg.server_id is not None and msg.server_id != lease.server:
            self.counters.drop("dhcp.wrong_server")
            return
        if msg.message_type == wire.NAK:
            self.counters["dhcp.naks_received"] += 1
            self._lose("nak", now)  # RFC 2131 section 4.4.5: stop using the address at once
            return
        new = self._lease_from_ack(msg, msg.server_id or lease.server, self._first_request)
        if new is None:
            return
        if new.address != lease.address:
            self._lose("address_changed", now, restart=False)
            self._begin_acquisition(now)
            self._take(new, now)
            return
        self._pending = new
        self._bind(now, renewed=True)

    def _lose(self, reason: str, now: float, restart: bool = True) -> None:
        lease = self.lease
        assert lease is not None
        self.counters["dhcp.leases_lost"] += 1
        self._events.append(LeaseLost(lease.address, reason))
        self.lease = None
        if restart:
            self._begin_acquisition(now)
            self._discover(now)

    # ------------------------------------------------------------------ helpers

    def _check_reply(self, msg: DhcpMessage) -> str | None:
        if msg.op != wire.OP_REPLY:
            return "dhcp.not_a_reply"
        if self.state not in (State.SELECTING, State.REQUESTING, State.RENEWING, State.REBINDING):
            return "dhcp.not_expecting"
        if msg.xid != self.xid:
            return "dhcp.wrong_xid"
        if msg.chaddr != self.mac:
            return "dhcp.wrong_chaddr"
        cid = msg.client_id
        if cid is not None and cid != self.client_id:  # RFC 6842: servers echo the client identifier
            return "dhcp.wrong_client_id"
        if msg.message_type is None:
            return "dhcp.no_message_type"
        return None

    def _lease_from_ack(self, msg: DhcpMessage, server: int, start: float) -> Lease | None:
        if not _usable_address(msg.yiaddr):
            self.counters.drop("dhcp.bad_acked_address")
            return None
        if msg.lease_time is None:
            self.counters.drop("dhcp.no_lease_time")  # RFC 2131 table 3: MUST in a DHCPACK to a REQUEST
            return None
        mask = msg.subnet_mask
        prefix = _prefix_len(mask) if mask is not None else _classful_prefix(msg.yiaddr)
        if prefix is None or prefix == 0:
            self.counters.drop("dhcp.bad_subnet_mask")
            return None
        if msg.lease_time == wire.INFINITE_LEASE:
            duration = t1 = t2 = math.inf
        else:
            duration = max(float(msg.lease_time), self.config.min_lease)
            # RFC 2131 section 4.4.5: T1 defaults to 0.5 and T2 to 0.875 of the lease; we keep the
            # server's values only if they are ordered T1 < T2 < lease.
            t1 = float(msg.t1) if msg.t1 is not None else 0.5 * duration
            t2 = float(msg.t2) if msg.t2 is not None else 0.875 * duration
            if not 0 < t2 < duration:
                t2 = 0.875 * duration
            if not 0 < t1 < t2:
                t1 = 0.5 * duration if 0.5 * duration < t2 else t2 / 2
        routers = [r for r in msg.routers if _usable_address(r)]
        dns = [d for d in msg.dns_servers if _usable_address(d)]
        return Lease(msg.yiaddr, prefix, routers, dns, msg.domain, server, duration, t1, t2, start)

    def _message(self, mtype: int, *, now: float | None = None, flags: int = wire.FLAG_BROADCAST,
                 ciaddr: int = 0, options: dict[int, bytes] | None = None, secs: bool = True) -> DhcpMessage:
        opts = {wire.OPT_MESSAGE_TYPE: bytes([mtype]), wire.OPT_CLIENT_ID: self.client_id}
        opts.update(options or {})
        if mtype in (wire.DISCOVER, wire.REQUEST):
            opts[wire.OPT_MAX_MESSAGE_SIZE] = self.config.max_message_size.to_bytes(2, "big")
            if self.config.hostname:
                opts[wire.OPT_HOSTNAME] = self.config.hostname.encode("ascii", "replace")
            opts[wire.OPT_PARAMETER_LIST] = _PARAMETERS
        elapsed = int(now - self._exchange_start) if secs and now is not None else 0
        return DhcpMessage(op=wire.OP_REQUEST, xid=self.xid, chaddr=self.mac, options=opts,
                           secs=max(0, min(elapsed, 0xFFFF)), flags=flags, ciaddr=ciaddr)

    def _emit(self, msg: DhcpMessage, dst: int, src: int, why: str) -> None:
        self._out.append(DhcpDatagram(wire.build(msg), dst, src, why))

    def _backoff(self, attempt: int) -> float:
        """RFC 2131 section 4.1: 4, 8, 16 ... up to 64 s, each randomised by +-1 s."""
        cfg = self.config
        base = min(cfg.backoff_initial * (2 ** min(attempt, 30)), cfg.backoff_max)
        return max(0.0, base + self.rng.uniform(-cfg.backoff_jitter, cfg.backoff_jitter))

    def _new_xid(self) -> int:
        xid = self.rng.getrandbits(32)
        while xid == self.xid:
            xid = self.rng.getrandbits(32)
        return xid


def _retransmitted(message: str, attempt: int) -> str:
    """Why a message goes out: the first time, or again after ``attempt`` timeouts (RFC 2131 4.1)."""
    return f"{message} retransmission #{attempt} (RFC 2131 4.1)" if attempt else message


def _usable_address(addr: int) -> bool:
    """A unicast host address: not 0/8, loopback, multicast, class E or the limited broadcast."""
    top = addr >> 24
    return top not in (0, 127) and top < 224


def _prefix_len(mask: int) -> int | None:
    """The prefix length of a contiguous mask, None if it has holes."""
    inverted = ~mask & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


def _classful_prefix(addr: int) -> int:
    """RFC 1122 section 3.3.1.1's fallback when the server sends no mask: the old class boundaries."""
    top = addr >> 24
    return 8 if top < 128 else 16 if top < 192 else 24
