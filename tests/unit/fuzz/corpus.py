"""The fuzzers' seed corpus: a pcap of a short, real session between two in-memory stacks.

Mutating frames that pystack itself produced gets the fuzzer past the first checks (lengths,
versions, checksums once fixed up) into the parts of the code that only well-formed traffic
reaches: reassembly, ICMP errors, the TCP state machine with every option pystack negotiates.
The session is written to a pcap with ``PcapWriter`` and read back with dpkt, so the corpus is
literally "our own pcap"; ``PYSTACK_FUZZ_PCAP`` (paths separated by ``:``) adds more captures,
for example one taken with ``pystack run --pcap`` against the kernel.
"""

from __future__ import annotations

import functools
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import dpkt

from pystack.apps.udp_echo import UdpEcho
from pystack.config import StackConfig
from pystack.link.memory import FakeClock, MemoryWire
from pystack.link.pcap import PcapWriter
from pystack.stack import Stack
from pystack.tcp.state import State
from pystack.wire import icmp, ipv4

A_IP = ipv4.addr_to_int("192.0.2.2")  # the stack under test ("pystack")
B_IP = ipv4.addr_to_int("192.0.2.1")  # its peer ("the kernel")
A_MAC = bytes.fromhex("020000000002")
B_MAC = bytes.fromhex("020000000001")
HTTP_PORT = 80


def make_pair(config: StackConfig | None = None, seed: int = 7) -> tuple[Stack, Stack, MemoryWire]:
    """A (192.0.2.2) and B (192.0.2.1) on an in-memory wire, addresses announced, time at 1004 s."""
    rng = random.Random(seed)  # IP idents and ports: keep the corpus repeatable
    clock = FakeClock()
    a = Stack(A_MAC, config or StackConfig(), rng=rng)
    b = Stack(B_MAC, config or StackConfig(), rng=rng)
    a.configure(A_IP, 24, B_IP, clock.now)
    b.configure(B_IP, 24, None, clock.now)
    wire = MemoryWire(a, b, clock=clock)
    wire.run(duration=a.config.arp_announcements * a.config.arp_announce_interval)
    return a, b, wire


@dataclass
class Transfer:
    """A TCP connection B -> A (B connects, as the kernel does to pystack) and both ends' bytes."""

    client: object
    server: object
    up: bytes
    down: bytes


def tcp_transfer(a: Stack, b: Stack, wire: MemoryWire, up: bytes, down: bytes, port: int = HTTP_PORT,
                 close: bool = True, on_connected: Callable[[Any, Any], None] | None = None,
                 ) -> tuple[bytes, bytes, Transfer]:
    """B connects to A, sends ``up`` while A sends ``down``, then both close (when ``close``).
    ``on_connected(client, server)`` is called once the handshake is done.

    Returns what A received and what B received; raises AssertionError with the states if the
    transfer stalls (nothing left to happen on the wire before the bytes arrived).
    """
    listener = a.tcp.listeners.get((0, port)) or a.tcp.listen(0, port, 16)
    client = b.tcp.connect(B_IP, A_IP, port, wire.clock.now)
    wire.run(until=lambda: listener.readable or client.error is not None, limit=300)
    server = listener.accept()
    assert server is not None, f"handshake failed: client {client.state} error {client.error}"
    if on_connected is not None:
        on_connected(client, server)
    got_a, got_b = bytearray(), bytearray()
    sent_up = sent_down = 0
    deadline = wire.clock.now + 600  # fake seconds: far beyond any retransmission backoff that still works
    idle = 0  # passes in a row in which neither bytes nor the fake clock moved
    while len(got_a) < len(up) or len(got_b) < len(down):
        before = (len(got_a), len(got_b), sent_up, sent_down, wire.clock.now)
        now = wire.clock.now
        if sent_up < len(up):
            sent_up += client.send(up[sent_up:sent_up + 65536], now)
        if sent_down < len(down):
            sent_down += server.send(down[sent_down:sent_down + 65536], now)
        more_up, more_down = sent_up < len(up), sent_down < len(down)
        # Run until there is something to read, or room for what is left to send; when neither can
        # happen at this instant, run() moves the fake clock on to the next timer (a retransmission).
        wire.run(until=lambda: server.recv_available or client.recv_available
                 or (more_up and client.send_space) or (more_down and server.send_space), limit=30)
        while server.recv_available:
            got_a += server.recv(1 << 20, wire.clock.now)
        while client.recv_available:
            got_b += client.recv(1 << 20, wire.clock.now)
        idle = idle + 1 if before == (len(got_a), len(got_b), sent_up, sent_down, wire.clock.now) else 0
        if wire.clock.now > deadline or idle > 100 or client.error or server.error:
            raise AssertionError(f"transfer stalled: client {client.state}/{client.error}, server "
                                 f"{server.state}/{server.error}, got {len(got_a)}/{len(up)} up, "
                                 f"{len(got_b)}/{len(down)} down")
    transfer = Transfer(client, server, up, down)
    if close:
        client.close(wire.clock.now)
        wire.run(until=lambda: server.at_eof or server.error is not None, limit=300)
        server.close(wire.clock.now)
        wire.run(until=lambda: server.state == State.CLOSED and client.state in (State.TIME_WAIT, State.CLOSED),
                 limit=300)
    return bytes(got_a), bytes(got_b), transfer


def record_session(seed: int = 7) -> list[bytes]:
    """Every frame of a short session: ARP, pings of three sizes (one fragmented) both ways, UDP echo
    (one datagram fragmented), UDP to a closed port (ICMP port unreachable), a TCP transfer both ways
    with some loss (so SACK blocks and retransmissions appear) and a graceful close, a connection
    refused with RST, and an abort."""
    a, b, wire = make_pair(seed=seed)
    rng = random.Random(seed)
    UdpEcho(a)
    now = wire.clock.now
    for size in (56, 1472, 4000):
        b.send_ip(A_IP, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x1234_0001, bytes(size)), now)
        a.send_ip(B_IP, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x4321_0001, bytes(size)), now)
        wire.run(duration=0.1)
    udp = b.udp.bind(0, 0)
    for size in (0, 5, 512, 3000):
        udp.sendto(rng.randbytes(size), (A_IP, 7), wire.clock.now)
        udp.sendto(b"closed port", (A_IP, 9999), wire.clock.now)
        wire.run(duration=0.1)
    dropped = {"n": 0}

    def lossy(_sender: int, frame: bytes) -> list[bytes]:
        if len(frame) > 1000:
            dropped["n"] += 1
            if dropped["n"] % 29 == 0:
                return []
        return [frame]

    wire.fault = lossy
    tcp_transfer(a, b, wire, rng.randbytes(120_000), rng.randbytes(60_000))
    wire.fault = None
    refused = b.tcp.connect(B_IP, A_IP, 81, wire.clock.now)
    wire.run(until=lambda: refused.error is not None, limit=30)
    _, _, aborted = tcp_transfer(a, b, wire, b"GET / HTTP/1.0\r\n\r\n", b"partial", close=False)
    aborted.client.abort(wire.clock.now)
    wire.run(duration=1)
    return [frame for _t, _sender, frame in wire.log]


def write_pcap(frames: list[bytes], path: Path) -> None:
    writer = PcapWriter(str(path))
    for i, frame in enumerate(frames):
        writer.write(frame, timestamp_ns=1_000_000_000 * 1000 + i * 1000)
    writer.close()


def read_pcap(path: Path) -> list[bytes]:
    """Frames of a pcap (micro- or nanosecond), read with dpkt: an independent reader of our writer."""
    with open(path, "rb") as fh:
        return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(fh)]


@functools.lru_cache(maxsize=None)
def corpus() -> tuple[bytes, ...]:
    """The recorded session, through a pcap file and back, plus any captures in PYSTACK_FUZZ_PCAP."""
    with tempfile.TemporaryDirectory(prefix="pystack-fuzz-") as tmp:
        path = Path(tmp) / "session.pcap"
        frames = record_session()
        write_pcap(frames, path)
        loaded = read_pcap(path)
    assert loaded == frames, "the pcap did not round-trip"
    for extra in filter(None, os.environ.get("PYSTACK_FUZZ_PCAP", "").split(":")):
        loaded += read_pcap(Path(extra))
    return tuple(loaded)


def examples(default: int) -> int:
    """How many examples a fuzz test runs: ``default``, scaled by PYSTACK_FUZZ_EXAMPLES (the number of
    hypothesis examples; the main suite's default is 100)."""
    wanted = int(os.environ.get("PYSTACK_FUZZ_EXAMPLES", "100"))
    return max(1, default * wanted // 100)
