"""What a connection or listener gets from its layer: an explicit context, in the shape of smoltcp's
``cx`` (the interface's inner state handed to each socket), instead of the layer's private fields.

The layer owns one TcpContext and hands it to every Connection and Listener it makes. It holds the
environment they read (configuration, counters, the clock of the call being handled, the RNG, the ISN
generator, the MTU, the way out) and the few things they may do to the layer: ask to be scheduled, send
and notify at the end of a batch, owe a stretch ACK, be forgotten, spend the challenge-ACK budget,
count TIME-WAIT. Nothing else of the layer (its tables, its timer heap) is reachable from them.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable

from pystack.counters import Counters
from pystack.tcp import events, why
from pystack.tcp.config import TcpConfig
from pystack.tcp.isn import IsnGenerator
from pystack.wire import tcp as wire

if TYPE_CHECKING:
    from pystack.ip.tcp_path import TcpPath
    from pystack.tcp.connection import Connection
    from pystack.tcp.listener import Listener

Emit = Callable[..., None]
"""``emit(src_ip, dst_ip, segment, now)``, or ``emit(src_ip, dst_ip, segment, now, gso_size)`` for a segment
larger than the MSS that the link is to cut into ``gso_size`` pieces (only when ``gso_max`` is set). ``now``
is the time of the segment, timer or user call that sends it."""
SegmentPathFor = Callable[[int, int, int, int, float], "TcpPath | None"]
"""``segment_path(src_ip, dst_ip, src_port, dst_port, now)``: a TcpPath, or None for the layered way."""
Confirm = Callable[[int, float], float]
"""``confirm(remote_ip, now)``: packets to ``remote_ip`` arrive; returns how many seconds that proof holds."""
CONFIRM_SPACING = 0.25
"""A connection tells ``confirm`` at most once per this fraction of what its last call said the proof holds:
a neighbour entry then lapses at most that much early after the last ACK of new data, and an ACK costs a
comparison, not a route and a table lookup (Linux spaces them by a clock tick instead)."""


class TcpContext:
    __slots__ = (
        "config", "counters", "rng", "isn", "emit", "why", "trace", "segment_path", "confirm", "mtu", "gso_max",
        "fast_paths",
        "now", "batching", "touched", "deferred", "acks_owed", "time_wait", "forget", "forget_listener",
        "_challenge_second", "_challenge_count",
    )

    def __init__(
        self, config: TcpConfig, counters: Counters, emit: Emit, mtu: int, rng: random.Random,
        isn: IsnGenerator, forget: Callable[[Connection], None], forget_listener: Callable[[Listener], None],
    ) -> None:
        self.config = config
        self.counters = counters
        self.rng = rng
        self.isn = isn
        self.emit = emit
        self.why: why.Why | None = None
        """Told why each segment is sent, where TCP decides it (pystack.tcp.why), when someone listens: a
        pcapng capture's comments (pystack.reasons). None costs a test per segment."""
        self.trace: events.Trace | None = None
        """Told each connection event (pystack.tcp.events) when someone listens: ``--trace FILE.jsonl``
        (pystack.trace). None costs a test per event."""
        self.segment_path: SegmentPathFor | None = None
        """Set by the IP layer: a one-pack path for a burst of one connection's data segments (see
        pystack.ip.tcp_path). Without it (a bare TCP layer in tests) every segment goes through ``emit``."""
        self.confirm: Confirm | None = None
        """Set by the IP layer whose neighbour cache wants it (IPv6's: pystack.iface.tcp6): told a
        connection's remote address when an ACK acknowledges new data, the forward progress RFC 4861 7.3.1
        takes as proof the next hop is reachable (Linux's tcp_ack confirms the neighbour so, for ARP's
        entries and ND's alike). Each connection tells it again only after CONFIRM_SPACING of the time it
        returns (sender.ack_new)."""
        self.mtu = mtu
        self.gso_max = 0
        """Largest segment payload to build when the link segments for us (TSO); 0 = one MSS."""
        self.fast_paths = True
        """Take header prediction (RFC 9293 3.10.7.4's common case first); the stack sets it from
        StackConfig.fast_paths."""
        self.now = 0.0
        """The time of the segment, timer or user call the layer is handling."""
        self.batching = False
        """True while the IP layer delivers a batch of frames read at once (see TcpLayer.end_batch)."""
        self.touched: set[Connection] = set()
        """Connections that ran (input, timer, user call): the layer looks at their deadlines again."""
        self.deferred: dict[Connection, None] = {}
        """Connections that took segments in this batch: they send and notify at its end."""
        self.acks_owed: dict[Connection, None] = {}
        """Connections whose in-order data of this batch earned an ACK: one each, at its end."""
        self.time_wait = 0
        """Connections in TIME-WAIT now (bounded by TcpConfig.max_time_wait)."""
        self.forget = forget
        """Take a closed connection out of the layer's tables and timers."""
        self.forget_listener = forget_listener
        self._challenge_second = -1
        self._challenge_count = 0

    def challenge_allowed(self, now: float) -> bool:
        """RFC 5961 7: at most ``challenge_ack_limit`` challenge ACKs per second, across the layer."""
        second = int(now)
        if second != self._challenge_second:
            self._challenge_second = second
            self._challenge_count = 0
        if self._challenge_count >= self.config.challenge_ack_limit:
            self.counters.drop("tcp.challenge_ack_limited")
            return False
        self._challenge_count += 1
        return True

    def send_rst(self, local_ip: int, remote_ip: int, local_port: int, remote_port: int, seq: int, ack: int,
                 flags: int, reason: str = why.RST_CLOSED_PORT) -> None:
        """A RST that belongs to no connection's sequence space (RFC 9293 3.10.7.1-3)."""
        if self.why is not None:
            self.why((local_ip, local_port, remote_ip, remote_port), seq, reason, None)
        self.counters["tcp.rst_sent"] += 1
        self.counters["tcp.out_segments"] += 1
        segment = wire.build(local_ip, remote_ip, local_port, remote_port, seq, ack, flags, 0)
        self.emit(local_ip, remote_ip, segment, self.now)  # it answers the segment being handled: its time
