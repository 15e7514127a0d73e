"""The TCP layer: demultiplexes segments to connections and listeners, answers closed ports with RST,
and aggregates the connections' timers. Sans-I/O in the shape of aioquic: the IP layer calls
``receive`` and ``handle_timer`` and asks ``get_timer``; finished segments leave through ``emit``.
"""

from __future__ import annotations

import errno
import os
import heapq
import itertools
import random
from pystack.counters import Counters
from pystack.ip.icmp_errno import icmp_errno
from pystack.ports import PortRange
from pystack.tcp.config import TcpConfig
from pystack.tcp.connection import Connection
from pystack.tcp.context import Confirm, Emit, SegmentPathFor, TcpContext
from pystack.tcp import events, syncookie, why
from pystack.tcp.isn import IsnGenerator
from pystack.tcp.listener import Listener
from pystack.tcp.seq import MASK, seq_in
from pystack.tcp.state import State
from pystack.wire import tcp as wire
from pystack.wire.errors import WireError
from pystack.wire.tcp import ACK, RST, SYN

_INF = float("inf")


def _timer_order(conn: Connection) -> tuple[float, tuple[int, int, int, int]]:
    return conn.deadline(), conn.key



class TcpLayer:
    """All TCP state of one stack.

    ``emit(src_ip, dst_ip, segment, now)`` receives finished segments (checksum filled) for the IP layer,
    with the time of the segment, timer or user call that sends them.
    ``mtu`` is the link MTU; the MSS we announce is at most ``mtu - 40``.
    """

    FAST_PATHS_DEFAULT = True
    """``fast_paths`` of a new layer (the stack then sets it from StackConfig.fast_paths)."""

    def __init__(
        self, config: TcpConfig, counters: Counters, emit: Emit, mtu: int = 1500,
        rng: random.Random | None = None, ephemeral: PortRange | None = None,
    ) -> None:
        self.config = config
        self.ephemeral = ephemeral if ephemeral is not None else PortRange()
        """Local ports for a socket that names none: the stack's ``StackConfig.ephemeral_ports``, shared with UDP."""
        self.counters = counters
        secret = config.isn_secret if config.isn_secret is not None else os.urandom(16)
        self.cx = TcpContext(config, counters, emit, mtu, rng if rng is not None else random.Random(),
                             IsnGenerator(secret, config.ts_offset_pairs), self._forget, self._forget_listener)
        """All that connections and listeners get of the layer (pystack.tcp.context)."""
        self.cx.fast_paths = self.FAST_PATHS_DEFAULT
        self.cookies = syncookie.SynCookies(secret, config)
        self.connections: dict[tuple[int, int, int, int], Connection] = {}
        # Timers: a heap of wake-up hints, never later than the connection's real deadline, so that
        # get_timer costs O(log n) with 10,000 idle connections. A connection that ran (input, timer or
        # user call) is "touched" (cx.touched); get_timer pushes a new hint only when its deadline moved
        # earlier. A hint that fires early (the deadline moved later) just re-schedules; stale hints
        # (no longer the connection's in _hints) are skipped.
        self._heap: list[tuple[float, int, Connection]] = []
        self._hints: dict[Connection, float] = {}
        self._heap_seq = itertools.count()
        self.listeners: dict[tuple[int, int], Listener] = {}
        self.bound: set[tuple[int, int]] = set()
        """(local address, port) of sockets bound but neither listening nor connected yet."""

    # ------------------------------------------------------------------ what the IP layer sets and reads

    @property
    def why(self) -> why.Why | None:
        return self.cx.why

    @why.setter
    def why(self, hook: why.Why | None) -> None:
        self.cx.why = hook

    @property
    def trace(self) -> events.Trace | None:
        """Told each connection event (pystack.tcp.events): ``--trace`` (pystack.trace)."""
        return self.cx.trace

    @trace.setter
    def trace(self, hook: events.Trace | None) -> None:
        self.cx.trace = hook

    @property
    def segment_path(self) -> SegmentPathFor | None:
        return self.cx.segment_path

    @segment_path.setter
    def segment_path(self, path_for: SegmentPathFor | None) -> None:
        self.cx.segment_path = path_for

    @property
    def confirm(self) -> Confirm | None:
        """Told of forward progress to a remote address (TcpContext.confirm)."""
        return self.cx.confirm

    @confirm.setter
    def confirm(self, confirm: Confirm | None) -> None:
        self.cx.confirm = confirm

    @property
    def gso_max(self) -> int:
        return self.cx.gso_max

    @gso_max.setter
    def gso_max(self, size: int) -> None:
        self.cx.gso_max = size

    @property
    def fast_paths(self) -> bool:
        """Take header prediction (RFC 9293 3.10.7.4's common case first)."""
        return self.cx.fast_paths

    @fast_paths.setter
    def fast_paths(self, on: bool) -> None:
        self.cx.fast_paths = on

    # ------------------------------------------------------------------ user side

    def listen(self, local_ip: int, port: int, backlog: int) -> Listener:
        """Listen on ``(local_ip, port)``; ``local_ip`` 0 means every address, ``port`` 0 an ephemeral one.
        OSError EADDRINUSE if a listener or a bound socket has that very pair (a listener on one address
        takes that address's segments before one on 0.0.0.0)."""
        if port == 0:
            port = self._ephemeral_port(local_ip, 0, 0)
        key = (local_ip, port)
        if key in self.listeners or key in self.bound or not 0 < port < 65536:
            raise OSError(errno.EADDRINUSE if key in self.listeners or key in self.bound else errno.EINVAL,
                          "cannot listen there")
        listener = Listener(self.cx, local_ip, port, backlog)
        self.listeners[(local_ip, port)] = listener
        return listener

    def bind(self, local_ip: int, port: int) -> int:
        """Reserve ``(local_ip, port)`` for a socket that will listen or connect from it (``port`` 0: an
        ephemeral one); returns the port. Release it with :meth:`unbind` before ``listen``/``connect``.
        As a socket's bind() on Linux: EADDRINUSE when a listener or bound socket has the port on an
        overlapping address (0.0.0.0 overlaps every address); unlike Linux, TIME-WAIT never holds a port."""
        if port == 0:
            port = self._ephemeral_port(local_ip, 0, 0)
        if not 0 < port < 65536:
            raise OSError(errno.EINVAL, "bad port")
        for ip, p in (*self.listeners, *self.bound):
            if p == port and (ip == local_ip or not ip or not local_ip):
                raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        self.bound.add((local_ip, port))
        return port

    def unbind(self, local_ip: int, port: int) -> None:
        self.bound.discard((local_ip, port))

    def connect(
        self, local_ip: int, remote_ip: int, remote_port: int, now: float, local_port: int | None = None,
    ) -> Connection:
        """Active open (RFC 9293 3.10.1): sends SYN at once and returns the connection in SYN-SENT."""
        self.cx.now = now
        if not 0 < remote_port < 65536:
            raise OSError(errno.EINVAL, "bad port")
        if local_port is None:
            local_port = self._ephemeral_port(local_ip, remote_ip, remote_port)
        elif (local_ip, local_port, remote_ip, remote_port) in self.connections:
            raise OSError(errno.EADDRINUSE, "4-tuple in use")
        conn = Connection(self.cx, local_ip, local_port, remote_ip, remote_port)
        self.connections[conn.key] = conn
        self.cx.touched.add(conn)
        self.counters["tcp.active_opens"] += 1
        conn.open_active(now)
        return conn

    def _ephemeral_port(self, local_ip: int, remote_ip: int, remote_port: int) -> int:
        port = self.ephemeral.pick(self.cx.rng, lambda port: (local_ip, port, remote_ip, remote_port) in self.connections
                                   or (local_ip, port) in self.listeners or (local_ip, port) in self.bound)
        if port is None:
            raise OSError(errno.EADDRNOTAVAIL, "no free ephemeral port")
        return port

    # ------------------------------------------------------------------ IP side

    def receive(self, src_ip: int, dst_ip: int, segment: bytes | memoryview, now: float,
                checksum_trusted: bool = False) -> None:
        """One IPv4 payload of protocol 6. Bad segments are dropped and counted, never raised.
        ``checksum_trusted``: the kernel built it in memory (a partial-checksum TAP frame)."""
        cx = self.cx
        cx.now = now
        counters = self.counters
        try:
            seg = wire.parse(segment, src_ip, dst_ip, not checksum_trusted)
        except WireError as exc:
            counters.drop(exc.reason)
            return
        counters["tcp.in_segments"] += 1
        conn = self.connections.get((dst_ip, seg.dst_port, src_ip, seg.src_port))
        if conn is not None:
            cx.touched.add(conn)
            if not conn.input(seg, now):
                return
            # A SYN for a TIME-WAIT 4-tuple: the old incarnation is gone, let a listener take it.
        listener = self.listeners.get((dst_ip, seg.dst_port)) or self.listeners.get((0, seg.dst_port))
        if listener is not None:
            self._listen_input(listener, seg, src_ip, dst_ip, now)
            return
        self._closed_input(seg, src_ip, dst_ip)

    def _listen_input(self, listener: Listener, seg: wire.TcpSegment, src_ip: int, dst_ip: int, now: float) -> None:
        """RFC 9293 3.10.7.2."""
        flags = seg.flags
        if flags & RST:
            self.counters.drop("tcp.listen_rst")
            return
        if flags & ACK:
            if not flags & SYN and self._cookie_ack(listener, seg, src_ip, dst_ip, now):
                return
            self.cx.send_rst(dst_ip, src_ip, seg.dst_port, seg.src_port, seg.ack, 0, RST, why.RST_LISTEN_ACK)
            self.counters.drop("tcp.listen_ack")
            return
        if not flags & SYN:
            self.counters.drop("tcp.listen_no_syn")
            return
        if not listener.can_take_syn():
            if self.config.syncookies and listener.has_room():
                self._send_cookie(listener, seg, src_ip, dst_ip, now)
                return
            self.counters.drop("tcp.listen_queue_full")
            return
        conn = Connection(self.cx, dst_ip, seg.dst_port, src_ip, seg.src_port, listener=listener)
        self.connections[conn.key] = conn
        self.cx.touched.add(conn)
        listener.add_half_open(conn)
        conn.open_passive(seg, now)

    def _send_cookie(self, listener: Listener, seg: wire.TcpSegment, src_ip: int, dst_ip: int, now: float) -> None:
        """The half-open queue is full: answer with a SYN cookie and keep nothing (RFC 4987 3.6)."""
        listener.cookie_time = now
        cookie, mss = self.cookies.make(dst_ip, seg.dst_port, src_ip, seg.src_port, seg.seq,
                                        seg.mss if seg.mss is not None else self.config.default_mss, now)
        mss = min(mss, self.cx.mtu - 40)
        self.counters["tcp.syncookies_sent"] += 1
        self.counters["tcp.out_segments"] += 1
        window = min(self.config.recv_buffer, 0xFFFF)
        cx = self.cx
        if cx.why is not None:
            cx.why((dst_ip, seg.dst_port, src_ip, seg.src_port), cookie, why.SYN_COOKIE, None)
        cx.emit(dst_ip, src_ip, wire.build(dst_ip, src_ip, seg.dst_port, seg.src_port, cookie,
                                           (seg.seq + 1) & MASK, SYN | ACK, window, wire.build_options(mss=mss)), now)

    def _cookie_ack(self, listener: Listener, seg: wire.TcpSegment, src_ip: int, dst_ip: int, now: float) -> bool:
        """An ACK to a listener that recently sent cookies: if it carries a valid one, the connection
        is born ESTABLISHED from it. Cookies are only checked within their lifetime of the last one sent."""
        if listener.cookie_time is None or now - listener.cookie_time > self.cookies.lifetime:
            return False
        if not listener.has_room():
            return False
        peer_isn = (seg.seq - 1) & MASK
        mss = self.cookies.check(dst_ip, seg.dst_port, src_ip, seg.src_port, peer_isn, (seg.ack - 1) & MASK, now)
        if mss is None:
            self.counters.drop("tcp.syncookie_invalid")
            return False
        self.counters["tcp.syncookies_accepted"] += 1
        conn = Connection(self.cx, dst_ip, seg.dst_port, src_ip, seg.src_port, listener=listener)
        self.connections[conn.key] = conn
        self.cx.touched.add(conn)
        conn.open_from_cookie(seg, mss, now)
        return True

    def _closed_input(self, seg: wire.TcpSegment, src_ip: int, dst_ip: int) -> None:
        """RFC 9293 3.10.7.1: no connection: answer anything but a RST with a RST."""
        flags = seg.flags
        self.counters.drop("tcp.no_socket")
        if flags & RST:
            return
        if flags & ACK:
            self.cx.send_rst(dst_ip, src_ip, seg.dst_port, seg.src_port, seg.ack, 0, RST)
        else:
            self.cx.send_rst(dst_ip, src_ip, seg.dst_port, seg.src_port, 0, (seg.seq + seg.seg_len) & MASK, RST | ACK)

    def icmp_error(
        self, icmp_type: int, icmp_code: int, local_ip: int, remote_ip: int,
        quoted: bytes | memoryview, now: float, next_hop_mtu: int = 0, err: int = 0,
    ) -> None:
        """An ICMP error about a segment we sent. ``quoted`` starts at the quoted TCP header (at least
        8 bytes: ports and sequence number). Type 3 code 4 with ``next_hop_mtu`` shrinks the segment size
        (RFC 1191); other unreachables abort a connection being opened (codes 2-4 hard, RFC 1122 4.2.3.9)
        and are otherwise kept as a soft error, as are time exceeded and parameter problem. The quoted
        sequence number must be in flight (RFC 5927 4.1). ``err``: the errno when the error came as
        ICMPv6 (pystack.ip.icmp_errno), else IPv4's for the type and code."""
        self.cx.now = now
        if len(quoted) < 8:
            self.counters.drop("tcp.icmp_short_quote")
            return
        local_port = int.from_bytes(quoted[0:2], "big")
        remote_port = int.from_bytes(quoted[2:4], "big")
        seq = int.from_bytes(quoted[4:8], "big")
        conn = self.connections.get((local_ip, local_port, remote_ip, remote_port))
        if conn is None:
            self.counters.drop("tcp.icmp_no_connection")
            return
        if not seq_in(seq, conn.snd_una, (conn.snd_max + 1) & MASK):
            self.counters.drop("tcp.icmp_bad_seq")
            return
        self.counters["tcp.icmp_errors"] += 1
        self.cx.touched.add(conn)
        if icmp_type == 3 and icmp_code == 4:
            if next_hop_mtu:
                conn.set_mtu(next_hop_mtu, now)
            return
        err = err or icmp_errno(icmp_type, icmp_code)
        if icmp_type == 3:
            conn.icmp_error(err, icmp_code in (2, 3, 4) or conn.state == State.SYN_SENT, now)
        elif icmp_type in (11, 12):  # time exceeded, parameter problem: soft errors (RFC 1122 4.2.3.9)
            conn.icmp_error(err, False, now)

    # ------------------------------------------------------------------ timers

    def begin_batch(self) -> None:
        self.cx.batching = True

    def end_batch(self, now: float) -> None:
        """Let each connection that took segments send what they allow and tell its user, once for the
        whole batch; then send the ACKs that the batch's in-order data earned (one per connection)."""
        cx = self.cx
        cx.batching = False
        if cx.deferred:
            deferred, cx.deferred = cx.deferred, {}
            for conn in deferred:
                conn.after_input(now)
        if cx.acks_owed:
            owed, cx.acks_owed = cx.acks_owed, {}
            for conn in owed:
                conn.send_owed_ack(now)

    def _schedule_touched(self) -> None:
        heap = self._heap
        hints = self._hints
        connections = self.connections
        touched = self.cx.touched
        for conn in touched:
            if connections.get(conn.key) is not conn:
                continue
            deadline = conn.deadline()
            if deadline < hints.get(conn, _INF):
                hints[conn] = deadline
                heapq.heappush(heap, (deadline, next(self._heap_seq), conn))
        touched.clear()

    def get_timer(self) -> float | None:
        """The earliest deadline of all connections (possibly a little early), or None."""
        if self.cx.touched:
            self._schedule_touched()
        heap = self._heap
        hints = self._hints
        while heap:
            when, _seq, conn = heap[0]
            if hints.get(conn) != when:
                heapq.heappop(heap)  # stale: a newer, earlier hint exists, or the connection is gone
                continue
            deadline = conn.deadline()
            if deadline == when:
                return when
            # The deadline moved later (an RTO restarted by an ACK, say): move the hint there.
            heapq.heappop(heap)
            if deadline != _INF:
                hints[conn] = deadline
                heapq.heappush(heap, (deadline, next(self._heap_seq), conn))
            else:
                del hints[conn]
        return None

    def handle_timer(self, now: float) -> None:
        cx = self.cx
        cx.now = now
        if cx.touched:
            self._schedule_touched()
        heap = self._heap
        hints = self._hints
        due = []
        while heap and heap[0][0] <= now:
            when, _seq, conn = heapq.heappop(heap)
            if hints.get(conn) != when:
                continue
            del hints[conn]
            if conn.deadline() <= now:
                due.append(conn)
            else:
                cx.touched.add(conn)  # the deadline moved later: schedule it again
        if len(due) > 1:
            # By deadline, then 4-tuple: the order a run gives is the order its replay gives (the heap's
            # ties follow a set of connections, whose order is their addresses in memory).
            due.sort(key=_timer_order)
        for conn in due:
            if conn.state != State.CLOSED:
                conn.on_timer(now)
            cx.touched.add(conn)

    # ------------------------------------------------------------------ internal

    def _forget(self, conn: Connection) -> None:
        """A connection closed (cx.forget): out of the tables and the timers."""
        if self.connections.get(conn.key) is conn:
            del self.connections[conn.key]
        self.cx.touched.discard(conn)
        self._hints.pop(conn, None)

    def _forget_listener(self, listener: Listener) -> None:
        key = (listener.local_ip, listener.local_port)
        if self.listeners.get(key) is listener:
            del self.listeners[key]
