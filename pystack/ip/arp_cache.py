"""The ARP cache and the queue of packets waiting for a resolution (RFC 826, RFC 1122 2.3.2).

Sans-I/O: methods take ``now`` and return what must be sent; the stack turns those into frames.
The cache is an LRU table with a bound; an entry is trusted for ``arp_reachable_time`` and, once
stale, still used while a unicast refresh is tried (as the kernel's STALE/PROBE states do).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from pystack.config import StackConfig
from pystack.counters import Counters


@dataclass(slots=True)
class ArpEntry:
    mac: bytes
    expires: float
    """After this the entry is stale: used, but refreshed by a unicast request."""
    refresh_sent: float = -1.0
    refresh_count: int = 0


@dataclass(slots=True)
class PendingResolution:
    """An address being resolved, with the frames (minus Ethernet header) waiting for it."""

    packets: deque[bytes] = field(default_factory=deque)
    queued_bytes: int = 0
    tries: int = 0
    next_try: float = 0.0


class ArpCache:
    def __init__(self, config: StackConfig, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.entries: OrderedDict[int, ArpEntry] = OrderedDict()
        self.pending: dict[int, PendingResolution] = {}

    def lookup(self, ip: int, now: float) -> tuple[bytes | None, bool]:
        """The MAC for ``ip`` if known, and whether a (refresh) request should be sent now."""
        entry = self.entries.get(ip)
        if entry is None:
            return None, False
        if now < entry.expires:
            return entry.mac, False
        # Stale (RFC 1122 2.3.2.1: unicast poll). Keep using it while the refresh is under way.
        cfg = self.config
        if entry.refresh_count >= cfg.arp_max_retries and now >= entry.refresh_sent + cfg.arp_retry_interval:
            del self.entries[ip]
            self.counters["arp.entry_expired"] += 1
            return None, False
        if now >= entry.refresh_sent + cfg.arp_retry_interval:
            entry.refresh_sent = now
            entry.refresh_count += 1
            return entry.mac, True
        return entry.mac, False

    def confirm(self, ip: int, now: float) -> None:
        """An upper layer saw ``ip`` answer (pystack.iface.ipv4.Ipv4.confirm): its entry, if any, is trusted
        for ``arp_reachable_time`` from now and its refresh, if one is under way, ends."""
        entry = self.entries.get(ip)
        if entry is not None:
            entry.expires = now + self.config.arp_reachable_time
            entry.refresh_count = 0
            entry.refresh_sent = -1.0

    def update(self, ip: int, mac: bytes, now: float, create: bool) -> list[bytes]:
        """Record ``ip`` -> ``mac`` (RFC 826 merge: update if present, add if ``create``).

        Returns the packets that were waiting for this address, now ready to be sent.
        """
        entry = self.entries.get(ip)
        if entry is None and not create and ip not in self.pending:
            return []
        if entry is None:
            while len(self.entries) >= self.config.arp_cache_size:
                self.entries.popitem(last=False)
                self.counters["arp.entry_evicted"] += 1
            self.entries[ip] = ArpEntry(mac, now + self.config.arp_reachable_time)
        else:
            entry.mac = mac
            entry.expires = now + self.config.arp_reachable_time
            entry.refresh_count = 0
            entry.refresh_sent = -1.0
            self.entries.move_to_end(ip)
        waiting = self.pending.pop(ip, None)
        return list(waiting.packets) if waiting else []

    def enqueue(self, ip: int, packet: bytes, now: float) -> bool:
        """Queue ``packet`` until ``ip`` resolves. True when a request should be sent right away."""
        waiting = self.pending.get(ip)
        if waiting is None:
            if len(self.pending) >= self.config.arp_pending_addresses:
                self.counters.drop("arp.pending_table_full")
                return False
            waiting = self.pending[ip] = PendingResolution()
        if waiting.queued_bytes + len(packet) > self.config.arp_pending_bytes:
            self.counters.drop("arp.pending_queue_full")
        else:
            waiting.packets.append(packet)
            waiting.queued_bytes += len(packet)
        if waiting.tries == 0:
            waiting.tries = 1
            waiting.next_try = now + self.config.arp_retry_interval
            return True
        return False

    def next_deadline(self) -> float | None:
        if not self.pending:
            return None
        return min(p.next_try for p in self.pending.values())

    def handle_timer(self, now: float) -> tuple[list[int], list[tuple[int, list[bytes]]]]:
        """Addresses to ask again, and (address, packets) for resolutions that gave up."""
        retry: list[int] = []
        failed: list[tuple[int, list[bytes]]] = []
        for ip, waiting in list(self.pending.items()):
            if now < waiting.next_try:
                continue
            if waiting.tries >= self.config.arp_max_retries:
                del self.pending[ip]
                self.counters["arp.resolution_failed"] += 1
                failed.append((ip, list(waiting.packets)))
            else:
                waiting.tries += 1
                waiting.next_try = now + self.config.arp_retry_interval
                retry.append(ip)
        return retry, failed
