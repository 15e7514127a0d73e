"""Two stacks on an in-memory wire with a fake clock: A = 192.0.2.2, B = 192.0.2.1."""

from __future__ import annotations

import hashlib
import random
from typing import Callable

import pytest

from pystack.config import StackConfig
from pystack.link.memory import FakeClock, MemoryWire
from pystack.stack import Stack
from pystack.tcp.state import State
from pystack.wire.ipv4 import addr_to_int

from ip6.stack_pair import A6, B6

A_IP = addr_to_int("192.0.2.2")
B_IP = addr_to_int("192.0.2.1")
C_IP = addr_to_int("192.0.2.3")
A_MAC = bytes.fromhex("020000000002")
B_MAC = bytes.fromhex("020000000001")


def make_pair(config: StackConfig | None = None, seed: int = 0, **wire_kw) -> tuple[Stack, Stack, MemoryWire]:
    """A and B configured and announced. Their random choices come from ``seed``: two pairs made with the
    same seed and the same calls put out the same frames (the fast-path twins rely on it)."""
    clock = FakeClock()
    a = Stack(A_MAC, config or StackConfig(), rng=random.Random(seed))
    b = Stack(B_MAC, config or StackConfig(), rng=random.Random(seed + 1))
    a.configure(A_IP, 24, B_IP, clock.now)
    b.configure(B_IP, 24, None, clock.now)
    wire = MemoryWire(a, b, clock=clock, **wire_kw)
    wire.run(duration=a.config.arp_announcements * a.config.arp_announce_interval)  # announcements go out
    return a, b, wire


def connected(a: Stack, b: Stack, wire: MemoryWire, port: int = 80, ipv6: bool = False) -> tuple:
    """A connection from A to a listener of B on ``port`` (from A6 to B6 with ``ipv6``), its handshake done
    on the wire: (A's connection, B's accepted one)."""
    tcp_a, tcp_b, a_ip, b_ip = (a.tcp6, b.tcp6, A6, B6) if ipv6 else (a.tcp, b.tcp, A_IP, B_IP)
    listener = tcp_b.listen(0, port, 8)
    client = tcp_a.connect(a_ip, b_ip, port, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    return client, listener.accept()


def transfer(sender, receiver, wire: MemoryWire, data: bytes,
             after_reading: Callable[[], None] | None = None) -> bytes:
    """Send ``data`` from connection ``sender`` and read it all at ``receiver``, running the wire in
    between (as fast as the connections and the fake clock allow); ``after_reading`` is called after each
    round of reads. What ``receiver`` read. Either family's connections, on any medium."""
    sent = 0
    got = bytearray()
    while len(got) < len(data):
        if sent < len(data):
            sent += sender.send(data[sent:], wire.clock.now)
        wire.run(until=lambda: receiver.readable)
        while receiver.recv_available:
            got += receiver.recv(1 << 20, wire.clock.now)
        if after_reading is not None:
            after_reading()
    return bytes(got)


def exchange_and_close(client, server, wire: MemoryWire) -> None:
    """A connection's life after its handshake: 300 kB from ``client`` arrive whole at ``server``, a reply
    comes back, ``client`` closes first and ``server`` after it; ``server`` ends CLOSED and ``client`` in
    TIME_WAIT (or CLOSED)."""
    assert server is not None and client.state == State.ESTABLISHED
    data = random.Random(1).randbytes(300_000)
    assert hashlib.sha256(transfer(client, server, wire, data)).digest() == hashlib.sha256(data).digest()
    server.send(b"thanks", wire.clock.now)
    wire.run(until=lambda: client.readable)
    assert client.recv(100, wire.clock.now) == b"thanks"
    client.close(wire.clock.now)
    wire.run(until=lambda: server.at_eof)
    server.close(wire.clock.now)
    wire.run(duration=1)
    assert server.state == State.CLOSED and client.state in (State.TIME_WAIT, State.CLOSED)


@pytest.fixture
def pair() -> tuple[Stack, Stack, MemoryWire]:
    return make_pair()
