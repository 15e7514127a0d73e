"""TCP's acknowledgements of new data keep the next hop's ARP entry fresh, as Linux's tcp_ack confirms the
neighbour (ARP and ND share its neighbour layer there; RFC 4861 7.3.1 for IPv6, the same idea for RFC 1122
2.3.2.1's cache): a transfer lasting many entry lifetimes sends no unicast ARP poll, and a peer that stops
answering is still polled.

Two in-memory stacks and a fake clock; A trickles 100 bytes a second to B, who reads them."""

from __future__ import annotations

import pytest

from pystack.config import StackConfig
from pystack.link.memory import MemoryWire
from pystack.wire import arp, ethernet

from .conftest import A_IP, B_IP, make_pair

SECONDS = 120


def _arp_requests_from_a(wire: MemoryWire, since: int) -> list[bytes]:
    """The destination MACs of the ARP requests A put on the wire."""
    return [bytes(frame[:6]) for _t, who, frame in wire.log[since:]
            if who == 0 and frame[12:14] == ethernet.ETHERTYPE_ARP.to_bytes(2, "big")
            and arp.parse(memoryview(frame)[14:]).op == arp.OP_REQUEST]


@pytest.mark.parametrize("fast", [True, False], ids=["fast_paths", "layered"])
def test_acks_of_new_data_keep_the_arp_entry_fresh_without_polls(fast: bool) -> None:
    a, b, wire = make_pair(StackConfig(fast_paths=fast))
    listener = b.tcp.listen(0, 80, 8)
    client = a.tcp.connect(A_IP, B_IP, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    server = listener.accept()
    start = len(wire.log)
    got = 0
    for _ in range(SECONDS):
        client.send(b"x" * 100, wire.clock.now)
        wire.run(duration=1.0)
        got += len(server.recv(1 << 16, wire.clock.now))
        entry = a.arp.entries.get(B_IP)
        assert entry is not None and wire.clock.now < entry.expires
    assert got == 100 * SECONDS and a.config.arp_reachable_time < SECONDS / 2
    assert _arp_requests_from_a(wire, start) == []


def test_a_silent_peer_is_still_polled() -> None:
    a, b, wire = make_pair(StackConfig())
    listener = b.tcp.listen(0, 80, 8)
    client = a.tcp.connect(A_IP, B_IP, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    start = len(wire.log)
    wire.fault = lambda sender, frame: [] if sender == 1 else [frame]
    client.send(b"x" * 100, wire.clock.now)
    wire.run(duration=SECONDS)
    assert b.mac in _arp_requests_from_a(wire, start)  # the unicast poll of the stale entry
