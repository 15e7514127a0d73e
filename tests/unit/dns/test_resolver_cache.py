"""The resolver's cache: TTLs honoured, negative answers cached for the SOA minimum (RFC 2308), bounded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pystack.dns import CacheEntry, DnsCache, DnsConfig
from pystack.wire import dns

from .fake_dns import NS1, SOA, WWW, FakeDns, Net


def test_answer_is_served_from_cache_until_its_ttl_runs_out() -> None:
    net = Net()
    first = net.resolve("www.example.test")
    assert not first.from_cache and len(net.sent) == 1
    net.now += 59.5
    again = net.resolve("WWW.example.test.", run=False)  # same name, other spelling
    assert again.from_cache and again.result() == [WWW] and again.ttl == 0 and len(net.sent) == 1
    net.now += 0.5
    third = net.resolve("www.example.test")
    assert not third.from_cache and len(net.sent) == 2
    assert net.counters["dns.cache_hits"] == 1


def test_cached_ttl_counts_down() -> None:
    net = Net()
    net.resolve("www.example.test")
    net.now += 20
    assert net.resolve("www.example.test", run=False).ttl == 40


def test_chain_is_cached_with_the_smallest_ttl() -> None:
    net = Net()
    net.resolve("web.example.test")
    net.now += 59
    hit = net.resolve("web.example.test", run=False)
    assert hit.from_cache and hit.cname_chain == ["www.example.test"] and hit.result() == [WWW]
    net.now += 1
    assert not net.resolve("web.example.test").from_cache


@pytest.mark.parametrize("name", ["zero.example.test", "negative.example.test"])
def test_zero_ttl_and_top_bit_ttl_are_not_cached(name: str) -> None:
    # RFC 1035 3.2.1: TTL 0 means do not cache; RFC 2181 8: a TTL with the top bit set is read as 0.
    net = Net()
    assert net.resolve(name).result() and net.resolve(name).from_cache is False
    assert len(net.sent) == 2


def test_ttl_is_capped() -> None:
    net = Net(config=DnsConfig(max_ttl=300))
    net.resolve("huge.example.test")
    net.now += 299
    assert net.resolve("huge.example.test", run=False).from_cache
    net.now += 1
    assert not net.resolve("huge.example.test").from_cache


def test_nxdomain_is_cached_for_the_soa_minimum() -> None:
    net = Net()  # SOA TTL 600, minimum 30: RFC 2308 section 5 takes the smaller
    net.resolve("nope.example.test")
    net.now += 29
    hit = net.resolve("nope.example.test", run=False)
    assert hit.from_cache and hit.error is not None and hit.error.code == "nxdomain"
    assert "cached" in str(hit.error) and len(net.sent) == 1
    net.now += 1
    miss = net.resolve("nope.example.test")
    assert not miss.from_cache and miss.error is not None and len(net.sent) == 2


def test_negative_ttl_is_the_soa_ttl_when_smaller_than_its_minimum() -> None:
    soa = replace(SOA, ttl=5)
    net = Net({NS1: FakeDns(soa=soa)})
    net.resolve("nope.example.test")
    net.now += 4.9
    assert net.resolve("nope.example.test", run=False).from_cache
    net.now += 0.1
    assert not net.resolve("nope.example.test").from_cache


def test_negative_ttl_is_capped() -> None:
    soa = replace(SOA, rdata=replace(SOA.rdata, minimum=999999), ttl=999999)
    net = Net({NS1: FakeDns(soa=soa)}, DnsConfig(max_negative_ttl=100))
    net.resolve("nope.example.test")
    net.now += 99
    assert net.resolve("nope.example.test", run=False).from_cache
    net.now += 1
    assert not net.resolve("nope.example.test").from_cache


def test_nodata_is_cached_too() -> None:
    net = Net()
    net.resolve("textonly.example.test")
    hit = net.resolve("textonly.example.test", run=False)
    assert hit.from_cache and hit.error is not None and hit.error.code == "nodata"
    # ... but only for that type: TXT is asked for on the wire.
    assert not net.resolve("textonly.example.test", qtype=dns.TYPE_TXT).from_cache


def test_negative_answer_without_soa_is_not_cached() -> None:
    net = Net({NS1: FakeDns(soa=None)})
    net.resolve("nope.example.test")
    assert not net.resolve("nope.example.test").from_cache and len(net.sent) == 2


def test_negative_answer_after_a_chain_expires_with_the_chain() -> None:
    net = Net()  # dangling -> gone: CNAME TTL 60, SOA minimum 30
    net.resolve("dangling.example.test")
    net.now += 29
    assert net.resolve("dangling.example.test", run=False).from_cache
    net.now += 1
    assert not net.resolve("dangling.example.test").from_cache


def test_failures_are_not_cached() -> None:
    net = Net({NS1: FakeDns(mode="servfail")})
    net.resolve("www.example.test")
    net.servers[NS1].mode = "ok"
    q = net.resolve("www.example.test")
    assert not q.from_cache and q.result() == [WWW]


def test_cache_is_bounded_expired_first_then_oldest() -> None:
    cache = DnsCache(3)
    cache.put(("a", 1), CacheEntry(10.0, (1,), ()), 0.0)
    cache.put(("b", 1), CacheEntry(100.0, (2,), ()), 0.0)
    cache.put(("c", 1), CacheEntry(100.0, (3,), ()), 0.0)
    cache.put(("d", 1), CacheEntry(100.0, (4,), ()), 20.0)  # "a" has expired: it goes, not "b"
    assert cache.get(("b", 1), 20.0) is not None and cache.get(("a", 1), 20.0) is None
    cache.put(("e", 1), CacheEntry(100.0, (5,), ()), 20.0)  # none expired: the oldest ("b") goes
    assert cache.get(("b", 1), 20.0) is None
    assert [cache.get((k, 1), 20.0) is not None for k in "cde"] == [True, True, True]
    assert len(cache) == 3


def test_resolver_cache_respects_its_size() -> None:
    net = Net(config=DnsConfig(cache_size=2))
    for name in ("www.example.test", "two.example.test", "web.example.test"):
        net.resolve(name)
    assert len(net.resolver.cache) == 2
    assert not net.resolve("www.example.test").from_cache
