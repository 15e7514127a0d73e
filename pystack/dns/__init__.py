"""Stub DNS resolver (RFC 1035, RFC 2308 negative caching, RFC 5452 spoofing resistance); sans-I/O."""

from pystack.dns.cache import CacheEntry, DnsCache
from pystack.dns.config import DnsConfig
from pystack.dns.resolver import DnsDatagram, DnsError, Query, Resolver, Status

__all__ = ["CacheEntry", "DnsCache", "DnsConfig", "DnsDatagram", "DnsError", "Query", "Resolver", "Status"]
