"""The way out the IPv6 fast paths remember per destination (pystack.iface.ipv6.Ipv6.way: next hop, its
MAC, path MTU, hop limit) and the echo lane's remembered peer hold only while nothing they are made of
changed: a neighbour's MAC or state, a route (gateway, router, prefix, address), our addresses, the path
MTU, an RA's parameters. Each test fills the memory with one ping, makes one kind of change, and shows the
next ping answered as the change says; without the change count bumped for that kind, the remembered way
would answer as before. Neighbour unreachability detection still moves STALE -> DELAY -> PROBE on use.

One stack with the fast paths on, driven frame by frame with a fake clock (``now``)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from pystack.config import StackConfig
from pystack.ip6.config import Ipv6Config
from pystack.counters import Counters
from pystack.ip6.neighbours import NeighbourCache, State
from pystack.stack import Stack
from pystack.wire import ethernet, icmpv6, ipv6

from .stack_pair import frame_to

US = ipv6.addr_to_int("2001:db8::1")
US_MAC = bytes.fromhex("020000000001")
PEER = ipv6.addr_to_int("2001:db8::2")
PEER_MAC = bytes.fromhex("02000000000a")
NEW_MAC = bytes.fromhex("02000000000b")
FAR = ipv6.addr_to_int("2001:db8:9::9")
"""Off-link: reached through a router."""
R1, R2 = ipv6.addr_to_int("fe80::1"), ipv6.addr_to_int("fe80::2")
R1_MAC, R2_MAC = bytes.fromhex("0200000000e1"), bytes.fromhex("0200000000e2")
START = 5.0
"""DAD is over by then."""


def _stack(**cfg6) -> Stack:
    config = StackConfig(fast_paths=True, ipv6=dataclasses.replace(Ipv6Config(), **cfg6))
    s = Stack(US_MAC, config, rng=random.Random(7))
    s.start_ipv6(0.0)
    s.add_address6(US, 64, 0.0)
    _run_timers(s, START)
    assert any(a.address == US and a.usable for a in s.addresses6)
    return s


def _run_timers(s: Stack, until: float) -> list[bytes]:
    """The stack's timers due up to ``until``, run in order; the frames they sent."""
    while (deadline := s.get_timer()) is not None and deadline <= until:
        s.handle_timer(deadline)
    return s.frames_to_send()


def _nd(s: Stack, src: int, message: bytes, mac: bytes, now: float) -> list[bytes]:
    s.receive_frame(frame_to(s, ipv6.build(src, US, ipv6.NH_ICMPV6, message, hop_limit=255), mac), now)
    return s.frames_to_send()


def _meet(s: Stack, address: int, mac: bytes, now: float) -> None:
    """``address`` solicits us with its MAC, then answers a solicitation: REACHABLE (RFC 4861 7.2.5)."""
    _nd(s, address, icmpv6.build_ns(address, US, US, source_lladdr=mac), mac, now)
    _nd(s, address, icmpv6.build_na(address, US, address, solicited=True, target_lladdr=mac), mac, now)
    assert s.nd.neighbours.lookup(address).state is State.REACHABLE


def _echo(src: int, mac: bytes, size: int = 8, dst: int = US) -> bytes:
    request = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x1234_0001, bytes(size), src, dst)
    return ethernet.build(US_MAC, mac, ethernet.ETHERTYPE_IPV6, ipv6.build(src, dst, ipv6.NH_ICMPV6, request))


def _lane(s: Stack, frame: bytes, now: float) -> bytes | None:
    """The echo lane's reply, or None (then the layered path is given the frame, as the stack would)."""
    reply = s.answer_echo(frame, now)
    if reply is None:
        s.receive_frame(frame, now)
    return reply


def _state(s: Stack, address: int) -> State | None:
    entry = s.nd.neighbours.lookup(address)
    return None if entry is None else entry.state


@pytest.fixture
def s() -> Stack:
    stack = _stack()
    _meet(stack, PEER, PEER_MAC, START)
    return stack


# --- neighbours ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("solicited", [False, True])
def test_a_neighbours_new_mac_is_used_at_once(s: Stack, solicited: bool) -> None:
    """An advertisement with the override flag changes the MAC (7.2.5): unsolicited, the entry turns STALE;
    solicited, it stays REACHABLE, only its MAC changes."""
    assert s.answer_echo(_echo(PEER, PEER_MAC), START)[:6] == PEER_MAC
    _nd(s, PEER, icmpv6.build_na(PEER, US, PEER, solicited=solicited, override=True, target_lladdr=NEW_MAC),
        NEW_MAC, START + 1)
    reply = s.answer_echo(_echo(PEER, NEW_MAC), START + 1)
    assert reply is not None and reply[:6] == NEW_MAC
    assert _state(s, PEER) is (State.REACHABLE if solicited else State.DELAY)  # STALE, then used: DELAY (7.3.3)


def test_unreachability_detection_moves_on_use_and_a_deleted_neighbour_is_not_used(s: Stack) -> None:
    """REACHABLE past ReachableTime is STALE; a reply sent to it starts DELAY, then PROBE sends unicast
    solicitations (RFC 4861 7.3.3); unanswered, the entry is deleted and the next reply waits for a
    multicast solicitation's answer instead of going to the old MAC."""
    now = START
    assert s.answer_echo(_echo(PEER, PEER_MAC), now) is not None
    now += s.nd.neighbours.reachable_time + 0.1
    assert _lane(s, _echo(PEER, PEER_MAC), now) is not None and _state(s, PEER) is State.DELAY
    cfg6 = s.config.ipv6
    now += cfg6.delay_first_probe_time
    probes = _run_timers(s, now)
    assert _state(s, PEER) is State.PROBE
    assert [f[:6] for f in probes if f[54:55] == bytes([icmpv6.TYPE_NEIGHBOUR_SOLICITATION])] == [PEER_MAC]
    assert s.answer_echo(_echo(PEER, PEER_MAC), now) is not None  # PROBE: still sent to (7.3.3)
    now += cfg6.max_unicast_solicit * cfg6.retrans_timer
    _run_timers(s, now)
    assert _state(s, PEER) is None
    assert _lane(s, _echo(PEER, PEER_MAC), now) is None
    sent = s.frames_to_send()
    assert len(sent) == 1 and sent[0][:6] == ipv6.multicast_mac(ipv6.solicited_node(PEER))  # resolving anew
    assert _state(s, PEER) is State.INCOMPLETE


def test_a_confirmed_neighbour_turns_stale_again_when_its_new_time_runs_out(s: Stack) -> None:
    """An upper layer's confirmation (7.3.1) in DELAY makes it REACHABLE for ReachableTime from then; when
    that runs out, the next reply moves it to DELAY again, as the layered path would."""
    now = START + s.nd.neighbours.reachable_time + 0.1
    assert _lane(s, _echo(PEER, PEER_MAC), now) is not None and _state(s, PEER) is State.DELAY
    s.nd.confirm(PEER, now + 1)
    assert _state(s, PEER) is State.REACHABLE
    assert s.answer_echo(_echo(PEER, PEER_MAC), now + 2) is not None and _state(s, PEER) is State.REACHABLE
    now += 1 + s.nd.neighbours.reachable_time + 0.1
    assert _lane(s, _echo(PEER, PEER_MAC), now) is not None and _state(s, PEER) is State.DELAY


def test_the_neighbour_cache_tells_of_every_change_a_sender_may_remember() -> None:
    """Each entry added or deleted, each change of state or link-layer address calls ``changed``; a
    REACHABLE entry confirmed again does not (its new deadline is read where a way is remembered)."""
    told = []
    config = Ipv6Config(neighbour_cache_size=2, neighbour_pending_addresses=1)
    cache = NeighbourCache(config, Counters(), rng=lambda: 0.5, changed=lambda: told.append(1))

    def tells(action) -> int:
        before = len(told)
        action()
        return len(told) - before

    assert tells(lambda: cache.resolve(PEER, b"packet", 0.0)) == 1  # added, INCOMPLETE
    assert tells(lambda: cache.on_advertisement(PEER, PEER_MAC, 0.0, solicited=True, override=True,
                                                router=False)) == 1  # REACHABLE
    assert tells(lambda: cache.confirm(PEER, 1.0)) == 0
    assert tells(lambda: cache.on_advertisement(PEER, NEW_MAC, 1.0, solicited=True, override=True,
                                                router=False)) == 1  # REACHABLE still, a new MAC
    assert tells(lambda: cache.resolve(PEER, b"", 1.0 + cache.reachable_time)) == 2  # STALE, then DELAY
    assert tells(lambda: cache.poll(1.0 + cache.reachable_time + config.delay_first_probe_time)) == 1  # PROBE
    assert tells(lambda: cache.confirm(PEER, 10.0)) == 1  # REACHABLE
    assert tells(lambda: cache.learn(PEER, PEER_MAC, 10.0)) == 1  # another MAC heard: STALE
    assert tells(lambda: cache.learn(R1, R1_MAC, 10.0)) == 1  # added, STALE
    assert tells(lambda: cache.learn(R2, R2_MAC, 10.0)) == 2  # the table is full: one evicted, one added
    assert tells(lambda: cache.forget(R2)) == 1


# --- routes and addresses -----------------------------------------------------------------------------------

def test_a_new_gateway_takes_the_replies_to_off_link_hosts(s: Stack) -> None:
    _meet(s, R1, R1_MAC, START)
    _meet(s, R2, R2_MAC, START)
    s.gateway6 = R1
    assert s.answer_echo(_echo(FAR, R1_MAC), START)[:6] == R1_MAC
    s.gateway6 = R2
    assert s.answer_echo(_echo(FAR, R1_MAC), START)[:6] == R2_MAC
    s.gateway6 = None
    assert _lane(s, _echo(FAR, R1_MAC), START) is None  # no route: the layered path counts it
    assert s.counters["drop.icmpv6.echo_unroutable"] == 1


def test_a_removed_address_is_no_longer_answered_nor_its_prefix_on_link(s: Stack) -> None:
    other = ipv6.addr_to_int("2001:db8:1::1")
    s.add_address6(other, 64, START)
    _run_timers(s, START + 3)
    far_on_link = ipv6.addr_to_int("2001:db8:1::7")
    _meet(s, far_on_link, NEW_MAC, START + 3)
    assert s.answer_echo(_echo(far_on_link, NEW_MAC), START + 3)[:6] == NEW_MAC
    assert s.answer_echo(_echo(PEER, PEER_MAC, dst=other), START + 3) is not None
    s.remove_address6(other, START + 3)
    assert _lane(s, _echo(PEER, PEER_MAC, dst=other), START + 3) is None  # the lane's last peer: forgotten
    assert s.counters["drop.ipv6.not_for_us"] == 1
    # 2001:db8:1::/64 was on-link through the static address alone: no route there now (and no router).
    assert _lane(s, _echo(far_on_link, NEW_MAC), START + 3) is None
    assert s.counters["drop.icmpv6.echo_unroutable"] == 1


def _ra(s: Stack, now: float, *, lifetime: int = 1800, hop_limit: int = 64, mtu: int | None = None,
        on_link: int | None = None, valid: int = 3600) -> None:
    options = icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, R1_MAC)
    if mtu is not None:
        options += icmpv6.mtu_option(mtu)
    if on_link is not None:
        options += icmpv6.prefix_option(icmpv6.PrefixInfo(on_link, 64, True, False, valid, valid))
    ra = icmpv6.build_ra(R1, ipv6.ALL_NODES, cur_hop_limit=hop_limit, router_lifetime=lifetime, options=options)
    s.receive_frame(ethernet.build(ipv6.multicast_mac(ipv6.ALL_NODES), R1_MAC, ethernet.ETHERTYPE_IPV6,
                                   ipv6.build(R1, ipv6.ALL_NODES, ipv6.NH_ICMPV6, ra, hop_limit=255)), now)
    s.frames_to_send()


def test_a_router_advertisement_moves_routes_hop_limit_and_mtu(s: Stack) -> None:
    _meet(s, R1, R1_MAC, START)
    _ra(s, START)
    near = ipv6.addr_to_int("2001:db8:9::5")
    _meet(s, near, NEW_MAC, START)
    assert s.answer_echo(_echo(near, R1_MAC), START)[:6] == R1_MAC  # off-link: through the router
    reply = s.answer_echo(_echo(PEER, PEER_MAC, size=1400), START)
    assert reply is not None and reply[21] == 64  # hop limit
    _ra(s, START + 1, hop_limit=99, mtu=1280, on_link=FAR >> 64 << 64)
    assert s.answer_echo(_echo(near, R1_MAC), START + 1)[:6] == NEW_MAC  # its prefix is on-link now
    assert s.answer_echo(_echo(PEER, PEER_MAC), START + 1)[21] == 99
    assert _lane(s, _echo(PEER, PEER_MAC, size=1400), START + 1) is None  # the reply is fragmented now
    assert len(s.frames_to_send()) == 2


def test_a_router_whose_lifetime_ended_is_no_longer_a_way_out(s: Stack) -> None:
    _meet(s, R1, R1_MAC, START)
    _ra(s, START, lifetime=3)  # shorter than ReachableTime (at least 15 s): the entry stays REACHABLE
    assert s.answer_echo(_echo(FAR, R1_MAC), START)[:6] == R1_MAC
    _run_timers(s, START + 3)
    assert not s.nd.routers.routers and _state(s, R1) is State.REACHABLE
    assert _lane(s, _echo(FAR, R1_MAC), START + 3) is None
    assert s.counters["drop.icmpv6.echo_unroutable"] == 1


def test_a_prefix_whose_lifetime_ended_is_no_longer_on_link(s: Stack) -> None:
    near = ipv6.addr_to_int("2001:db8:9::5")
    _meet(s, near, NEW_MAC, START)
    _ra(s, START, lifetime=0, on_link=FAR >> 64 << 64, valid=3)
    assert s.answer_echo(_echo(near, NEW_MAC), START)[:6] == NEW_MAC
    _run_timers(s, START + 3)
    assert _lane(s, _echo(near, NEW_MAC), START + 3) is None
    assert s.counters["drop.icmpv6.echo_unroutable"] == 1


# --- path MTU -----------------------------------------------------------------------------------------------

def test_a_packet_too_big_shrinks_the_replies_until_the_path_mtu_expires(s: Stack) -> None:
    """RFC 8201: a Packet Too Big about a packet we sent lowers the path MTU (the reply is fragmented);
    when the learned value expires the link's holds again (the lane answers whole)."""
    big = _echo(PEER, PEER_MAC, size=1400)
    ours = s.answer_echo(big, START)
    assert ours is not None
    too_big = icmpv6.build_error(icmpv6.TYPE_PACKET_TOO_BIG, 0, 1280, ours[14:], PEER, US)
    s.receive_frame(frame_to(s, ipv6.build(PEER, US, ipv6.NH_ICMPV6, too_big), PEER_MAC), START)
    assert s.counters["ipv6.path_mtu_lowered"] == 1
    assert _lane(s, big, START) is None and len(s.frames_to_send()) == 2
    later = START + s.config.ipv6.path_mtu_timeout
    _meet(s, PEER, PEER_MAC, later)
    assert s.answer_echo(big, later) is not None


# --- the bound ----------------------------------------------------------------------------------------------

def test_the_destinations_remembered_are_bounded() -> None:
    s = _stack(destination_cache_size=2)
    hosts = [PEER + i for i in range(5)]
    for i, host in enumerate(hosts):
        _meet(s, host, bytes([2, 0, 0, 0, 1, i]), START)
    for i, host in enumerate(hosts):
        assert s.answer_echo(_echo(host, PEER_MAC), START)[:6] == bytes([2, 0, 0, 0, 1, i])
        assert len(s._ipv6._ways) <= 2
