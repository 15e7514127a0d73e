"""The neighbour cache of RFC 4861 section 7.3 (IPv6's ARP cache) and its queue of packets waiting for
a resolution.

Each entry is INCOMPLETE (being resolved, packets queued), REACHABLE (confirmed within ReachableTime),
STALE (unconfirmed, still used), DELAY (used while STALE: wait for an upper layer to confirm) or PROBE
(unicast solicitations); the transitions are those of RFC 4861 appendix C. Sans-I/O: methods take
``now`` and return the :data:`Action` list the layer turns into frames; :meth:`NeighbourCache.poll`
runs the timers and :meth:`NeighbourCache.next_deadline` says when. REACHABLE turns STALE without a
timer, when the entry is next used. The cache and the queues are bounded; when full, the least
recently used resolved entry goes (INCOMPLETE ones are bounded on their own and never evicted).
"""

from __future__ import annotations

import enum
import math
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from pystack.counters import Counters
from pystack.ip6.config import Ipv6Config

MIN_RANDOM_FACTOR = 0.5
MAX_RANDOM_FACTOR = 1.5
"""ReachableTime is BaseReachableTime times a factor drawn between these (RFC 4861 section 10)..."""
REACHABLE_TIME_REDRAW = 7200.0
"""...drawn again at least every few hours (6.3.4): every two hours here."""


class State(enum.Enum):
    INCOMPLETE = "INCOMPLETE"
    REACHABLE = "REACHABLE"
    STALE = "STALE"
    DELAY = "DELAY"
    PROBE = "PROBE"


@dataclass(slots=True)
class Neighbour:
    state: State
    lladdr: bytes | None
    deadline: float = math.inf
    """INCOMPLETE, DELAY, PROBE: when the timer fires. REACHABLE: when the entry turns STALE."""
    probes: int = 0
    """Solicitations sent in INCOMPLETE or PROBE."""
    is_router: bool = False
    queue: deque[bytes] = field(default_factory=deque)
    queued_bytes: int = 0


class Solicit(NamedTuple):
    """Send a neighbour solicitation for ``target``."""

    target: int
    lladdr: bytes | None
    """None: to the target's solicited-node group (resolution, 7.2.2); else unicast to this link-layer
    address (a reachability probe, 7.3.3)."""


class Release(NamedTuple):
    """``target`` resolved to ``lladdr``: send the packets that waited for it (7.2.5)."""

    target: int
    lladdr: bytes
    packets: list[bytes]


class Unreachable(NamedTuple):
    """Resolution of ``target`` failed: each waiting packet earns an ICMPv6 destination unreachable,
    code 3, address unreachable (7.2.2)."""

    target: int
    packets: list[bytes]


class RouterLost(NamedTuple):
    """``target`` says it is no longer a router: take it out of the default router list (7.2.5)."""

    target: int


Action = Solicit | Release | Unreachable | RouterLost


class NeighbourCache:
    def __init__(self, config: Ipv6Config, counters: Counters, now: float = 0.0,
                 rng: Callable[[], float] = random.random, changed: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.counters = counters
        self.rng = rng
        self.changed = changed
        """Called at every change of an entry that a sender may have remembered: one added or deleted, its
        state or link-layer address changed (not a REACHABLE entry confirmed again: its deadline is read
        where it is remembered). Neighbour discovery counts them (pystack.iface.ndisc.Ndisc.changes)."""
        self.entries: OrderedDict[int, Neighbour] = OrderedDict()
        self.timed: set[int] = set()
        """Entries whose timer runs (INCOMPLETE, DELAY, PROBE): few, so next_deadline scans only them."""
        self.incomplete = 0
        self.retrans_timer = config.retrans_timer
        self.base_reachable_time = config.base_reachable_time
        self.reachable_time = 0.0
        self._redraw_at = 0.0
        self._draw_reachable_time(now)

    # --- parameters (RFC 4861 6.3.4: a router advertisement may set them) ----------------------------------

    def set_timers(self, now: float, *, base_reachable_time: float | None = None,
                   retrans_timer: float | None = None) -> None:
        if retrans_timer:
            self.retrans_timer = retrans_timer
        if base_reachable_time and base_reachable_time != self.base_reachable_time:
            self.base_reachable_time = base_reachable_time
            self._draw_reachable_time(now)

    def _draw_reachable_time(self, now: float) -> None:
        factor = MIN_RANDOM_FACTOR + (MAX_RANDOM_FACTOR - MIN_RANDOM_FACTOR) * self.rng()
        self.reachable_time = self.base_reachable_time * factor
        self._redraw_at = now + REACHABLE_TIME_REDRAW

    def _reachable_until(self, now: float) -> float:
        if now >= self._redraw_at:
            self._draw_reachable_time(now)
        return now + self.reachable_time

    # --- sending -----------------------------------------------------------------------------------------

    def resolve(self, target: int, packet: bytes, now: float) -> tuple[bytes | None, list[Action]]:
        """The link-layer address to send ``packet`` to ``target`` with, or None with the packet queued
        until the target resolves (7.2.2; 7.3.3: sending to a STALE entry starts DELAY)."""
        entry = self.entries.get(target)
        if entry is None:
            if self.incomplete >= self.config.neighbour_pending_addresses:
                self.counters.drop("ndisc.pending_table_full")
                return None, []
            entry = self._insert(target, Neighbour(State.INCOMPLETE, None, now + self.retrans_timer, probes=1))
            self.incomplete += 1
            self.timed.add(target)
            self._enqueue(entry, packet)
            return None, [Solicit(target, None)]
        self.entries.move_to_end(target)
        if entry.state is State.INCOMPLETE:
            self._enqueue(entry, packet)
            return None, []
        if entry.state is State.REACHABLE and now >= entry.deadline:
            entry.state = State.STALE
            self.changed()
        if entry.state is State.STALE:
            entry.state = State.DELAY
            entry.deadline = now + self.config.delay_first_probe_time
            self.timed.add(target)
            self.changed()
        return entry.lladdr, []

    def lladdr_as_is(self, target: int, now: float) -> bytes | None:
        """What :meth:`resolve` returns for ``target`` when sending to it changes no state (REACHABLE within
        its time, DELAY, PROBE: 7.3.3), the entry moved to the recent end as resolve moves it; None when
        resolve has something to do (no entry, INCOMPLETE, STALE, REACHABLE past its time). The fast paths'
        way to the neighbour (pystack.iface.tcp6, the ICMPv6 echo): a lookup, no action list."""
        entry = self.entries.get(target)
        if entry is None:
            return None
        state = entry.state
        if state is State.DELAY or state is State.PROBE or (state is State.REACHABLE and now < entry.deadline):
            self.entries.move_to_end(target)
            return entry.lladdr
        return None

    def _enqueue(self, entry: Neighbour, packet: bytes) -> None:
        """Queue within ``neighbour_pending_bytes``; as Linux does, the oldest packets make room."""
        limit = self.config.neighbour_pending_bytes
        if len(packet) > limit:
            self.counters.drop("ndisc.pending_queue_full")
            return
        while entry.queued_bytes + len(packet) > limit:
            entry.queued_bytes -= len(entry.queue.popleft())
            self.counters.drop("ndisc.pending_queue_full")
        entry.queue.append(packet)
        entry.queued_bytes += len(packet)

    def confirm(self, target: int, now: float) -> None:
        """An upper layer saw the neighbour answer (a TCP acknowledgement of new data): REACHABLE (7.3.1)."""
        entry = self.entries.get(target)
        if entry is not None and entry.state is not State.INCOMPLETE:
            self._reachable(target, entry, now)

    # --- receiving -----------------------------------------------------------------------------------------

    def learn(self, address: int, lladdr: bytes | None, now: float, *, router: bool | None = None) -> list[Action]:
        """A link-layer address heard from ``address`` itself: the source link-layer option of a
        solicitation (7.2.3) or router advertisement (6.3.4, ``router=True``), or the target one of a
        redirect (8.3). A new or changed address is STALE until confirmed."""
        entry = self.entries.get(address)
        if lladdr is None:
            if entry is not None and router is not None:
                entry.is_router = router
            return []
        if entry is None:
            self._insert(address, Neighbour(State.STALE, lladdr, is_router=bool(router)))
            return []
        if router is not None:
            entry.is_router = router
        if entry.state is State.INCOMPLETE:
            entry.lladdr = lladdr
            self._stale(address, entry)
            return [self._release(address, entry)]
        if entry.lladdr != lladdr:
            entry.lladdr = lladdr
            self._stale(address, entry)
        return []

    def on_advertisement(self, target: int, lladdr: bytes | None, now: float, *, solicited: bool, override: bool,
                         router: bool) -> list[Action]:
        """A neighbour advertisement for ``target`` (RFC 4861 7.2.5)."""
        entry = self.entries.get(target)
        if entry is None:
            return []  # no entry: nothing asked, nothing to learn
        if entry.state is State.INCOMPLETE:
            if lladdr is None:
                return []
            entry.lladdr = lladdr
            entry.is_router = router
            if solicited:
                self._reachable(target, entry, now)
            else:
                self._stale(target, entry)
            return [self._release(target, entry)]
        changed = lladdr is not None and lladdr != entry.lladdr
        if changed and not override:
            if entry.state is State.REACHABLE and now < entry.deadline:
                self._stale(target, entry)
            return []
        if changed:
            entry.lladdr = lladdr
            self.changed()
        if solicited:
            self._reachable(target, entry, now)
        elif changed:
            self._stale(target, entry)
        lost = entry.is_router and not router
        entry.is_router = router
        return [RouterLost(target)] if lost else []

    # --- timers --------------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return min((self.entries[t].deadline for t in self.timed), default=None)

    def poll(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for target in [t for t in self.timed if self.entries[t].deadline <= now]:
            entry = self.entries[target]
            if entry.state is State.INCOMPLETE:
                if entry.probes >= self.config.max_multicast_solicit:
                    self._delete(target)
                    self.counters["ndisc.resolution_failed"] += 1
                    actions.append(Unreachable(target, list(entry.queue)))
                else:
                    entry.probes += 1
                    entry.deadline = now + self.retrans_timer
                    actions.append(Solicit(target, None))
            elif entry.state is State.DELAY:
                entry.state = State.PROBE
                self.changed()
                entry.probes = 1
                entry.deadline = now + self.retrans_timer
                actions.append(Solicit(target, entry.lladdr))
            elif entry.probes >= self.config.max_unicast_solicit:  # PROBE, unanswered
                self._delete(target)
                self.counters["ndisc.neighbour_unreachable"] += 1
            else:
                entry.probes += 1
                entry.deadline = now + self.retrans_timer
                actions.append(Solicit(target, entry.lladdr))
        return actions

    # --- the table -----------------------------------------------------------------------------------------

    def lookup(self, target: int) -> Neighbour | None:
        return self.entries.get(target)

    def forget(self, target: int) -> None:
        if target in self.entries:
            self._delete(target)

    def __len__(self) -> int:
        return len(self.entries)

    def _insert(self, address: int, entry: Neighbour) -> Neighbour:
        if len(self.entries) >= self.config.neighbour_cache_size:
            victim = next(t for t, e in self.entries.items() if e.state is not State.INCOMPLETE)
            self._delete(victim)
            self.counters["ndisc.entry_evicted"] += 1
        self.entries[address] = entry
        self.changed()
        return entry

    def _delete(self, target: int) -> None:
        entry = self.entries.pop(target)
        self.changed()
        self.timed.discard(target)
        if entry.state is State.INCOMPLETE:
            self.incomplete -= 1

    def _reachable(self, target: int, entry: Neighbour, now: float) -> None:
        self._leave_incomplete(entry)
        if entry.state is not State.REACHABLE:
            self.changed()
        entry.state = State.REACHABLE
        entry.deadline = self._reachable_until(now)
        entry.probes = 0
        self.timed.discard(target)

    def _stale(self, target: int, entry: Neighbour) -> None:
        self._leave_incomplete(entry)
        self.changed()
        entry.state = State.STALE
        entry.deadline = math.inf
        entry.probes = 0
        self.timed.discard(target)

    def _leave_incomplete(self, entry: Neighbour) -> None:
        if entry.state is State.INCOMPLETE:
            self.incomplete -= 1

    def _release(self, target: int, entry: Neighbour) -> Release:
        assert entry.lladdr is not None
        packets = list(entry.queue)
        entry.queue.clear()
        entry.queued_bytes = 0
        return Release(target, entry.lladdr, packets)
