"""The whole dual-stack stack under mutated and generated IPv6 frames (the IPv6 corpus, :mod:`fuzz.mutate6`,
:func:`fuzz.strategies.ipv6_frames`), with the properties of :mod:`fuzz.test_fuzz_stack` -- nothing
raises, every frame leaves a counted trace, every answer is well-formed -- and these for IPv6:

- every IPv6 table stays within its bound in :class:`pystack.ip6.config.Ipv6Config` after every frame
  (neighbours and those being resolved, addresses, routers, prefixes, DNS servers, partial packets and
  their bytes, path MTUs, groups);
- the stack still answers a ping over IPv6 after the garbage;
- once the garbage stops and time passes, nothing of it is left: no partial packet, no resolution pending.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings

from pystack.apps.udp_echo import UdpEcho
from pystack.ip6.neighbours import State as NeighbourState
from pystack.stack import Stack
from pystack.wire import ethernet, icmpv6, ipv6

from .corpus import A6, A_MAC, B6, B_MAC, corpus, corpus6, examples, make_pair
from .mutate import mutate
from .mutate6 import MUTATIONS6
from .strategies import ipv6_frames
from .test_fuzz_stack import drain, feed


def fuzz_target6() -> tuple[Stack, object]:
    """Stack A as ``pystack run --address6`` runs it: IPv4 and IPv6, UDP echo on 7 and TCP listeners on 80
    of both families."""
    a, _b, wire = make_pair(ipv6_too=True)
    UdpEcho(a)
    a.tcp.listen(0, 80, 64)
    a.tcp6.listen(0, 80, 64)
    a.frames_to_send()
    return a, wire.clock


def within_bounds(stack: Stack) -> list[str]:
    """The IPv6 tables that hold more than their bound."""
    cfg6 = stack.config.ipv6
    nd = stack.nd
    r6 = stack._ipv6.reassembler
    pending = sum(1 for e in nd.neighbours.entries.values() if e.state is NeighbourState.INCOMPLETE)
    sizes = {
        "neighbour_cache_size": (len(nd.neighbours), cfg6.neighbour_cache_size),
        "neighbour_pending_addresses": (pending, cfg6.neighbour_pending_addresses),
        "neighbour_pending_bytes": (max((e.queued_bytes for e in nd.neighbours.entries.values()), default=0),
                                    cfg6.neighbour_pending_bytes),
        "max_addresses": (len(stack.addresses6), cfg6.max_addresses),
        "max_default_routers": (len(nd.routers.routers), cfg6.max_default_routers),
        "max_onlink_prefixes": (len(nd.routers.prefixes), cfg6.max_onlink_prefixes),
        "max_dns_servers": (len(nd.routers.dns_servers), cfg6.max_dns_servers),
        "reassembly_max_datagrams": (len(r6.packets), cfg6.reassembly_max_datagrams),
        "reassembly_max_bytes": (r6.bytes_held, cfg6.reassembly_max_bytes),
        "reassembly_max_fragments": (max((len(p.parts) for p in r6.packets.values()), default=0),
                                     cfg6.reassembly_max_fragments),
        "path_mtu_entries": (len(stack._ipv6.path_mtu), cfg6.path_mtu_entries),
        "groups (max_addresses + all-nodes)": (len(nd.mld.groups), cfg6.max_addresses + 1),
    }
    return [f"{name}: {held} > {bound}" for name, (held, bound) in sizes.items() if held > bound]


def feed6(stack: Stack, clock: object, frames: list[bytes]) -> None:
    for i in range(0, len(frames), 50):
        feed(stack, clock, frames[i:i + 50])
        assert not within_bounds(stack), within_bounds(stack)


def answers_ping6(stack: Stack, clock: object) -> bool:
    """An echo request from B6 (whose MAC the stack is told first: a flood may have pushed it out)."""
    now = clock.now  # type: ignore[attr-defined]
    stack.nd.neighbours.learn(B6, B_MAC, now)
    request = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x5151_0001, b"still there?", B6, A6)
    stack.receive_frame(ethernet.build(A_MAC, B_MAC, ethernet.ETHERTYPE_IPV6,
                                       ipv6.build(B6, A6, ipv6.NH_ICMPV6, request)), now)
    for frame in stack.frames_to_send():
        if frame[12:14] == b"\x86\xdd" and frame[54] == icmpv6.TYPE_ECHO_REPLY and frame[58:62] == b"\x51\x51\x00\x01":
            return True
    return False


def drain6(stack: Stack, clock: object) -> None:
    """As :func:`fuzz.test_fuzz_stack.drain`, and no partial IPv6 packet is left. A resolution may still be
    pending only if an advertisement stretched RetransTimer past the drain (RFC 4861 6.3.4 takes the
    advertised value, up to 2**32 ms or 49 days, as Linux does); its next solicitation is then due within
    that, never "never"."""
    drain(stack, clock)
    r6 = stack._ipv6.reassembler
    assert not r6.packets and r6.bytes_held == 0, "partial IPv6 packets left"
    neighbours = stack.nd.neighbours
    now = clock.now  # type: ignore[attr-defined]
    stretched = neighbours.retrans_timer != stack.config.ipv6.retrans_timer
    stuck = [ip for ip, e in neighbours.entries.items() if e.state is NeighbourState.INCOMPLETE
             and not (stretched and e.deadline <= now + 2**32 / 1000 and ip in neighbours.timed)]
    assert not stuck, f"neighbour resolutions left pending: {stuck}"


def test_the_ipv6_session_itself_replayed_is_handled() -> None:
    stack, clock = fuzz_target6()
    feed6(stack, clock, list(corpus6()))
    drain6(stack, clock)


@pytest.mark.parametrize("seed", range(3))
def test_mutated_ipv6_frames_are_dropped_counted_or_handled(seed: int) -> None:
    frames = corpus6()
    seeds = [f for f in frames if f[6:12] != A_MAC]  # what reaches A: B's frames (A's own go to B's MAC)
    rng = random.Random(seed)
    stack, clock = fuzz_target6()
    garbage = [mutate(rng, rng.choice(seeds), frames + corpus()[:50], table=MUTATIONS6)[0]
               for _ in range(examples(3000))]
    before = dict(stack.counters)
    feed6(stack, clock, garbage)
    reasons = {k for k, v in stack.counters.items() if k.startswith(("drop.ipv6.", "drop.ndisc.", "drop.icmpv6."))
               and v != before.get(k, 0)}
    assert len(reasons) >= 30, f"the mutations reached few IPv6 checks: {sorted(reasons)}"
    assert answers_ping6(stack, clock)
    drain6(stack, clock)
    assert answers_ping6(stack, clock)


_shared: dict[str, tuple[Stack, object]] = {}


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=ipv6_frames())
def test_generated_ipv6_frames_through_the_stack(frame: bytes) -> None:
    if "target" not in _shared:  # one stack for every example: state accumulates, as in real life
        _shared["target"] = fuzz_target6()
    stack, clock = _shared["target"]
    feed6(stack, clock, [frame])


def test_generated_ipv6_frames_leave_nothing_behind() -> None:
    if "target" not in _shared:
        pytest.skip("runs after test_generated_ipv6_frames_through_the_stack")
    stack, clock = _shared.pop("target")
    assert answers_ping6(stack, clock)
    drain6(stack, clock)
