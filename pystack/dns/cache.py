"""The resolver's cache: answers kept for their TTL, negative answers for the SOA minimum (RFC 2308)."""

from __future__ import annotations

from dataclasses import dataclass

from pystack.wire.dns import RData


@dataclass(slots=True, frozen=True)
class CacheEntry:
    expires: float
    data: tuple[RData, ...]
    """The records' data for the final name (addresses for A); empty for a negative entry."""
    chain: tuple[str, ...]
    """CNAME targets followed from the name asked for."""
    negative: str | None = None
    """None for an answer; "nxdomain" or "nodata" for a cached negative answer (RFC 2308 section 5)."""


class DnsCache:
    """Keyed by (canonical name, type). Bounded: expired entries are evicted first, then the oldest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[tuple[str, int], CacheEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, int], now: float) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            del self._entries[key]
            return None
        return entry

    def put(self, key: tuple[str, int], entry: CacheEntry, now: float) -> None:
        if entry.expires <= now or self.size <= 0:
            return  # a TTL of 0 means "use once, do not cache" (RFC 1035 section 3.2.1)
        entries = self._entries
        entries.pop(key, None)
        if len(entries) >= self.size:
            for k in [k for k, e in entries.items() if e.expires <= now]:
                del entries[k]
            while len(entries) >= self.size:
                del entries[next(iter(entries))]
        entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()
