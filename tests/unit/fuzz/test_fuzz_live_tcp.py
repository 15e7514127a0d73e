"""Garbage injected into a live TCP connection between two in-memory stacks: the connection that was
fine stays fine, and the transfer completes byte-exact both ways.

The garbage is what a correct TCP must reject, so any damage is pystack's fault, not the test's:
corrupted copies (one bit flipped: an Internet checksum always catches a single flip) and truncated
copies of the frames in flight, replays of older frames (old duplicates), off-path forgeries on the
connection's own 4-tuple with valid checksums (RST, SYN, FIN and data far outside the window, RFC
5961 section 3-5), in-window RSTs and SYNs that are not exact (they earn a challenge ACK), data in
the window but with an unacceptable ACK (RFC 5961 5.2), segments for other ports, and mutated
non-TCP frames of the recorded session. ARP is left out on purpose: a forged ARP reply may legally
redirect traffic (ARP has no authentication), which would test the lab, not the stack.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Any

import pytest

from pystack.tcp.state import State

from .corpus import A_IP, A_MAC, B_IP, B_MAC, corpus, examples, make_pair, tcp_transfer
from .mutate import ETH_LEN, PROTO_TCP, forge_tcp, ip_layout, mutate

HALF = 0x80000000
KINDS = ("corrupt", "truncated", "replay", "blind", "rst_in_window", "syn_in_window", "bad_ack_data",
         "other_port", "noise")


class Injector:
    """A MemoryWire fault hook: each real frame goes through, sometimes with garbage around it."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self.rng = rng
        self.rate = rate
        self.wire: Any = None
        self.conns: dict[int, Any] = {}  # sender index -> that side's Connection
        self.injected: Counter[str] = Counter()
        self.noise_seeds = [f for f in corpus() if f[12:14] == b"\x08\x00" and ip_layout(f) and ip_layout(f)[2] != PROTO_TCP]

    def connected(self, client: Any, server: Any) -> None:
        self.conns = {0: server, 1: client}  # stack 0 is A (the server), stack 1 is B (the client)

    def __call__(self, sender: int, frame: bytes) -> list[bytes]:
        out = [frame]
        if self.rng.random() < self.rate:
            for _ in range(self.rng.randint(1, 3)):
                garbage = self.garbage(sender, frame)
                if garbage is not None:
                    out.insert(self.rng.randrange(len(out) + 1), garbage)
        return out

    def garbage(self, sender: int, frame: bytes) -> bytes | None:
        rng = self.rng
        kind = rng.choice(KINDS)
        if kind in ("blind", "rst_in_window", "syn_in_window", "bad_ack_data", "other_port") and not self.conns:
            kind = "corrupt"
        made = getattr(self, kind)(sender, frame)
        if made is not None:
            self.injected[kind] += 1
        return made

    # -- the kinds

    def corrupt(self, _sender: int, frame: bytes) -> bytes | None:
        if len(frame) <= ETH_LEN:
            return None
        out = bytearray(frame)
        bit = self.rng.randrange(ETH_LEN * 8, len(out) * 8)
        out[bit // 8] ^= 0x80 >> (bit % 8)
        return bytes(out)

    def truncated(self, _sender: int, frame: bytes) -> bytes:
        return frame[:self.rng.randrange(len(frame))]

    def replay(self, sender: int, _frame: bytes) -> bytes | None:
        old = [f for _t, s, f in self.wire.log if s == sender]
        return self.rng.choice(old) if old else None

    def _forge(self, sender: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
        """A segment on the live 4-tuple, from ``sender``'s side to the other's, checksums right."""
        me, peer = self.conns[sender], self.conns[1 - sender]
        macs = (A_MAC, B_MAC) if sender == 0 else (B_MAC, A_MAC)
        return forge_tcp(macs[1], macs[0], me.local_ip, peer.local_ip, me.local_port, peer.local_port, seq, ack,
                         flags, self.rng.randrange(0x10000), payload)

    def blind(self, sender: int, _frame: bytes) -> bytes:
        """Off-path: the receiver's RCV.NXT is unknown, the guess lands half the space away."""
        victim = self.conns[1 - sender]
        seq = victim.rcv_nxt + HALF + self.rng.randrange(-(1 << 29), 1 << 29)
        flags = self.rng.choice((0x04, 0x14, 0x02, 0x12, 0x11, 0x18, 0x10, 0x01))
        payload = self.rng.randbytes(self.rng.randint(1, 1000)) if flags & 0x08 or self.rng.random() < 0.3 else b""
        return self._forge(sender, seq, self.rng.getrandbits(32), flags, payload)

    def _in_window(self, sender: int) -> int | None:
        """A sequence number inside the receiver's window that cannot be RCV.NXT when the forgery
        arrives: beyond everything the real sender has sent so far (frames already in flight may move
        RCV.NXT up to there, never past it), and short of the right edge of the window."""
        me, victim = self.conns[sender], self.conns[1 - sender]
        if victim.state == State.CLOSED:
            return None
        low = max(victim.rcv_nxt, me.snd_max) + 2
        room = (victim.rcv_adv - low) & 0xFFFFFFFF
        if room >= HALF or room < 2:
            return None
        return (low + self.rng.randrange(room - 1)) & 0xFFFFFFFF

    def rst_in_window(self, sender: int, _frame: bytes) -> bytes | None:
        seq = self._in_window(sender)
        return None if seq is None else self._forge(sender, seq, 0, 0x04)

    def syn_in_window(self, sender: int, _frame: bytes) -> bytes | None:
        seq = self._in_window(sender)
        return None if seq is None else self._forge(sender, seq, 0, 0x02)

    def bad_ack_data(self, sender: int, _frame: bytes) -> bytes | None:
        """In-window data whose ACK is too old or acknowledges data never sent (RFC 5961 5.2): it must be
        discarded, or its bytes end up in the stream and the SHA-256 check fails."""
        victim = self.conns[1 - sender]
        seq = self._in_window(sender)
        if seq is None:
            return None
        ack = victim.snd_una - (1 << 30) if self.rng.random() < 0.5 else victim.snd_max + (1 << 30)
        return self._forge(sender, seq, ack, 0x18, self.rng.randbytes(self.rng.randint(1, 500)))

    def other_port(self, sender: int, _frame: bytes) -> bytes:
        me, peer = self.conns[sender], self.conns[1 - sender]
        macs = (A_MAC, B_MAC) if sender == 0 else (B_MAC, A_MAC)
        sport = me.local_port ^ self.rng.randrange(1, 0x100)
        return forge_tcp(macs[1], macs[0], me.local_ip, peer.local_ip, sport, peer.local_port,
                         self.rng.getrandbits(32), self.rng.getrandbits(32), self.rng.choice((0x02, 0x10, 0x18, 0x04)),
                         payload=self.rng.randbytes(self.rng.randint(0, 100)))

    def noise(self, _sender: int, _frame: bytes) -> bytes | None:
        frame, _names = mutate(self.rng, self.rng.choice(self.noise_seeds), self.noise_seeds)
        layout = ip_layout(frame)
        if frame[12:14] == b"\x08\x06" or (layout and layout[2] == PROTO_TCP):
            return None  # the mutation turned it into ARP or TCP: see the module docstring
        return frame


@pytest.mark.parametrize("seed", range(3))
def test_live_connection_survives_garbage(seed: int) -> None:
    a, b, wire = make_pair(seed=seed)
    rng = random.Random(seed)
    injector = Injector(random.Random(1000 + seed), rate=0.4)
    injector.wire = wire
    wire.fault = injector
    up, down = rng.randbytes(examples(300_000)), rng.randbytes(examples(200_000))
    got_a, got_b, transfer = tcp_transfer(a, b, wire, up, down, on_connected=injector.connected)
    summary = f"seed {seed}, injected {dict(injector.injected)}"
    assert hashlib.sha256(got_a).digest() == hashlib.sha256(up).digest(), f"upload corrupted ({summary})"
    assert hashlib.sha256(got_b).digest() == hashlib.sha256(down).digest(), f"download corrupted ({summary})"
    assert transfer.client.error is None and transfer.server.error is None, summary
    assert transfer.server.state == State.CLOSED and transfer.client.state in (State.TIME_WAIT, State.CLOSED)
    for stack in (a, b):
        assert stack.counters["drop.internal_error"] == 0, summary
    drops = a.counters + b.counters
    assert set(injector.injected) == set(KINDS), f"not every kind was tried: {summary}"
    assert drops["drop.tcp.rst_out_of_window"] > 0 and drops["drop.tcp.out_of_window"] > 0, dict(drops)
    assert drops["tcp.challenge_acks"] + drops["drop.tcp.challenge_ack_limited"] > 0, dict(drops)
    assert drops["drop.tcp.bad_checksum"] + drops["drop.ipv4.bad_checksum"] > 0, dict(drops)


def test_forged_segments_alone_change_nothing() -> None:
    """Only off-path forgeries, many of them, into an idle established connection: afterwards both ends
    still agree on every sequence number and a last exchange works."""
    a, b, wire = make_pair()
    listener = a.tcp.listen(0, 80, 4)
    client = b.tcp.connect(B_IP, A_IP, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    server = listener.accept()
    injector = Injector(random.Random(5), rate=0.0)
    injector.connected(client, server)
    before = [(c.snd_una, c.snd_nxt, c.rcv_nxt) for c in (client, server)]
    for i in range(examples(3000)):
        sender = i % 2
        kind = injector.rng.choice(("blind", "rst_in_window", "syn_in_window", "bad_ack_data"))
        frame = getattr(injector, kind)(sender, b"")
        target = a if sender == 1 else b
        target.receive_frame(frame, wire.clock.now)
        wire.clock.now += 0.001
        wire.run(duration=0)  # answers (challenge ACKs) cross the wire like anything else
    wire.run(duration=1)
    assert [(c.snd_una, c.snd_nxt, c.rcv_nxt) for c in (client, server)] == before
    assert client.state == server.state == State.ESTABLISHED
    client.send(b"still here", wire.clock.now)
    wire.run(until=lambda: server.recv_available >= 10)
    assert server.recv(100, wire.clock.now) == b"still here"
    counters = a.counters + b.counters
    assert counters["drop.internal_error"] == 0 and counters["tcp.rst_received"] == 0
    assert counters["tcp.challenge_acks"] > 0
    print(f"forged {examples(3000)}: challenge ACKs {counters['tcp.challenge_acks']}, limited "
          f"{counters['drop.tcp.challenge_ack_limited']}, out of window {counters['drop.tcp.out_of_window']}, "
          f"RST out of window {counters['drop.tcp.rst_out_of_window']}")
