"""Header prediction (Connection._input_predicted) changes nothing but speed.

The fast path takes in-order data and pure ACKs of new data in a few tests; everything else goes
through the full RFC 9293 3.10.7.4 processing. The proof: the same transfers, over the same lossy
wire, with the same clock and seeds, put exactly the same frames on the wire with prediction on and
off, while prediction on takes most segments the fast way.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from pystack.config import StackConfig
from pystack.link.memory import MemoryWire
from pystack.stack import Stack
from pystack.tcp.config import TcpConfig
from pystack.tcp.connection import Connection

A_IP, B_IP = 0xC0000202, 0xC0000201
_PREDICTED = Connection._input_predicted


def _transfer(monkeypatch: pytest.MonkeyPatch, predict: bool, loss: float, seed: int) -> tuple[list[bytes], int]:
    """100 kB each way in turn, then both ways at once; returns (every frame on the wire, predicted)."""
    taken = 0
    real = _PREDICTED

    def counted(self: Connection, seg, now: float) -> bool:
        nonlocal taken
        if not predict:
            return False
        hit = real(self, seg, now)
        taken += hit
        return hit

    monkeypatch.setattr(Connection, "_input_predicted", counted)
    rng = random.Random(seed)  # the stacks' IPv4 identification
    drops = random.Random(seed)
    # A 16 KiB receive buffer: the window, not cwnd, paces the sender, so window updates matter.
    config = StackConfig(tcp=dataclasses.replace(TcpConfig(), isn_secret=b"k" * 16, recv_buffer=16 * 1024))
    a = Stack(bytes.fromhex("020000000002"), config, rng=rng)
    b = Stack(bytes.fromhex("020000000001"), config, rng=rng)
    wire = MemoryWire(a, b, latency=0.001,
                      fault=lambda _i, frame: [] if drops.random() < loss and len(frame) > 100 else [frame])
    a.configure(A_IP, 24, None, wire.clock.now)
    b.configure(B_IP, 24, None, wire.clock.now)
    listener = b.tcp.listen(0, 80, 4)
    client = a.tcp.connect(A_IP, B_IP, 80, wire.clock.now, local_port=40000)
    wire.run(until=lambda: listener.pending > 0)
    server = listener.accept()
    data = bytes(i * 31 & 0xFF for i in range(100_000))
    # One way, the other way, then both at once (segments that carry data and acknowledge data).
    for senders in ((client,), (server,), (client, server)):
        got = {client: bytearray(), server: bytearray()}
        sent = {client: 0, server: 0}
        for _ in range(20_000):
            for conn in (client, server):
                if conn in senders and sent[conn] < len(data) and conn.send_space:
                    sent[conn] += conn.send(data[sent[conn]:sent[conn] + 30_000], wire.clock.now)
                if conn.recv_available:
                    got[conn] += conn.recv(1 << 13, wire.clock.now)  # a slow reader: the windows move
            if all(len(got[peer]) == len(data) for peer in (client, server) if (peer is client and server in senders)
                   or (peer is server and client in senders)):
                break
            wire.run(duration=0.002)
        for conn in senders:
            assert got[server if conn is client else client] == data
    return [frame for _t, _i, frame in wire.log], taken


@pytest.mark.parametrize("loss, seed", [(0.0, 1), (0.02, 2), (0.05, 3)])
def test_prediction_puts_the_same_frames_on_the_wire(monkeypatch: pytest.MonkeyPatch, loss: float,
                                                     seed: int) -> None:
    full, none_taken = _transfer(monkeypatch, predict=False, loss=loss, seed=seed)
    fast, taken = _transfer(monkeypatch, predict=True, loss=loss, seed=seed)
    assert none_taken == 0
    assert len(fast) == len(full)
    assert fast == full
    one_way_segments = 2 * 100_000 // 1448
    assert taken > one_way_segments // 2  # most segments of the one-way phases took the fast way
