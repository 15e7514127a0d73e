"""The interface's IPv6 addresses (RFC 4291, RFC 4862): a link-local one from the start, static ones,
SLAAC ones from advertised prefixes, each through duplicate address detection, with lifetimes that
expire.

An address is TENTATIVE while DAD probes for it (neighbour solicitations from the unspecified address
with an RFC 7527 nonce), then PREFERRED, DEPRECATED once its preferred lifetime is over (kept for what
uses it, not chosen for anything new) and gone when its valid lifetime is; DUPLICATE when another node
answered for it (it is never used). Interface identifiers come from the MAC (modified EUI-64, RFC 4291
appendix A) or are stable and opaque (RFC 7217), in which case a duplicate is tried again with the
next DAD_Counter. Sans-I/O: methods take ``now`` and return :data:`Action` lists; the table is bounded
by ``max_addresses``.
"""

from __future__ import annotations

import enum
import hashlib
import math
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from pystack.counters import Counters
from pystack.ip6.config import IID_STABLE, Ipv6Config
from pystack.wire import ipv6
from pystack.wire.icmpv6 import INFINITE_LIFETIME, PrefixInfo

LINK_LOCAL_PREFIX = 0xFE80 << 112
TWO_HOURS = 7200.0
"""RFC 4862 5.5.3 (e): an unauthenticated RA cannot cut a valid lifetime below two hours."""

# Interface identifiers that must not be formed (RFC 5453): the subnet-router anycast identifier, the
# reserved subnet anycast ones (RFC 2526) and Proxy Mobile IPv6's.
_RESERVED_IIDS = range(0xFDFF_FFFF_FFFF_FF80, 0xFDFF_FFFF_FFFF_FFFF + 1)
_PMIP6_IID = 0x0200_5EFF_FE00_5213


class State(enum.Enum):
    TENTATIVE = "tentative"
    PREFERRED = "preferred"
    DEPRECATED = "deprecated"
    DUPLICATE = "duplicate"


class Origin(enum.Enum):
    LINK_LOCAL = "link-local"
    STATIC = "static"
    SLAAC = "SLAAC"
    DHCPV6 = "DHCPv6"


@dataclass(slots=True)
class Address:
    address: int
    prefix_len: int
    origin: Origin
    state: State = State.TENTATIVE
    valid_until: float = math.inf
    preferred_until: float = math.inf
    probes_sent: int = 0
    next_probe: float = 0.0
    nonce: bytes = b""
    dad_counter: int = 0
    """RFC 7217's DAD_Counter of a stable identifier."""

    @property
    def usable(self) -> bool:
        return self.state in (State.PREFERRED, State.DEPRECATED)


class DadProbe(NamedTuple):
    """Send a DAD neighbour solicitation: from ::, to the address's solicited-node group, for the
    address, with the nonce option (RFC 4862 5.4.2, RFC 7527)."""

    address: int
    nonce: bytes


class Event(enum.Enum):
    ADDED = "added"
    """Tentative: join its solicited-node group before the first probe (RFC 4862 5.4.2)."""
    CONFIGURED = "configured"
    """DAD passed (or preferred again): usable. Logged at info with its origin."""
    DEPRECATED = "deprecated"
    REMOVED = "removed"
    """Its valid lifetime ended or it was removed: leave its group. Logged."""
    DUPLICATE = "duplicate"
    """Another node uses it: it is not used (leave its group), and that is logged. For a link-local
    address from the MAC, RFC 4862 5.4.5 says IPv6 on the interface should stop."""


class AddressEvent(NamedTuple):
    event: Event
    address: int
    prefix_len: int
    origin: Origin


Action = DadProbe | AddressEvent


def eui64_iid(mac: bytes) -> int:
    """The modified EUI-64 identifier of a MAC (RFC 4291 appendix A): ff:fe in the middle, the
    universal/local bit inverted."""
    return int.from_bytes(bytes((mac[0] ^ 0x02,)) + mac[1:3] + b"\xff\xfe" + mac[3:6], "big")


def stable_iid(secret: bytes, prefix: int, net_iface: bytes, dad_counter: int, network_id: bytes = b"") -> int:
    """RFC 7217 section 5: RID = F(Prefix, Net_Iface, Network_ID, DAD_Counter, secret_key) with SHA-256,
    and its least significant 64 bits as the identifier; a reserved identifier takes the next counter."""
    for counter in range(dad_counter, dad_counter + 16):
        digest = hashlib.sha256((prefix >> 64).to_bytes(8, "big") + net_iface + network_id
                                + counter.to_bytes(4, "big") + secret).digest()
        iid = int.from_bytes(digest[-8:], "big")
        if iid != 0 and iid not in _RESERVED_IIDS and iid != _PMIP6_IID:
            return iid
    raise AssertionError("SHA-256 gave sixteen reserved identifiers in a row")


class AddressTable:
    def __init__(self, config: Ipv6Config, counters: Counters, mac: bytes, *,
                 rng: Callable[[], float] = random.random, nonces: Callable[[], bytes] = lambda: os.urandom(6)) -> None:
        self.config = config
        self.counters = counters
        self.mac = mac
        self.rng = rng
        self.nonces = nonces
        self.table: dict[int, Address] = {}
        self.retrans_timer = config.retrans_timer
        """Seconds between DAD probes and after the last; an RA may change it (RFC 4861 6.3.4)."""

    # --- adding and removing ---------------------------------------------------------------------------

    def start(self, now: float, *, delay: float | None = None) -> list[Action]:
        """The link-local address, its first probe delayed at random as the first message an interface
        sends after it comes up must be (RFC 4862 5.4.2), unless ``delay`` says otherwise."""
        if delay is None:
            delay = self.rng() * self.config.max_rtr_solicitation_delay
        return self._form(LINK_LOCAL_PREFIX, 64, Origin.LINK_LOCAL, now, 0, delay=delay)

    def add(self, address: int, prefix_len: int, origin: Origin, now: float, *, valid: float = math.inf,
            preferred: float = math.inf, delay: float = 0.0) -> list[Action]:
        """Configure ``address`` (tentative until DAD passes); an address already there gets the new
        lifetimes (seconds from ``now``) instead."""
        known = self.table.get(address)
        if known is not None:
            known.valid_until = now + valid
            known.preferred_until = now + preferred
            return self._lifetimes(known, now)
        if len(self.table) >= self.config.max_addresses:
            self.counters.drop("ipv6.address_table_full")
            return []
        entry = self.table[address] = Address(address, prefix_len, origin, valid_until=now + valid,
                                              preferred_until=now + preferred, next_probe=now + delay,
                                              nonce=self.nonces())
        actions: list[Action] = [self._event(Event.ADDED, entry)]
        if delay <= 0:
            actions += self._dad(entry, now)
        return actions

    def remove(self, address: int) -> list[Action]:
        entry = self.table.pop(address, None)
        return [self._event(Event.REMOVED, entry)] if entry else []

    def _form(self, prefix: int, prefix_len: int, origin: Origin, now: float, dad_counter: int, *,
              valid: float = math.inf, preferred: float = math.inf, delay: float = 0.0) -> list[Action]:
        if self.config.iid_mode == IID_STABLE:
            iid = stable_iid(self.config.stable_secret, prefix, self.mac, dad_counter)
        else:
            iid = eui64_iid(self.mac)
        if prefix | iid in self.table:
            return []  # already configured another way (a static address, say): left as it is
        actions = self.add(prefix | iid, prefix_len, origin, now, valid=valid, preferred=preferred, delay=delay)
        entry = self.table.get(prefix | iid)
        if entry is not None:
            entry.dad_counter = dad_counter
        return actions

    # --- SLAAC (RFC 4862 5.5.3) ---------------------------------------------------------------------------

    def on_prefix(self, info: PrefixInfo, now: float) -> list[Action]:
        """A Prefix Information option from a router advertisement."""
        if not info.autonomous or not self.config.slaac:
            return []
        if ipv6.is_link_local(info.prefix):
            return []
        if info.preferred_lifetime > info.valid_lifetime:
            self.counters.drop("ipv6.slaac_bad_lifetimes")
            return []
        valid = _lifetime(info.valid_lifetime)
        preferred = _lifetime(info.preferred_lifetime)
        entry = next((a for a in self.table.values()
                      if a.origin is Origin.SLAAC and a.prefix_len == info.prefix_len
                      and a.address >> (128 - info.prefix_len) == info.prefix >> (128 - info.prefix_len)), None)
        if entry is None:
            if info.valid_lifetime == 0:
                return []
            if info.prefix_len != 64:  # (d): prefix and 64-bit identifier must make 128 bits
                self.counters.drop("ipv6.slaac_prefix_length")
                return []
            return self._form(info.prefix, 64, Origin.SLAAC, now, 0, valid=valid, preferred=preferred)
        if entry.state is State.DUPLICATE:
            return []
        entry.preferred_until = now + preferred
        remaining = entry.valid_until - now
        if valid > TWO_HOURS or valid > remaining:
            entry.valid_until = now + valid
        elif remaining > TWO_HOURS:
            entry.valid_until = now + TWO_HOURS
        return self._lifetimes(entry, now)

    # --- DAD (RFC 4862 5.4) ------------------------------------------------------------------------------

    def on_solicitation(self, target: int, src: int, nonce: bytes | None, now: float) -> list[Action]:
        """A neighbour solicitation for ``target``: another node's DAD probe for one of our tentative
        addresses makes it a duplicate (5.4.3); a resolution for it is ignored, as is our own probe
        looped back (RFC 7527: same nonce)."""
        entry = self.table.get(target)
        if entry is None or entry.state is not State.TENTATIVE or src != ipv6.UNSPECIFIED:
            return []
        if nonce is not None and nonce == entry.nonce:
            self.counters["ipv6.dad_looped_back"] += 1
            return []
        return self._duplicate(entry, now)

    def on_advertisement(self, target: int, now: float) -> list[Action]:
        """A neighbour advertisement for ``target``: for a tentative address, a duplicate (5.4.4)."""
        entry = self.table.get(target)
        if entry is None:
            return []
        if entry.state is State.TENTATIVE:
            return self._duplicate(entry, now)
        if entry.usable:
            self.counters["ipv6.address_conflict"] += 1  # after DAD: out of RFC 4862's scope, only counted
        return []

    def _duplicate(self, entry: Address, now: float) -> list[Action]:
        entry.state = State.DUPLICATE
        self.counters["ipv6.dad_duplicate"] += 1
        actions: list[Action] = [self._event(Event.DUPLICATE, entry)]
        stable = self.config.iid_mode == IID_STABLE and entry.origin in (Origin.LINK_LOCAL, Origin.SLAAC)
        if stable and entry.dad_counter < self.config.idgen_retries:
            # RFC 7217 section 6: the next identifier replaces this one, after a random delay.
            del self.table[entry.address]
            prefix = entry.address >> 64 << 64
            actions += self._form(prefix, entry.prefix_len, entry.origin, now, entry.dad_counter + 1,
                                  valid=entry.valid_until - now, preferred=entry.preferred_until - now,
                                  delay=self.rng() * self.config.idgen_delay)
        return actions

    # --- timers ----------------------------------------------------------------------------------------

    def poll(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for entry in list(self.table.values()):
            if entry.state is State.TENTATIVE and entry.next_probe <= now and entry.valid_until > now:
                actions += self._dad(entry, now)
            else:
                actions += self._lifetimes(entry, now)
        return actions

    def next_deadline(self) -> float | None:
        times = []
        for a in self.table.values():
            times.append(a.valid_until)
            if a.state is State.TENTATIVE:
                times.append(a.next_probe)
            elif a.state is State.PREFERRED:
                times.append(a.preferred_until)
        deadline = min(times, default=math.inf)
        return None if deadline == math.inf else deadline

    def _dad(self, entry: Address, now: float) -> list[Action]:
        if entry.probes_sent < self.config.dad_transmits:
            entry.probes_sent += 1
            entry.next_probe = now + self.retrans_timer
            return [DadProbe(entry.address, entry.nonce)]
        entry.state = State.PREFERRED
        actions: list[Action] = [self._event(Event.CONFIGURED, entry)]
        return actions + self._lifetimes(entry, now)

    def _lifetimes(self, entry: Address, now: float) -> list[Action]:
        if entry.valid_until <= now:
            del self.table[entry.address]
            self.counters["ipv6.address_expired"] += 1
            return [self._event(Event.REMOVED, entry)]
        if entry.state is State.PREFERRED and entry.preferred_until <= now:
            entry.state = State.DEPRECATED
            return [self._event(Event.DEPRECATED, entry)]
        if entry.state is State.DEPRECATED and entry.preferred_until > now:
            entry.state = State.PREFERRED
            return [self._event(Event.CONFIGURED, entry)]
        return []

    @staticmethod
    def _event(event: Event, entry: Address) -> AddressEvent:
        return AddressEvent(event, entry.address, entry.prefix_len, entry.origin)

    # --- lookups -------------------------------------------------------------------------------------------

    def get(self, address: int) -> Address | None:
        return self.table.get(address)

    def is_assigned(self, address: int) -> bool:
        """Whether packets to ``address`` are ours and NS for it are answered (not while tentative)."""
        entry = self.table.get(address)
        return entry is not None and entry.usable

    def __iter__(self) -> Iterator[Address]:
        return iter(list(self.table.values()))

    def __len__(self) -> int:
        return len(self.table)

    def source_for(self, dst: int) -> int | None:
        """A source address for ``dst`` (a subset of RFC 6724 section 5): the destination itself if ours,
        else one of the same scope, preferred before deprecated, then the longest common prefix."""
        usable = [a for a in self.table.values() if a.usable]
        if any(a.address == dst for a in usable):
            return dst
        link_scope = ipv6.is_link_local(dst) or (ipv6.is_multicast(dst) and (dst >> 112) & 0xF <= 2)
        same_scope = [a for a in usable if ipv6.is_link_local(a.address) == link_scope]
        if not same_scope:
            return None

        def rank(a: Address) -> tuple[bool, int]:
            return a.state is State.PREFERRED, min(128 - (a.address ^ dst).bit_length(), a.prefix_len)
        return max(same_scope, key=rank).address


def _lifetime(seconds: int) -> float:
    return math.inf if seconds == INFINITE_LIFETIME else float(seconds)
