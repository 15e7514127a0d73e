"""Router discovery (RFC 4861 6.3, RFC 4191, RFC 8106) with a fake clock: dnsmasq's advertisement read
into routers, prefixes, MTU and DNS servers; solicitations until an RA comes; lifetimes; each bound."""

from __future__ import annotations

from pystack.counters import Counters
from pystack.ip6.config import Ipv6Config
from pystack.ip6.routers import RouterDiscovery, RouterExpired, SendRouterSolicitation
from pystack.wire import icmpv6, ipv6
from pystack.wire.icmpv6 import INFINITE_LIFETIME, NdOptions, PrefixInfo, Rdnss, RouterAdvertisement
from wire.linux_ipv6 import FRAMES

R1 = ipv6.addr_to_int("fe80::1")
R2 = ipv6.addr_to_int("fe80::2")
PREFIX = ipv6.addr_to_int("2001:db8::")


def discovery(**kw: object) -> tuple[RouterDiscovery, Counters]:
    counters = Counters()
    return RouterDiscovery(Ipv6Config(**kw), counters, rng=lambda: 0.5), counters  # type: ignore[arg-type]


def ra(lifetime: int = 1800, *, preference: int = 0, hop: int = 0, reachable: int = 0, retrans: int = 0,
       mtu: int | None = None, prefixes: list[PrefixInfo] | None = None, rdnss: list[Rdnss] | None = None
       ) -> RouterAdvertisement:
    return RouterAdvertisement(hop, False, False, preference, lifetime, reachable, retrans,
                               NdOptions(mtu=mtu, prefixes=prefixes or [], rdnss=rdnss or []))


def on_link(prefix: int = PREFIX, valid: int = 600, plen: int = 64, flag: bool = True) -> PrefixInfo:
    return PrefixInfo(prefix, plen, flag, False, valid, 0)


def test_dnsmasqs_advertisement_gives_router_prefix_mtu_and_dns_server() -> None:
    pkt = ipv6.parse(bytes.fromhex(FRAMES["router_advertisement"]))
    advert = icmpv6.parse_ra(icmpv6.parse(pkt.payload, pkt.src, pkt.dst), src=pkt.src, hop_limit=255)
    d, _ = discovery()
    assert d.on_advertisement(pkt.src, advert, 10.0) == []
    assert d.default_router() == pkt.src == ipv6.addr_to_int("fe80::ff:fe00:b")
    assert d.routers[pkt.src].expires == 1810.0
    assert (d.link_mtu, d.cur_hop_limit, d.base_reachable_time, d.retrans_timer) == (1400, 64, None, None)
    assert d.is_on_link(ipv6.addr_to_int("2001:db8::1")) and not d.is_on_link(ipv6.addr_to_int("2001:db8:1::80"))
    assert d.dns() == [ipv6.addr_to_int("2001:db8::53")]
    assert d.next_deadline() == 610.0


def test_solicitations_at_start_three_four_seconds_apart_until_an_advertisement() -> None:
    d, _ = discovery()
    d.start(0.0)
    assert d.next_deadline() == 0.5 and d.poll(0.4) == []
    assert d.poll(0.5) == [SendRouterSolicitation()]
    assert d.next_deadline() == 4.5 and d.poll(4.5) == [SendRouterSolicitation()]
    assert d.poll(8.5) == [SendRouterSolicitation()]
    assert d.next_deadline() is None and d.poll(100.0) == []


def test_an_advertisement_with_a_router_lifetime_stops_the_solicitations() -> None:
    d, _ = discovery()
    d.start(0.0)
    d.poll(0.5)
    d.on_advertisement(R1, ra(lifetime=0), 1.0)  # not a default router: keep asking
    assert d.poll(4.5) == [SendRouterSolicitation()]
    d.on_advertisement(R1, ra(), 5.0)
    assert d.poll(8.5) == [] and d.next_deadline() == 1805.0


def test_router_lifetime_expires_or_is_ended_by_zero() -> None:
    d, _ = discovery()
    d.on_advertisement(R1, ra(100), 0.0)
    d.on_advertisement(R2, ra(200), 0.0)
    assert d.poll(99.0) == [] and d.poll(100.0) == [RouterExpired(R1)]
    assert d.on_advertisement(R2, ra(0), 150.0) == [RouterExpired(R2)]
    assert d.default_router() is None and d.next_deadline() is None


def test_default_router_prefers_high_preference_then_what_is_reachable() -> None:
    d, _ = discovery()
    d.on_advertisement(R1, ra(preference=icmpv6.PREFERENCE_LOW), 0.0)
    d.on_advertisement(R2, ra(preference=icmpv6.PREFERENCE_MEDIUM), 0.0)
    assert d.default_router() == R2
    assert d.default_router(lambda a: a != R2) == R1
    assert d.default_router(lambda a: False) == R2  # none known reachable: still the best one
    d.on_advertisement(R1, ra(preference=icmpv6.PREFERENCE_HIGH), 1.0)
    assert d.default_router() == R1


def test_advertised_parameters_are_kept_for_the_layer() -> None:
    d, _ = discovery()
    d.on_advertisement(R1, ra(hop=200, reachable=15000, retrans=250), 0.0)
    assert (d.cur_hop_limit, d.base_reachable_time, d.retrans_timer) == (200, 15.0, 0.25)
    d.on_advertisement(R1, ra(), 1.0)  # zeros mean unspecified: nothing changes
    assert (d.cur_hop_limit, d.base_reachable_time, d.retrans_timer) == (200, 15.0, 0.25)


def test_mtu_option_outside_1280_and_the_link_mtu_is_ignored() -> None:
    d, counters = discovery()
    d.on_advertisement(R1, ra(mtu=1279), 0.0)
    d.on_advertisement(R1, ra(mtu=9000), 0.0)
    assert d.link_mtu == 1500 and counters["drop.ndisc.bad_mtu"] == 2
    d.on_advertisement(R1, ra(mtu=1280), 0.0)
    assert d.link_mtu == 1280


def test_on_link_prefixes_come_and_go_with_their_lifetimes() -> None:
    d, _ = discovery()
    inside = ipv6.addr_to_int("2001:db8::99")
    d.on_advertisement(R1, ra(prefixes=[on_link(valid=100), on_link(ipv6.addr_to_int("fe80::")),
                                        on_link(ipv6.addr_to_int("2001:db8:9::"), flag=False)]), 0.0)
    assert list(d.prefixes) == [(PREFIX, 64)] and d.is_on_link(inside)
    d.on_advertisement(R1, ra(prefixes=[on_link(valid=INFINITE_LIFETIME)]), 50.0)
    d.poll(1e9)
    assert d.is_on_link(inside)  # an infinite lifetime never ends
    d.on_advertisement(R1, ra(prefixes=[on_link(valid=0)]), 60.0)
    assert not d.is_on_link(inside) and d.is_on_link(ipv6.addr_to_int("fe80::77"))


def test_on_link_prefix_expires() -> None:
    d, _ = discovery()
    d.on_advertisement(R1, ra(0, prefixes=[on_link(valid=100, plen=48)]), 0.0)
    assert d.is_on_link(ipv6.addr_to_int("2001:db8:0:ffff::1"))
    assert d.next_deadline() == 100.0
    d.poll(100.0)
    assert not d.prefixes and d.next_deadline() is None


def test_dns_servers_follow_rfc_8106() -> None:
    d, counters = discovery(max_dns_servers=2)
    s = [ipv6.addr_to_int(f"2001:db8::53:{i}") for i in range(4)]
    d.on_advertisement(R1, ra(0, rdnss=[Rdnss(100, (s[0], s[1]))]), 0.0)
    assert d.dns() == [s[0], s[1]]
    d.on_advertisement(R1, ra(0, rdnss=[Rdnss(300, (s[1],))]), 0.0)  # refreshed: s[0] now expires first
    d.on_advertisement(R1, ra(0, rdnss=[Rdnss(200, (s[2],))]), 0.0)  # full: replaces the soonest to expire
    assert sorted(d.dns()) == sorted([s[1], s[2]])
    d.on_advertisement(R1, ra(0, rdnss=[Rdnss(50, (s[3],))]), 0.0)  # would expire before all: not taken
    assert s[3] not in d.dns() and counters["drop.ndisc.dns_server_list_full"] == 1
    d.on_advertisement(R1, ra(0, rdnss=[Rdnss(0, (s[2],))]), 10.0)  # lifetime 0 deletes
    assert d.dns() == [s[1]]
    d.poll(300.0)
    assert d.dns() == []


def test_router_and_prefix_lists_are_bounded_against_floods() -> None:
    d, counters = discovery(max_default_routers=8, max_onlink_prefixes=16)
    for i in range(1000):
        d.on_advertisement(R1 + i, ra(prefixes=[on_link(PREFIX + (i << 64))]), 0.0)
    assert len(d.routers) == 8 and len(d.prefixes) == 16
    assert counters["drop.ndisc.router_list_full"] == 992 and counters["drop.ndisc.prefix_list_full"] == 984
    d.on_advertisement(R1, ra(prefixes=[on_link(PREFIX + (999 << 64))] * 5), 1.0)
    assert len(d.prefixes) == 16
