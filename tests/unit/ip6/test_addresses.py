"""Addresses (RFC 4291, RFC 4862, RFC 7217) with a fake clock: the link-local and SLAAC addresses a
Linux kernel formed from the same MAC and RA, DAD and its conflicts, lifetimes and the two-hour rule,
stable identifiers and their retries, source selection, and the table's bound."""

from __future__ import annotations

import math

import pytest

from pystack.counters import Counters
from pystack.ip6.addresses import (
    Action, AddressEvent, AddressTable, DadProbe, Event, Origin, State, eui64_iid, stable_iid,
)
from pystack.ip6.config import IID_STABLE, Ipv6Config
from pystack.wire import icmpv6, ipv6
from pystack.wire.icmpv6 import INFINITE_LIFETIME, PrefixInfo
from wire.linux_ipv6 import FRAMES

MAC = bytes.fromhex("02000000000a")
NONCE = b"\x01\x02\x03\x04\x05\x06"
PREFIX = ipv6.addr_to_int("2001:db8::")
LL = ipv6.addr_to_int("fe80::ff:fe00:a")  # what the kernel formed for this MAC
SLAAC = ipv6.addr_to_int("2001:db8::ff:fe00:a")  # and from dnsmasq's RA
SECRET = bytes(range(16))


def table(*, rng: float = 0.5, **kw: object) -> tuple[AddressTable, Counters]:
    counters = Counters()
    return AddressTable(Ipv6Config(**kw), counters, MAC, rng=lambda: rng,  # type: ignore[arg-type]
                        nonces=lambda: NONCE), counters


def info(prefix: int = PREFIX, valid: int = 600, preferred: int = 600, *, plen: int = 64, auto: bool = True) -> PrefixInfo:
    return PrefixInfo(prefix, plen, True, auto, valid, preferred)


def configured(t: AddressTable, actions: list[Action], now: float) -> int:
    """Run DAD to its end from ``now``; return the address configured."""
    (added,) = [a for a in actions if isinstance(a, AddressEvent) and a.event is Event.ADDED]
    for step in range(5):
        for action in t.poll(now + step):
            if isinstance(action, AddressEvent) and action.event is Event.CONFIGURED:
                return action.address
    raise AssertionError(f"{added} never configured")


def ev(event: Event, address: int, origin: Origin, plen: int = 64) -> AddressEvent:
    return AddressEvent(event, address, plen, origin)


# --- identifiers -------------------------------------------------------------------------------------------


def test_eui64_identifier_flips_the_universal_local_bit_as_the_kernel_did() -> None:
    assert eui64_iid(MAC) == LL & ((1 << 64) - 1) == 0x0000_00FF_FE00_000A
    assert eui64_iid(bytes.fromhex("001122334455")) == 0x0211_22FF_FE33_4455


def test_stable_identifiers_are_stable_per_prefix_and_change_with_the_counter() -> None:
    a = stable_iid(SECRET, PREFIX, MAC, 0)
    assert a == stable_iid(SECRET, PREFIX, MAC, 0) < 1 << 64
    assert len({a, stable_iid(SECRET, PREFIX + (1 << 64), MAC, 0), stable_iid(SECRET, PREFIX, MAC, 1),
                stable_iid(SECRET[::-1], PREFIX, MAC, 0), stable_iid(SECRET, PREFIX, b"\x02" * 6, 0)}) == 5
    assert a != eui64_iid(MAC)  # nothing of the MAC shows


# --- the link-local address and DAD (RFC 4862 5.4) -------------------------------------------------------


def test_link_local_address_is_the_kernels_and_passes_dad_after_a_random_delay() -> None:
    t, _ = table(rng=0.5)
    assert t.start(0.0) == [ev(Event.ADDED, LL, Origin.LINK_LOCAL)]
    assert t.next_deadline() == 0.5 and t.poll(0.49) == []
    assert t.poll(0.5) == [DadProbe(LL, NONCE)]
    assert not t.is_assigned(LL) and t.get(LL).state is State.TENTATIVE  # type: ignore[union-attr]
    assert t.next_deadline() == 1.5 and t.poll(1.49) == []
    assert t.poll(1.5) == [ev(Event.CONFIGURED, LL, Origin.LINK_LOCAL)]
    assert t.is_assigned(LL) and t.next_deadline() is None


def test_dad_probe_builds_the_ns_the_kernel_sends() -> None:
    pkt = ipv6.parse(bytes.fromhex(FRAMES["dad_ns_with_nonce"]))
    msg = icmpv6.parse(pkt.payload, pkt.src, pkt.dst)
    ns = icmpv6.parse_ns(msg, src=pkt.src, dst=pkt.dst, hop_limit=255)
    assert ns.options.nonce is not None
    probe = DadProbe(ns.target, ns.options.nonce)
    assert icmpv6.build_ns(ipv6.UNSPECIFIED, ipv6.solicited_node(probe.address), probe.address,
                           nonce=probe.nonce) == bytes(pkt.payload)


@pytest.mark.parametrize("transmits", [0, 1, 3])
def test_dad_sends_dad_transmits_probes_one_retrans_timer_apart(transmits: int) -> None:
    t, _ = table(dad_transmits=transmits)
    actions = t.add(ipv6.addr_to_int("2001:db8::2"), 64, Origin.STATIC, 10.0)
    probes = [a for a in actions if isinstance(a, DadProbe)]
    times = [10.0] * len(probes)
    for step in range(1, 5):
        got = t.poll(10.0 + step)
        probes += [a for a in got if isinstance(a, DadProbe)]
        times += [10.0 + step] * sum(isinstance(a, DadProbe) for a in got)
        if any(isinstance(a, AddressEvent) and a.event is Event.CONFIGURED for a in got + actions):
            break
    assert len(probes) == transmits and times == [10.0 + i for i in range(transmits)]
    assert t.is_assigned(ipv6.addr_to_int("2001:db8::2")) and t.get(ipv6.addr_to_int("2001:db8::2")) is not None
    if transmits == 0:
        assert ev(Event.CONFIGURED, ipv6.addr_to_int("2001:db8::2"), Origin.STATIC) in actions


def test_another_nodes_dad_probe_makes_a_tentative_address_duplicate() -> None:
    t, counters = table()
    t.add(SLAAC, 64, Origin.STATIC, 0.0)
    assert t.on_solicitation(SLAAC, ipv6.UNSPECIFIED, b"other!", 0.2) == [ev(Event.DUPLICATE, SLAAC, Origin.STATIC)]
    assert not t.is_assigned(SLAAC) and t.get(SLAAC).state is State.DUPLICATE  # type: ignore[union-attr]
    assert t.poll(10.0) == [] and counters["ipv6.dad_duplicate"] == 1


def test_an_advertisement_for_a_tentative_address_makes_it_duplicate() -> None:
    t, _ = table()
    t.add(SLAAC, 64, Origin.STATIC, 0.0)
    assert t.on_advertisement(SLAAC, 0.5) == [ev(Event.DUPLICATE, SLAAC, Origin.STATIC)]


def test_resolution_for_a_tentative_address_and_our_own_looped_probe_are_ignored() -> None:
    t, counters = table()
    t.add(SLAAC, 64, Origin.STATIC, 0.0)
    assert t.on_solicitation(SLAAC, ipv6.addr_to_int("fe80::1"), None, 0.1) == []  # 5.4.3: resolution
    assert t.on_solicitation(SLAAC, ipv6.UNSPECIFIED, NONCE, 0.2) == []  # RFC 7527: our own nonce
    assert counters["ipv6.dad_looped_back"] == 1
    assert t.poll(1.0) == [ev(Event.CONFIGURED, SLAAC, Origin.STATIC)]


def test_conflicts_after_dad_are_only_counted() -> None:
    t, counters = table(dad_transmits=0)
    t.add(SLAAC, 64, Origin.STATIC, 0.0)
    assert t.on_advertisement(SLAAC, 1.0) == [] and t.on_solicitation(SLAAC, ipv6.UNSPECIFIED, b"x", 1.0) == []
    assert t.is_assigned(SLAAC) and counters["ipv6.address_conflict"] == 1


def test_duplicate_stable_identifier_is_replaced_by_the_next_until_the_retries_run_out() -> None:
    t, counters = table(iid_mode=IID_STABLE, stable_secret=SECRET, idgen_retries=2, rng=0.25)
    actions = t.on_prefix(info(), 0.0)
    tried = []
    for counter in range(3):
        (added,) = [a for a in actions if isinstance(a, AddressEvent) and a.event is Event.ADDED]
        assert added.address == PREFIX | stable_iid(SECRET, PREFIX, MAC, counter)
        tried.append(added.address)
        actions = t.on_solicitation(added.address, ipv6.UNSPECIFIED, b"other!", 1.0)
        assert actions[0] == ev(Event.DUPLICATE, added.address, Origin.SLAAC)
        if counter < 2:
            assert t.next_deadline() == 1.25  # IDGEN_DELAY, scaled by the random draw
            assert added.address not in t.table and len(t) == 1
    assert actions == [ev(Event.DUPLICATE, tried[-1], Origin.SLAAC)] and len(set(tried)) == 3
    assert counters["ipv6.dad_duplicate"] == 3


def test_duplicate_eui64_address_stays_duplicate_and_slaac_does_not_retry_it() -> None:
    t, _ = table()
    t.on_prefix(info(), 0.0)
    t.on_advertisement(SLAAC, 0.5)
    assert t.on_prefix(info(), 10.0) == [] and t.get(SLAAC).state is State.DUPLICATE  # type: ignore[union-attr]


# --- SLAAC (RFC 4862 5.5.3) ------------------------------------------------------------------------------


def test_slaac_from_dnsmasqs_advertisement_forms_the_kernels_address() -> None:
    pkt = ipv6.parse(bytes.fromhex(FRAMES["router_advertisement"]))
    ra = icmpv6.parse_ra(icmpv6.parse(pkt.payload, pkt.src, pkt.dst), src=pkt.src, hop_limit=255)
    t, _ = table()
    actions = t.on_prefix(ra.options.prefixes[0], 100.0)
    assert actions == [ev(Event.ADDED, SLAAC, Origin.SLAAC), DadProbe(SLAAC, NONCE)]
    assert configured(t, actions, 101.0) == SLAAC
    entry = t.get(SLAAC)
    assert entry is not None and (entry.valid_until, entry.preferred_until) == (700.0, 700.0)


@pytest.mark.parametrize(("option", "counted"), [
    (info(auto=False), None),
    (info(ipv6.addr_to_int("fe80::")), None),
    (info(valid=100, preferred=200), "drop.ipv6.slaac_bad_lifetimes"),
    (info(plen=48), "drop.ipv6.slaac_prefix_length"),
    (info(valid=0, preferred=0), None),
], ids=["no_A_flag", "link_local", "preferred_over_valid", "not_64_bits", "zero_lifetime"])
def test_slaac_ignores_what_rfc_4862_5_5_3_ignores(option: PrefixInfo, counted: str | None) -> None:
    t, counters = table()
    assert t.on_prefix(option, 0.0) == [] and len(t) == 0
    if counted:
        assert counters[counted] == 1


def test_slaac_can_be_turned_off() -> None:
    t, _ = table(slaac=False)
    assert t.on_prefix(info(), 0.0) == []


def test_preferred_lifetime_deprecates_and_valid_lifetime_removes() -> None:
    t, counters = table(dad_transmits=0)
    assert t.on_prefix(info(valid=600, preferred=300), 0.0)[-1] == ev(Event.CONFIGURED, SLAAC, Origin.SLAAC)
    assert t.next_deadline() == 300.0 and t.poll(299.0) == []
    assert t.poll(300.0) == [ev(Event.DEPRECATED, SLAAC, Origin.SLAAC)]
    assert t.is_assigned(SLAAC) and t.next_deadline() == 600.0
    assert t.poll(600.0) == [ev(Event.REMOVED, SLAAC, Origin.SLAAC)]
    assert not t.is_assigned(SLAAC) and len(t) == 0 and counters["ipv6.address_expired"] == 1


def test_a_new_preferred_lifetime_makes_a_deprecated_address_preferred_again() -> None:
    t, _ = table(dad_transmits=0)
    t.on_prefix(info(valid=600, preferred=0), 0.0)
    assert t.get(SLAAC).state is State.DEPRECATED  # type: ignore[union-attr]
    assert t.on_prefix(info(valid=600, preferred=300), 10.0) == [ev(Event.CONFIGURED, SLAAC, Origin.SLAAC)]


@pytest.mark.parametrize(("remaining", "advertised", "expected_remaining"), [
    (10000, 100, 7200),  # (e.3): an RA cannot cut it below two hours
    (3600, 100, 3600),  # (e.2): at two hours or less, a shorter lifetime is ignored
    (3600, 9000, 9000),  # (e.1): longer than two hours is taken
    (3600, 5000, 5000),  # (e.1): longer than what remains is taken
    (10000, 0, 7200),  # a zero lifetime does not kill it either
])
def test_valid_lifetime_follows_the_two_hour_rule(remaining: int, advertised: int, expected_remaining: int) -> None:
    t, _ = table(dad_transmits=0)
    t.on_prefix(info(valid=remaining, preferred=0), 0.0)
    t.on_prefix(info(valid=advertised, preferred=0), 0.0)
    assert t.get(SLAAC).valid_until == expected_remaining  # type: ignore[union-attr]


def test_infinite_lifetimes_never_expire() -> None:
    t, _ = table(dad_transmits=0)
    t.on_prefix(info(valid=INFINITE_LIFETIME, preferred=INFINITE_LIFETIME), 0.0)
    entry = t.get(SLAAC)
    assert entry is not None and entry.valid_until == math.inf and t.next_deadline() is None


def test_slaac_leaves_a_static_address_with_the_same_value_alone() -> None:
    t, _ = table(dad_transmits=0)
    t.add(SLAAC, 64, Origin.STATIC, 0.0)
    assert t.on_prefix(info(valid=600, preferred=300), 0.0) == []
    entry = t.get(SLAAC)
    assert entry is not None and entry.origin is Origin.STATIC and entry.valid_until == math.inf


# --- static addresses, removal, source selection ----------------------------------------------------------


def test_static_address_with_lifetimes_and_removal() -> None:
    t, _ = table(dad_transmits=0)
    static = ipv6.addr_to_int("2001:db8::2")
    t.add(static, 64, Origin.DHCPV6, 0.0, valid=100.0, preferred=50.0)
    assert t.next_deadline() == 50.0
    assert t.remove(static) == [ev(Event.REMOVED, static, Origin.DHCPV6)] and t.remove(static) == []


def test_source_address_selection() -> None:
    t, _ = table(dad_transmits=0)
    t.start(0.0)
    t.poll(1.0)
    other = ipv6.addr_to_int("2001:db8:1::2")
    assert t.source_for(ipv6.addr_to_int("2001:db8::1")) is None  # no global address yet
    t.add(SLAAC, 64, Origin.SLAAC, 1.0)
    t.add(other, 64, Origin.STATIC, 1.0)
    assert t.source_for(ipv6.addr_to_int("fe80::1")) == LL
    assert t.source_for(ipv6.ALL_NODES) == LL
    assert t.source_for(ipv6.addr_to_int("2001:db8::1")) == SLAAC  # longest common prefix
    assert t.source_for(ipv6.addr_to_int("2001:db8:1::1")) == other
    assert t.source_for(other) == other
    t.add(other, 64, Origin.STATIC, 2.0, preferred=0.0)  # deprecated: chosen only when nothing else fits
    assert t.source_for(ipv6.addr_to_int("2001:db8:1::1")) == SLAAC


# --- the bound ---------------------------------------------------------------------------------------------


def test_address_table_is_bounded_even_against_an_ra_with_a_thousand_prefixes() -> None:
    t, counters = table(max_addresses=16)
    t.start(0.0)
    for i in range(1000):
        t.on_prefix(info(PREFIX + (i << 64)), 1.0)
    assert len(t) == 16 and counters["drop.ipv6.address_table_full"] == 1000 - 15
    assert t.get(LL) is not None
