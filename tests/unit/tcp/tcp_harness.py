"""Two TcpLayers wired together in memory: a fake clock and a fake network.

The network delivers each emitted segment to the other layer after ``delay`` seconds, optionally
losing, duplicating, reordering (extra random delay) or corrupting it, all from a seeded RNG so a
failing case replays exactly. ``run`` advances the clock event by event: the next delivery or the
earliest TCP timer, whichever comes first. Every segment is logged (parsed) for assertions.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Callable

from pystack.counters import Counters
from pystack.tcp import TcpConfig, TcpLayer
from pystack.tcp.seq import seq_gt, seq_lt
from pystack.wire import tcp as wire

IP_A = 0xC0000201  # 192.0.2.1
IP_B = 0xC0000202  # 192.0.2.2


@dataclass
class Impairment:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_extra: float = 0.05
    corrupt: float = 0.0


@dataclass
class Sent:
    time: float
    src: int
    dst: int
    raw: bytes
    seg: wire.TcpSegment = field(repr=False)

    @property
    def flags(self) -> int:
        return self.seg.flags


class Net:
    def __init__(
        self, cfg_a: TcpConfig | None = None, cfg_b: TcpConfig | None = None, *, seed: int = 1,
        delay: float = 0.01, impair: Impairment | None = None, mtu: int = 1500, start: float = 1000.0,
    ) -> None:
        self.now = start
        self.delay = delay
        self.impair = impair or Impairment()
        self.rng = random.Random(seed)
        self.counters_a = Counters()
        self.counters_b = Counters()
        self.a = TcpLayer(cfg_a or TcpConfig(), self.counters_a, self._emitter(IP_A), mtu=mtu, rng=random.Random(seed + 1))
        self.b = TcpLayer(cfg_b or TcpConfig(), self.counters_b, self._emitter(IP_B), mtu=mtu, rng=random.Random(seed + 2))
        self._queue: list[tuple[float, int, int, int, bytes]] = []
        self._n = 0
        self.log: list[Sent] = []
        self.drop_filter: Callable[[Sent], bool] | None = None  # True drops a segment (deterministic loss)
        self.hold = False  # when True, segments are logged and kept in ``held`` instead of delivered
        self.held: list[Sent] = []
        self.invariants = True

    def _emitter(self, ip: int):
        def emit(src: int, dst: int, segment: bytes, _now: float) -> None:
            assert src == ip
            self._send(src, dst, segment)
        return emit

    def _send(self, src: int, dst: int, raw: bytes) -> None:
        assert isinstance(raw, (bytes, bytearray))
        sent = Sent(self.now, src, dst, bytes(raw), wire.parse(raw, src, dst))
        self.log.append(sent)
        if self.hold:
            self.held.append(sent)
            return
        if self.drop_filter is not None and self.drop_filter(sent):
            return
        imp = self.impair
        rng = self.rng
        if imp.loss and rng.random() < imp.loss:
            return
        copies = 2 if imp.duplicate and rng.random() < imp.duplicate else 1
        for _ in range(copies):
            data = bytearray(raw)
            if imp.corrupt and rng.random() < imp.corrupt:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            extra = rng.random() * imp.reorder_extra if imp.reorder and rng.random() < imp.reorder else 0.0
            self.deliver_at(self.now + self.delay + extra, src, dst, bytes(data))

    def deliver_at(self, when: float, src: int, dst: int, raw: bytes) -> None:
        self._n += 1
        heapq.heappush(self._queue, (when, self._n, src, dst, raw))

    def inject(self, src: int, dst: int, raw: bytes) -> None:
        """Hand a segment to the receiving layer right now."""
        (self.b if dst == IP_B else self.a).receive(src, dst, memoryview(raw), self.now)

    def next_event(self) -> float | None:
        times = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times) if times else None

    def check_invariants(self) -> None:
        """Sequence-space invariants between the two ends of every connection pair."""
        for conn in self.a.connections.values():
            peer = self.b.connections.get((conn.remote_ip, conn.remote_port, conn.local_ip, conn.local_port))
            for x, y in ((conn, peer), (peer, conn)):
                if x is None or y is None or not (x.state.synchronized and y.state.synchronized):
                    continue
                # the receiver never got beyond what the sender sent (a zero-window probe byte
                # counts once the ACK for it arrives), nor fell behind what the sender saw acked
                sent = x.snd_max
                if x._probe_end is not None and seq_gt(x._probe_end, sent):
                    sent = x._probe_end
                assert not seq_gt(y.rcv_nxt, sent), (x, y, x.snd_max, y.rcv_nxt)
                assert not seq_lt(y.rcv_nxt, x.snd_una), (x, y, x.snd_una, y.rcv_nxt)
                assert x.unsent <= x._snd.cap
                assert len(x._snd.data) <= 2 * x._snd.cap  # acknowledged bytes kept in front: at most as many
                assert len(y._rb.data) <= y._rb.cap + (1 << y._rcv_wscale)

    def step(self) -> bool:
        if self.invariants:
            self.check_invariants()
        t = self.next_event()
        if t is None:
            return False
        self.now = max(self.now, t)
        if self._queue and self._queue[0][0] <= self.now:
            _, _, src, dst, raw = heapq.heappop(self._queue)
            (self.b if dst == IP_B else self.a).receive(src, dst, memoryview(raw), self.now)
        else:
            for layer in (self.a, self.b):
                t2 = layer.get_timer()
                if t2 is not None and t2 <= self.now:
                    layer.handle_timer(self.now)
        return True

    def run(self, until: float | None = None, for_: float | None = None, max_steps: int = 1_000_000,
            stop: Callable[[], bool] | None = None) -> None:
        """Process events until none is left, ``until``/``for_`` seconds pass, or ``stop()`` is true."""
        if for_ is not None:
            until = self.now + for_
        for _ in range(max_steps):
            if stop is not None and stop():
                return
            t = self.next_event()
            if t is None or (until is not None and t > until):
                if until is not None:
                    self.now = max(self.now, until)
                return
            self.step()
        raise AssertionError("too many steps")

    def advance(self, seconds: float) -> None:
        self.run(for_=seconds)

    def segments(self, src: int | None = None, since: int = 0) -> list[Sent]:
        return [s for s in self.log[since:] if src is None or s.src == src]


def pump(net: Net, conn, data: bytes, sink: bytearray, reader, chunk: int = 65536, until: float = 1e9) -> None:
    """Send all of ``data`` through ``conn`` while ``reader`` drains into ``sink``."""
    sent = 0
    for _ in range(10_000_000):
        if sent < len(data) and conn.writable:
            sent += conn.send(data[sent:sent + chunk], net.now)
        drain(reader, sink)
        if sent == len(data):
            return
        if not net.step() or net.now > until:
            raise AssertionError(f"stalled at {sent}/{len(data)}")


def drain(conn, sink: bytearray, max_bytes: int = 1 << 20) -> None:
    while conn.recv_available:
        sink += conn.recv(max_bytes, conn._cx.now)


LOCAL_PORT = 80
PEER_PORT = 40000


class Solo:
    """One layer under test (at IP_B); the test plays the peer (IP_A) segment by segment, smoltcp style."""

    def __init__(self, cfg: TcpConfig | None = None, mtu: int = 1500, now: float = 1000.0) -> None:
        self.now = now
        self.counters = Counters()
        self.out: list[wire.TcpSegment] = []
        self.layer = TcpLayer(cfg or TcpConfig(), self.counters, self._emit, mtu=mtu, rng=random.Random(7))

    def _emit(self, src: int, dst: int, raw: bytes, _now: float) -> None:
        assert (src, dst) == (IP_B, IP_A)
        self.out.append(wire.parse(raw, src, dst))

    def send(self, seq: int, ack: int, flags: int, window: int = 65535, payload: bytes = b"",
             options: bytes = b"", sport: int = PEER_PORT, dport: int = LOCAL_PORT) -> None:
        raw = wire.build(IP_A, IP_B, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, window, options, payload)
        self.layer.receive(IP_A, IP_B, memoryview(raw), self.now)

    def take(self) -> list[wire.TcpSegment]:
        out, self.out = self.out, []
        return out

    def one(self) -> wire.TcpSegment:
        out = self.take()
        assert len(out) == 1, out
        return out[0]

    def none(self) -> None:
        out = self.take()
        assert out == [], out

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer that falls due on the way, at its own time."""
        end = self.now + seconds
        while True:
            t = self.layer.get_timer()
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            self.layer.handle_timer(self.now)
        self.now = end

    def advance_to_next_timer(self) -> float:
        t = self.layer.get_timer()
        assert t is not None
        self.now = max(self.now, t)
        self.layer.handle_timer(self.now)
        return self.now


def flags_str(seg: wire.TcpSegment) -> str:
    return "".join(n for bit, n in ((wire.SYN, "S"), (wire.FIN, "F"), (wire.RST, "R"), (wire.PSH, "P"), (wire.ACK, "A")) if seg.flags & bit)
