"""Every timer and limit of the stub resolver, in one place. Defaults follow glibc and RFC 2308."""

from __future__ import annotations

from dataclasses import dataclass


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
