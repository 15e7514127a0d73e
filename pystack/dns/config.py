"""Every timer and limit of the stub resolver, in one place. Defaults follow glibc and RFC 2308; ``__post_init__``
rejects a value out of its range with one :class:`~pystack.config_check.ConfigError`."""

from __future__ import annotations

from dataclasses import dataclass

from pystack.config_check import need


@dataclass(slots=True)
class DnsConfig:
    timeout: float = 2.0
    """Seconds to wait for the first answer from a server..."""
    backoff: float = 2.0
    """...multiplied by this for each new round over the servers (RFC 1536 section 1: back off)."""
    attempts: int = 2
    """Rounds over the whole server list before the query fails (glibc's ``attempts``)."""
    max_cname_hops: int = 8
    """CNAMEs followed from the name asked for, within answers and by asking again (bounded against loops)."""
    cache_size: int = 256
    """Names held in the cache; expired ones go first, then the oldest."""
    max_ttl: int = 86400
    """Longest a positive answer is cached, whatever its TTL says."""
    max_negative_ttl: int = 10800
    """Longest a negative answer is cached (RFC 2308 section 5 suggests one to three hours)."""
    max_outstanding: int = 256
    """Queries in flight at once; more fail at once rather than grow the table without bound."""
    port_low: int = 49152
    port_high: int = 65535
    """Range the resolver draws random source ports from when the caller does not choose (RFC 5452 9.2)."""

    def __post_init__(self) -> None:
        need(self, self.timeout > 0 and self.backoff >= 1, "timeout must be above 0 and backoff at least 1")
        need(self, self.attempts >= 1 and self.max_outstanding >= 1, "attempts and max_outstanding must be at least 1")
        need(self, self.max_cname_hops >= 0 and self.cache_size >= 0, "max_cname_hops and cache_size must be 0 or more")
        need(self, self.max_ttl >= 0 and self.max_negative_ttl >= 0, "max_ttl and max_negative_ttl must be 0 or more")
        need(self, 1 <= self.port_low <= self.port_high <= 65535, "need 1 <= port_low <= port_high <= 65535")
