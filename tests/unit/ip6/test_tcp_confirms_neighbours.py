"""TCP's acknowledgements of new data confirm the neighbour its packets go to (RFC 4861 7.3.1, as Linux's
tcp_ack does through dst_confirm_neigh): a transfer lasting many ReachableTimes keeps the next hop's entry
REACHABLE and sends no unicast probe; a peer that stops answering still goes through DELAY to PROBE.

Two in-memory stacks and a fake clock; A trickles 100 bytes a second to B, who reads them."""

from __future__ import annotations

import dataclasses

import pytest

from pystack.config import StackConfig
from pystack.ip6.neighbours import State
from pystack.stack import Stack
from pystack.link.memory import MemoryWire
from pystack.wire import icmpv6, ipv6

from .stack_pair import A6, B6, B_LL, ipv6_packets, make_pair6

FAR_B = ipv6.addr_to_int("2001:db8:1::1")
"""An address of B in a prefix A has no route to but its gateway (B's link-local address)."""
SECONDS = 120


def _unicast_probes(wire: MemoryWire, since: int) -> list[int]:
    """The targets of the unicast neighbour solicitations A put on the wire (7.3.3's probes)."""
    targets = []
    for pkt in ipv6_packets(wire, since, sender=0):
        if pkt.next_header == ipv6.NH_ICMPV6 and pkt.payload[0] == icmpv6.TYPE_NEIGHBOUR_SOLICITATION \
                and not ipv6.is_multicast(pkt.dst):
            targets.append(int.from_bytes(pkt.payload[8:24], "big"))
    return targets


def _pair(fast: bool, via_gateway: bool) -> tuple[Stack, Stack, MemoryWire, int, int]:
    """(a, b, wire, B's address A connects to, A's next hop to it)."""
    a, b, wire = make_pair6(StackConfig(fast_paths=fast))
    if not via_gateway:
        return a, b, wire, B6, B6
    b.add_address6(FAR_B, 64, wire.clock.now)
    a.gateway6 = B_LL
    wire.run(duration=2.0)  # B's DAD for it
    return a, b, wire, FAR_B, B_LL


def _trickle(a: Stack, b: Stack, wire: MemoryWire, dst: int, seconds: int, watch=lambda: None):
    listener = b.tcp6.listen(0, 80, 8)
    client = a.tcp6.connect(A6, dst, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    server = listener.accept()
    got = 0
    for _ in range(seconds):
        client.send(b"x" * 100, wire.clock.now)
        wire.run(duration=1.0)
        got += len(server.recv(1 << 16, wire.clock.now))
        watch()
    return client, got


@pytest.mark.parametrize("fast", [True, False], ids=["fast_paths", "layered"])
@pytest.mark.parametrize("via_gateway", [False, True], ids=["on_link", "via_router"])
def test_acks_of_new_data_keep_the_next_hop_reachable_without_probes(fast: bool, via_gateway: bool) -> None:
    a, b, wire, dst, next_hop = _pair(fast, via_gateway)
    start = len(wire.log)
    states: list[State] = []

    def watch() -> None:
        entry = a.nd.neighbours.lookup(next_hop)
        assert entry is not None
        # REACHABLE within its time: the next packet sent finds it so, and starts no DELAY.
        states.append(entry.state if wire.clock.now < entry.deadline else State.STALE)

    _client, got = _trickle(a, b, wire, dst, SECONDS, watch)
    assert got == 100 * SECONDS
    assert a.nd.neighbours.reachable_time < SECONDS / 2  # several ReachableTimes went by
    assert set(states) == {State.REACHABLE}
    assert _unicast_probes(wire, start) == []


def test_a_silent_peer_is_still_probed() -> None:
    """B stops answering: A's retransmissions find the entry unconfirmed, STALE, then DELAY, and probe."""
    a, b, wire = make_pair6(StackConfig())
    listener = b.tcp6.listen(0, 80, 8)
    client = a.tcp6.connect(A6, B6, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    start = len(wire.log)
    wire.fault = lambda sender, frame: [] if sender == 1 else [frame]
    client.send(b"x" * 100, wire.clock.now)
    states: set[State] = set()
    for _ in range(SECONDS):
        wire.run(duration=1.0)
        entry = a.nd.neighbours.lookup(B6)
        states.add(entry.state if entry is not None else None)
    assert State.PROBE in states
    assert B6 in _unicast_probes(wire, start)
