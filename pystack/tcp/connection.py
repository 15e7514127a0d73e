"""One TCP connection: the transmission control block and the RFC 9293 state machine, sans-I/O.

The connection never touches a clock or a socket. Segments come in through ``input`` (called by the
layer), the time through ``now`` arguments, and everything it sends goes out through its context's
``emit`` (pystack.tcp.context: all it gets of the layer). The user side (``send``, ``recv``, ``close``
...) mirrors a non-blocking socket; the layer's side (``input``, ``after_input``, ``on_timer``,
``deadline`` ...) is what the layer calls.

Sequence numbers follow RFC 9293 names (SND.UNA, SND.NXT, RCV.NXT ...). Two extra variables:
``snd_max`` is the highest sequence number ever sent (BSD's snd_max), so that after a timeout
SND.NXT can go back to SND.UNA (go-back-N) while late ACKs for the first transmission stay
acceptable; and ``rcv_adv`` is the right edge of the window we last advertised, which never moves
left (RFC 9293 3.8.6.2.2: do not shrink the window).

The send buffer holds the data from SND.UNA on (acked bytes are deleted from its front, which
CPython's bytearray does in O(1)); the FIN, when queued, sits just past its end.

This class holds the TCB, the user side and the receiving half of RFC 9293 3.10.7; the rest of the
connection's rules live beside it, as plain functions of it (pystack.tcp.handshake: opening and the
options; .sender: output, the ACK's processing, fast retransmit and recovery; .timers: what each timer
does) or as collaborators held in its slots (.timestamps, .recovery, .sendbuf, .recvbuf, .reassembly,
.rtt, .congestion).
"""

from __future__ import annotations

import errno
import math
from typing import TYPE_CHECKING, Callable

from pystack.tcp.congestion import ALGORITHMS
from pystack.tcp.recovery import Recovery
from pystack.tcp.recvbuf import ReceiveBuffer
from pystack.tcp.reassembly import NOTHING_HELD, Reassembly
from pystack.tcp.rtt import RttEstimator
from pystack.tcp.sendbuf import SendBuffer
from pystack.tcp.timestamps import Timestamps
from pystack.tcp.seq import MASK, seq_ge, seq_gt, seq_lt
from pystack.tcp import events, handshake, sender, timers, why
from pystack.tcp.state import OPEN, RECEIVING, SENDING, TRANSITIONS, State, TransitionError
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, FIN, PSH, RST, SYN

if TYPE_CHECKING:
    from pystack.tcp.config import TcpConfig
    from pystack.tcp.context import TcpContext
    from pystack.tcp.listener import Listener
    from pystack.wire.tcp import TcpSegment

CLOSED = State.CLOSED
LISTEN = State.LISTEN
SYN_SENT = State.SYN_SENT
SYN_RECEIVED = State.SYN_RECEIVED
ESTABLISHED = State.ESTABLISHED
FIN_WAIT_1 = State.FIN_WAIT_1
FIN_WAIT_2 = State.FIN_WAIT_2
CLOSE_WAIT = State.CLOSE_WAIT
CLOSING = State.CLOSING
LAST_ACK = State.LAST_ACK
TIME_WAIT = State.TIME_WAIT

INF = math.inf
_STATE_COUNTERS = {st: "tcp.state." + st.name for st in State}
"""Counter names made once: an Enum's .name is a property lookup, and states change on every connection."""
_MAX_SACK_BLOCKS = 4
"""SACK blocks a segment carries at most: 4 fill the 40 option bytes (RFC 2018 3), a protocol constant..."""
_MAX_SACK_BLOCKS_TS = 3
"""...and 3 beside the timestamp option's 12 bytes with its padding (RFC 2018 3)."""


class Connection:
    """A TCP connection. Create it with ``TcpLayer.connect`` or take it from ``Listener.accept``."""

    __slots__ = (
        "_cx", "_cfg", "local_ip", "local_port", "remote_ip", "remote_port", "key", "_listener",
        "_st", "error", "on_event", "_nodelay", "_keepalive", "_event",
        # send sequence space
        "iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1", "snd_wl2", "max_snd_wnd",
        "_snd", "_smss", "_peer_mss", "_mtu",
        # receive sequence space
        "irs", "rcv_nxt", "rcv_adv", "_rb", "_ooo", "_rcv_mss",
        "_last_ack_sent", "_ack_now", "_ack_at_once", "_dispatching", "_quickacks", "_data_at",
        # options
        "_snd_wscale", "_rcv_wscale", "_ts", "_sack_ok",
        # retransmission, congestion control, recovery
        "rtt", "cc", "_rtx_at", "_persist", "_persist_backoff", "_retries", "_rtt_seq", "_rtt_time",
        "_rec",
        # other timers
        "_delack_at", "_tw_at", "_ka_at", "_ka_probes",
        "_user_closed", "_soft_error", "stats", "_ws_ok", "_syn_time",
        "_probe_end", "_oow_ack_at", "_confirm_at",
    )

    def __init__(
        self, cx: TcpContext, local_ip: int, local_port: int, remote_ip: int, remote_port: int,
        listener: Listener | None = None,
    ) -> None:
        cfg = cx.config
        self._cx = cx
        """All this connection gets of its layer (pystack.tcp.context)."""
        self._cfg = cfg
        self.local_ip = local_ip
        self.local_port = local_port
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.key = (local_ip, local_port, remote_ip, remote_port)
        """The layer's key for it: (local IP, local port, remote IP, remote port)."""
        self._listener = listener
        self._st = CLOSED
        self.error: int | None = None
        self.on_event: Callable[[], None] | None = None
        self._nodelay = cfg.nodelay
        self._keepalive = cfg.keepalive
        self._event = False

        self.iss = 0
        self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_wnd = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self._snd = SendBuffer(cfg.send_buffer, cfg.send_buffer_max)
        self._mtu = cx.mtu
        self._peer_mss = cfg.default_mss
        self._smss = cfg.default_mss

        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self._rb = ReceiveBuffer(cfg.recv_buffer, 10 * self._adv_mss())
        self._ooo = NOTHING_HELD  # its own on the first segment out of order
        self._rcv_mss = min(self._adv_mss(), 536)
        self._last_ack_sent = 0
        self._ack_now = False
        self._ack_at_once = False
        """An ACK that must not wait for the end of a batch: one per segment that was out of order, filled a
        hole, or was unacceptable (old, outside the window, PAWS): each is a signal to the sender."""
        self._dispatching: float | None = None
        """The time of the event while on_event runs (None otherwise): an ACK the user's reads earn then
        waits for its reply, to ride on it; the callback reads the time as ``event_time``."""
        self._quickacks = 0
        """In-order data segments still to ACK at once (TcpConfig.quickacks; see _quick_ack)."""
        self._data_at = -INF
        """When in-order data last arrived."""

        self._snd_wscale = 0
        self._rcv_wscale = 0
        self._ts = Timestamps(cx.isn.ts_offset(local_ip, remote_ip))
        self._sack_ok = False

        self.rtt = RttEstimator(cfg.rto_initial, cfg.rto_min, cfg.rto_max, cfg.rto_min_on_variance)
        self.cc = ALGORITHMS[cfg.congestion_control](self._smss, cfg.initial_window_segments)
        self.cc.slow_start_limit = cfg.slow_start_limit
        self._rtx_at = INF
        self._persist = False
        self._persist_backoff = 0
        self._retries = 0
        self._rtt_seq: int | None = None
        self._rtt_time = 0.0
        self._rec = Recovery(cx.counters)

        self._delack_at = INF
        self._tw_at = INF
        self._ka_at = INF
        self._ka_probes = 0
        self._user_closed = False
        self._soft_error: int | None = None
        self.stats = {"retransmits": 0, "timeouts": 0, "fast_retransmits": 0}
        self._ws_ok = False
        self._syn_time = 0.0
        self._probe_end: int | None = None  # end of a zero-window probe byte the peer may have taken
        self._oow_ack_at = -INF  # when we last answered an unacceptable pure ACK (ACK-war guard)
        self._confirm_at = -INF
        """When an ACK of new data next tells the IP layer that the neighbour is reachable (TcpContext.confirm)."""

    # ------------------------------------------------------------------ user side

    @property
    def state(self) -> State:
        return self._st

    @property
    def readable(self) -> bool:
        """``recv`` would not raise BlockingIOError: data, EOF, an error, or the connection is gone."""
        return bool(self._rb.data) or self._rb.eof or self.error is not None or self._st == CLOSED

    @property
    def writable(self) -> bool:
        """``send`` would accept bytes or fail at once (an error, a shut write side, a dead connection)."""
        if self.error is not None or self._snd.fin or self._st == CLOSED:
            return True
        return self._st in (ESTABLISHED, CLOSE_WAIT) and self._snd.space() > 0

    @property
    def nodelay(self) -> bool:
        """True disables Nagle's algorithm (TCP_NODELAY); turning it on sends what Nagle held back."""
        return self._nodelay

    def set_nodelay(self, on: bool, now: float) -> None:
        """TCP_NODELAY at ``now``: turning it on sends what Nagle held back."""
        self._nodelay = bool(on)
        if on and self._st in SENDING:
            sender.output(self, now)

    @property
    def keepalive(self) -> bool:
        """SO_KEEPALIVE (RFC 1122 4.2.3.6); turning it on starts the idle timer at once."""
        return self._keepalive

    def set_keepalive(self, on: bool, now: float) -> None:
        """SO_KEEPALIVE at ``now``: the idle time counts from ``now``."""
        self._keepalive = bool(on)
        self._cx.touched.add(self)
        if on and self._st in OPEN:
            timers.restart_keepalive(self, now)
        elif not on:
            self._ka_at = INF

    @property
    def recv_available(self) -> int:
        return len(self._rb.data)

    @property
    def send_space(self) -> int:
        return self._snd.space()

    @property
    def unsent(self) -> int:
        """Bytes in the send buffer not yet acknowledged (sent or not)."""
        return len(self._snd)

    @property
    def at_eof(self) -> bool:
        """The peer's FIN has arrived and every byte before it has been read."""
        return self._rb.eof and not self._rb.data

    def send(self, data: bytes | bytearray | memoryview, now: float) -> int:
        """Queue as much of ``data`` as the send buffer takes and transmit what the windows allow.

        Data written before the handshake completes is held and sent once it does (RFC 9293 3.10.2).
        Raises the connection's error as OSError, BrokenPipeError after shutdown_write/close.
        """
        self._cx.touched.add(self)
        if self.error is not None:
            raise OSError(self.error, errno.errorcode.get(self.error, "error"))
        if self._snd.fin or self._st not in (SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT):
            raise BrokenPipeError(errno.EPIPE, "connection closed for sending")
        n = self._snd.write(data)
        if not n:
            return 0
        if self._st in (ESTABLISHED, CLOSE_WAIT):
            sender.output(self, now)
        self._flush_event(now)
        return n

    def recv(self, max_bytes: int, now: float) -> bytes:
        """Up to ``max_bytes`` of in-order data; b"" at EOF. Raises BlockingIOError when there is
        nothing yet, or the connection's error (ECONNRESET ...) as OSError once the data is drained."""
        self._cx.touched.add(self)
        rb = self._rb
        if rb.data:
            data = rb.read(max_bytes)
            cap_max = self._cfg.recv_buffer_max
            if rb.cap < cap_max:
                rb.autotune(now, self.rtt.srtt, self._adv_mss(), cap_max)
            self._window_update(now)
            return data
        if self._rb.eof:
            return b""
        if self.error is not None:
            raise OSError(self.error, errno.errorcode.get(self.error, "error"))
        if self._st == CLOSED:
            return b""
        raise BlockingIOError(errno.EAGAIN, "no data")

    def shutdown_write(self, now: float) -> None:
        """Send FIN after the queued data (half-close); receiving goes on (RFC 9293 3.10.4)."""
        self._cx.touched.add(self)
        st = self._st
        if self._snd.fin or st in (CLOSED, LISTEN):
            return
        if st == SYN_SENT:
            self._close_now()  # RFC 9293 3.10.4: delete the TCB
            return
        self._snd.fin = True
        if st == ESTABLISHED:
            self._set_state(FIN_WAIT_1)
        elif st == CLOSE_WAIT:
            self._set_state(LAST_ACK)  # RFC 9293 errata: CLOSE in CLOSE-WAIT leads to LAST-ACK
        # SYN_RECEIVED: the FIN goes out once the handshake completes (see _established)
        sender.output(self, now)
        self._flush_event(now)

    def close(self, now: float) -> None:
        """Done with the connection. Unread data makes it an abort (RST, RFC 2525 2.17, as Linux);
        otherwise a graceful FIN, and data arriving afterwards is answered with RST (as Linux)."""
        self._cx.touched.add(self)
        if self._st in (CLOSED, LISTEN):
            self._user_closed = True
            return
        self._user_closed = True
        if self._rb.data and self._st != SYN_SENT:
            self._cx.counters["tcp.close_with_unread_data"] += 1
            self.abort(now)
            return
        self.shutdown_write(now)
        if self._st == FIN_WAIT_2:
            timers.fin_wait_2_timeout(self, now)

    def abort(self, now: float) -> None:
        """Drop the connection at once, telling the peer with RST when synchronized (RFC 9293 3.10.5)."""
        self._cx.touched.add(self)
        self._user_closed = True
        if self._st == SYN_RECEIVED or self._st in OPEN:
            self._note(self.snd_max, why.RST_ABORT)
            self._emit(self.snd_max, RST | ACK, b"", now)
        self._close_now()
        self._flush_event(now)

    def peek(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of in-order data, left in the buffer (MSG_PEEK); otherwise as :meth:`recv`."""
        if self._rb.data:
            return bytes(self._rb.data[:max_bytes])
        if self._rb.eof or self._st == CLOSED and self.error is None:
            return b""
        if self.error is not None:
            raise OSError(self.error, errno.errorcode.get(self.error, "error"))
        raise BlockingIOError(errno.EAGAIN, "no data")

    def use_config(self, cfg: TcpConfig, now: float) -> None:
        """This connection's own options (setsockopt): ``cfg`` replaces the layer's for it. The send buffer
        takes its new size; the receive buffer too, but never below what it holds; keepalive restarts its
        idle time. The window scale stays what the SYN announced."""
        self._cfg = cfg
        self._snd.cap = cfg.send_buffer
        self._snd.cap_max = cfg.send_buffer_max
        self._rb.cap = max(cfg.recv_buffer, len(self._rb.data))
        if self._keepalive:
            self.set_keepalive(True, now)

    def info(self) -> dict[str, int | float | bool | str]:
        """What Linux's TCP_INFO tells, from this connection's state: sizes in bytes, times in seconds."""
        flight = (self.snd_max - self.snd_una) & MASK
        return {
            "state": self._st.name, "retransmits": self._retries, "in_recovery": self._rec.in_recovery,
            "rto": self.rtt.rto, "srtt": self.rtt.srtt or 0.0, "rttvar": self.rtt.rttvar,
            "snd_mss": self._smss, "rcv_mss": self._rcv_mss, "advmss": self._adv_mss(), "pmtu": self._mtu,
            "snd_wscale": self._snd_wscale, "rcv_wscale": self._rcv_wscale, "timestamps": self._ts.ok,
            "sack": self._sack_ok, "window_scaling": self._ws_ok, "cwnd": self.cc.cwnd,
            "ssthresh": self.cc.ssthresh, "unacked": flight, "snd_wnd": self.snd_wnd,
            "rcv_space": self._rb.cap, "total_retrans": self.stats["retransmits"],
        }

    def __repr__(self) -> str:
        return (
            f"<Connection {_ip(self.local_ip)}:{self.local_port} -> {_ip(self.remote_ip)}:{self.remote_port}"
            f" {self._st.name}>"
        )

    # ------------------------------------------------------------------ opening

    def _adv_mss(self) -> int:
        """The MSS we announce: configured, but never more than the MTU allows (RFC 9293 3.7.1)."""
        cfg_mss = self._cfg.mss
        limit = self._cx.mtu - 40
        return min(cfg_mss, limit) if cfg_mss else limit

    open_active = handshake.open_active
    open_passive = handshake.open_passive
    open_from_cookie = handshake.open_from_cookie

    def _update_smss(self) -> None:
        """Eff.snd.MSS (RFC 9293 3.7.1): the peer's MSS, our MTU and our configured MSS (TCP_MAXSEG bounds
        both directions, as in Linux and BSD), less the timestamp option we add."""
        mss = min(self._peer_mss, self._mtu - 40, self._cfg.mss or self._peer_mss) - (12 if self._ts.ok else 0)
        self._smss = max(mss, self._cfg.min_mss)
        self.cc.set_mss(self._smss)

    # ------------------------------------------------------------------ helpers

    def _set_state(self, st: State) -> None:
        """Every state change goes through here, and only those of RFC 9293 figure 5 (state.TRANSITIONS)."""
        old = self._st
        if st not in TRANSITIONS[old]:
            raise TransitionError(f"{old.name} -> {st.name} is not a transition of RFC 9293 figure 5")
        self._st = st
        self._event = True
        cx = self._cx
        cx.counters[_STATE_COUNTERS[st]] += 1
        if cx.trace is not None:
            cx.trace(cx.now, self, events.STATE, {"from": old.name, "to": st.name})
        if st == TIME_WAIT:
            cx.time_wait += 1
        if old == TIME_WAIT:
            cx.time_wait -= 1

    def _close_now(self) -> None:
        """Enter CLOSED and leave the layer's tables."""
        if self._st == CLOSED:
            return
        was_half_open = self._st in (SYN_RECEIVED, SYN_SENT)
        self._set_state(CLOSED)
        self._rtx_at = self._delack_at = self._tw_at = self._ka_at = self._rec.tlp_at = INF
        if was_half_open and self._listener is not None:
            self._listener.half_open_gone(self)
        self._cx.forget(self)

    def _fail(self, err: int) -> None:
        if self.error is None:
            self.error = err
        self._cx.counters["tcp.error." + errno.errorcode.get(err, str(err))] += 1
        self._close_now()

    @property
    def event_time(self) -> float | None:
        """While on_event runs, the time of what it is told of, for the calls it makes (sans-I/O: the time
        comes as a value, never from a clock); None outside it."""
        return self._dispatching

    def _flush_event(self, now: float) -> None:
        """Tell the user (on_event) what changed; an ACK the callback left owed goes out at ``now``."""
        if self._event:
            self._event = False
            cb = self.on_event
            if cb is not None:
                self._dispatching = now
                try:
                    cb()
                finally:
                    self._dispatching = None
                if self._ack_now and self._st not in (CLOSED, SYN_SENT):
                    self._send_ack(now)  # owed and not carried by a reply (see _window_update)

    deadline = timers.deadline
    on_timer = timers.on_timer

    # ------------------------------------------------------------------ segment output

    def _emit(self, seq: int, flags: int, payload: bytes | bytearray | memoryview, now: float) -> None:
        """Build and hand one segment to the IP layer, with ACK, window and options filled in."""
        ack, field, options = self._header_fields(flags, now)
        gso = len(payload) > self._smss  # the link cuts it and fills in each piece's checksum
        seg = wire.build(
            self.local_ip, self.remote_ip, self.local_port, self.remote_port, seq, ack, flags, field,
            options, payload, checksum=not gso,
        )
        self._cx.counters["tcp.out_segments"] += 1
        if gso:
            self._cx.emit(self.local_ip, self.remote_ip, seg, now, self._mss_now())
        else:
            self._cx.emit(self.local_ip, self.remote_ip, seg, now)

    def _header_fields(self, flags: int, now: float) -> tuple[int, int, bytes]:
        """(ACK number, window field, options) of a segment sent now, with their side effects: the
        advertised edge moves, and an ACK sent clears the pending ACK state."""
        rcv_nxt = self.rcv_nxt
        ws = self._rcv_wscale
        field = self._rb.offer((self.rcv_adv - rcv_nxt) & MASK, ws, self._smss)
        self.rcv_adv = (rcv_nxt + (field << ws)) & MASK
        ts = self._ts
        if ts.ok:
            options = wire.timestamp_option(ts.clock(now), ts.recent)
            if self._ooo and self._sack_ok:
                options = self._sack_option(options)
        else:
            options = self._sack_option(b"") if self._ooo and self._sack_ok else b""
        if not flags & ACK:
            ack = 0
        else:
            ack = rcv_nxt
            self._last_ack_sent = rcv_nxt
            self._ack_now = False
            self._ack_at_once = False
            self._delack_at = INF
        return ack, field, options

    def _mss_now(self) -> int:
        """Data bytes that fit one segment now: Eff.snd.MSS less the SACK blocks we are about to send
        (RFC 9293 3.7.1, RFC 6691: options come out of the data, so the datagram still fits the MTU)."""
        if not (self._ooo and self._sack_ok):
            return self._smss
        blocks = min(len(self._ooo.ranges(_MAX_SACK_BLOCKS)), _MAX_SACK_BLOCKS_TS if self._ts.ok else _MAX_SACK_BLOCKS)
        return max(self._smss - (4 + 8 * blocks if blocks else 0), self._cfg.min_mss)

    def _sack_option(self, prefix: bytes) -> bytes:
        """NOP NOP SACK with the held out-of-order blocks, converted back to sequence numbers."""
        limit = _MAX_SACK_BLOCKS_TS if prefix else _MAX_SACK_BLOCKS
        base_seq = self.rcv_nxt
        base_pos = self._rb.pos
        blocks = [
            ((base_seq + s - base_pos) & MASK, (base_seq + e - base_pos) & MASK)
            for s, e in self._ooo.ranges(limit)
        ]
        return prefix + wire.build_options(sack_blocks=blocks)

    def _send_ack(self, now: float, reason: str = why.ACK_NOW) -> None:
        # SND.MAX, not SND.NXT: after a timeout SND.NXT went back, and a pure ACK numbered below the
        # peer's RCV.NXT would be unacceptable and its acknowledgement ignored (BSD does the same).
        hook = self._cx.why
        if hook is not None:
            hook(self.key, self.snd_max, reason, self)
        self._emit(self.snd_max, ACK, b"", now)

    def _note(self, seq: int, reason: str) -> None:
        """Tell the layer's ``why`` hook (a pcapng capture listens) why the segment at ``seq`` goes out."""
        hook = self._cx.why
        if hook is not None:
            hook(self.key, seq, reason, self)

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 3.2/4.2/5.2 challenge ACK, rate-limited across the layer (RFC 5961 7)."""
        if self._cx.challenge_allowed(now):
            self._cx.counters["tcp.challenge_acks"] += 1
            self._send_ack(now, why.CHALLENGE_ACK)

    def _sent(self, seq: int, end: int, now: float, reason: str | None = None) -> None:
        """Record a segment just sent over [seq, end), its FIN included: the one place that moves SND.NXT
        and SND.MAX forward and counts retransmissions. One sent at SND.NXT moves SND.NXT to its end; one
        that starts below SND.MAX is a retransmission, and Karn's rule (RFC 6298 3) holds for both RTT
        clocks: no sample under way survives it, and echoes of TSvals sent before it are not used."""
        snd_max = self.snd_max
        if seq == snd_max:
            self.snd_max = end
        else:
            self.stats["retransmits"] += 1
            self._cx.counters["tcp.retransmits"] += 1
            self._rtt_seq = None
            self._ts.retransmitted(now)
            if seq_gt(end, snd_max):
                self.snd_max = end
        if seq == self.snd_nxt:
            self.snd_nxt = end
        hook = self._cx.why
        if hook is not None:  # ``reason`` None: _output's choice, new data or going back from SND.UNA
            if reason is None:
                if seq != snd_max:
                    reason = why.after_rto(self._retries)
                elif ((seq - self.snd_una) & MASK) == len(self._snd):
                    reason = why.FIN
                else:
                    rec = self._rec
                    reason = why.LIMITED_TRANSMIT if rec.dupacks and not rec.in_recovery else why.NEW_DATA
            hook(self.key, seq, reason, self)

    # ------------------------------------------------------------------ segment input

    def input(self, seg: TcpSegment, now: float) -> bool:
        """Process one segment (RFC 9293 3.10.7). Returns True when a SYN should go to a listener
        instead (a new connection reusing a TIME-WAIT 4-tuple, RFC 9293 3.10.7.4 / RFC 6191)."""
        st = self._st
        if st == SYN_SENT:
            handshake.input_syn_sent(self, seg, now)
        elif not (st == ESTABLISHED and self._cx.fast_paths and self._input_predicted(seg, now)):
            if self._input_synchronized(seg, now):
                return True
        if self._st != CLOSED and self._cx.batching:
            # More frames of the same read follow: send, ACK and tell the user once, at the end of the
            # batch (TcpLayer.end_batch), not once per segment. The ACKs of _ack_at_once still go now:
            # duplicate ACKs are signals to the sender, one per segment (RFC 5681 4.2, RFC 9293 3.10.7.4).
            if self._ack_at_once:
                self._send_ack(now, why.IMMEDIATE_ACK)
            self._cx.deferred[self] = None
            return False
        self.after_input(now)
        return False

    def _input_predicted(self, seg: TcpSegment, now: float) -> bool:
        """Header prediction (Van Jacobson's, as in BSD's tcp_input): the two segments a bulk transfer is
        made of, in-order data that acknowledges nothing new and a pure ACK of new data, taken in a few
        tests while nothing unusual is going on. Returns False, having changed nothing, for anything
        else, and the full RFC 9293 3.10.7.4 processing runs. What it skips cannot apply: the segment is
        exactly at RCV.NXT and inside the window (no trimming), carries only ACK (and PSH), passes PAWS,
        is newer than the last window update and opens no zero window, and no recovery, window probing,
        tail loss probe or reassembly is under way."""
        seq = seg.seq
        rec = self._rec
        if (seg.flags & ~PSH) != ACK or seq != self.rcv_nxt or seg.sack_blocks or self._ooo \
                or self.snd_nxt != self.snd_max or self._persist or rec.in_recovery or rec.dupacks \
                or rec.tlp_probe is not None:
            return False
        ts_val = seg.ts_val
        ts = self._ts
        if ts.ok and (ts_val is None or ((ts_val - ts.recent) & MASK) >= 0x80000000):
            return False  # no timestamp, or an older one (RFC 7323 5.3 PAWS): the full checks decide
        payload = seg.payload
        plen = len(payload)
        ack = seg.ack
        una = self.snd_una
        if plen:
            if ack != una or self._user_closed:
                return False
            wnd = (self.rcv_adv - seq) & MASK
            if wnd > 0x40000000 or plen > wnd:
                return False
            acked = 0
        else:
            acked = (ack - una) & MASK
            if acked == 0 or acked >= 0x80000000 or seq_gt(ack, self.snd_max):
                return False
        wl1 = self.snd_wl1
        if not (seq_lt(wl1, seq) or (wl1 == seq and seq_ge(ack, self.snd_wl2))):
            return False  # an older segment than the last window update (RFC 9293 3.10.7.4)
        win = seg.window << self._snd_wscale
        if win == 0:
            return False  # a closing window: the full path starts the persist timer's logic
        if ts_val is not None and not seq_gt(seq, self._last_ack_sent):  # RFC 7323 4.3: Timestamps.remember
            ts.recent = ts_val
            ts.recent_age = now
        if win != self.snd_wnd and self._cx.trace is not None:
            self._cx.trace(now, self, events.WINDOW, {"from": self.snd_wnd, "to": win})
        self.snd_wnd = win
        self.snd_wl1 = seq
        self.snd_wl2 = ack
        if win > self.max_snd_wnd:
            self.max_snd_wnd = win
        if plen:
            self._receive(seq, payload, 0, now)
        else:
            sender.ack_new(self, ack, acked, seg, now)
        if self._keepalive:
            timers.restart_keepalive(self, now)
        return True

    def send_owed_ack(self, now: float) -> None:
        """The end of a batch: one stretch ACK for the in-order data it brought, unless one went since."""
        if self._st != CLOSED and self._last_ack_sent != self.rcv_nxt:
            self._send_ack(now, why.STRETCH_ACK)

    def after_input(self, now: float) -> None:
        """What follows received segments: tell the user, then send what the windows allow and ACK.
        The user goes first so that its reply (or its FIN, after the peer's) carries the ACK."""
        self._flush_event(now)
        if self._st != CLOSED:
            sender.output(self, now)
            if self._ack_now:
                self._send_ack(now)
            elif self._delack_at == INF and self._last_ack_sent != self.rcv_nxt and self._st != SYN_SENT:
                self._delack_at = now + self._cfg.ack_delay

    def _input_synchronized(self, seg: TcpSegment, now: float) -> bool:
        """RFC 9293 3.10.7.4 for SYN-RECEIVED and the synchronized states, its steps in order."""
        flags = seg.flags
        payload = seg.payload
        seq = seg.seq
        plen = len(payload)
        ts = self._ts
        ts_val = seg.ts_val if ts.ok else None
        if ts_val is not None and not flags & RST and \
                ts.paws_rejects(seg, ts_val, now, self.rcv_nxt, self.snd_una, self.rtt.rto):
            self._cx.counters.drop("tcp.paws")
            self._ack_now = self._ack_at_once = True  # dropped, and ACKed (RFC 7323 5.3)
            return False
        if flags & SYN:
            verdict = handshake.syn_when_synchronized(self, seg, now)
            if verdict is not None:
                return verdict

        # 1. Sequence number check (four cases).
        rcv_nxt = self.rcv_nxt
        wnd = (self.rcv_adv - rcv_nxt) & MASK
        if wnd > 0x40000000:
            wnd = 0
        seg_len = plen + (flags & SYN and 1) + (flags & FIN)
        if seg_len == 0:
            ok = seq == rcv_nxt if wnd == 0 else ((seq - rcv_nxt) & MASK) < wnd
        elif wnd == 0:
            ok = False
        else:
            ok = ((seq - rcv_nxt) & MASK) < wnd or ((seq + seg_len - 1 - rcv_nxt) & MASK) < wnd
        if not ok:
            if not self._unacceptable(seg, seg_len, wnd, now):
                return False
            payload = payload[:0]  # a zero window: the ACK (of a window probe) is taken, the data not
            plen = 0
            flags &= ~(FIN | SYN | PSH)

        # 2. RST (RFC 5961 3.2: only an exact match resets; otherwise challenge).
        if flags & RST:
            self._rst_received(seq, now)
            return False

        # RFC 7323 4.3: the peer's timestamp is remembered if this segment covers Last.ACK.sent (below,
        # once its ACK is found acceptable).
        if ts_val is not None and seq_gt(seq, self._last_ack_sent):
            ts_val = None
        if seq != rcv_nxt or plen > wnd:
            seq, payload, flags = self._trim(seq, payload, flags, wnd)
            plen = len(payload)

        # 4. SYN handled above. 5. ACK.
        if not flags & ACK:
            self._cx.counters.drop("tcp.no_ack")
            return False
        if self._st == SYN_RECEIVED and not handshake.handshake_acked(self, seg, seq, now):
            return False
        if not sender.process_ack(self, seg, seq, now):
            return False  # its timestamp too: a blind ACK of unsent data must not raise TS.Recent for PAWS
        if ts_val is not None:
            ts.remember(ts_val, now)
        if self._st == CLOSED:
            return False

        # 7. Segment text (and 8. FIN).
        if plen or flags & FIN:
            self._segment_text(seq, payload, flags & FIN, now)
        if self._keepalive and self._st in OPEN:
            timers.restart_keepalive(self, now)
        return False

    def _unacceptable(self, seg: TcpSegment, seg_len: int, wnd: int, now: float) -> bool:
        """A segment that fails the sequence number check: dropped, and ACKed unless a RST (RFC 9293
        3.10.7.4). True for the one kind whose ACK is still taken: at RCV.NXT while our window is zero."""
        counters = self._cx.counters
        flags = seg.flags
        if flags & RST:
            counters.drop("tcp.rst_out_of_window")
            return False
        if wnd == 0 and seg.seq == self.rcv_nxt and flags & ACK:
            counters.drop("tcp.zero_window_data")
            self._ack_now = self._ack_at_once = True
            return True
        counters.drop("tcp.out_of_window")
        if self._st == TIME_WAIT and flags & FIN:
            timers.restart_time_wait(self, now)  # a repeated FIN restarts 2 MSL
        if seg_len or now - self._oow_ack_at >= self._cfg.oow_ack_interval:
            # Answer, but a pure ACK at most every oow_ack_interval: two ends that each find the
            # other's ACKs unacceptable would otherwise ACK each other forever (as Linux).
            self._oow_ack_at = now
            self._ack_now = self._ack_at_once = True
        else:
            counters.drop("tcp.oow_ack_limited")
        return False

    def _rst_received(self, seq: int, now: float) -> None:
        """An acceptable RST: only one exactly at RCV.NXT resets; any other is challenged (RFC 5961 3.2)."""
        if seq != self.rcv_nxt:
            self._challenge_ack(now)
            return
        self._cx.counters["tcp.rst_received"] += 1
        st = self._st
        if st == SYN_RECEIVED and self._listener is not None:
            self._close_now()  # passive open: back to LISTEN, i.e. just forget it
        elif st == SYN_RECEIVED:
            self._fail(errno.ECONNREFUSED)
        elif st in OPEN:
            self._fail(errno.ECONNRESET)
        else:  # CLOSING, LAST_ACK, TIME_WAIT
            self._close_now()

    def _trim(self, seq: int, payload: memoryview, flags: int, wnd: int) -> tuple[int, memoryview, int]:
        """Cut what lies before RCV.NXT (already received) and past the window: (seq, payload, flags)."""
        rcv_nxt = self.rcv_nxt
        plen = len(payload)
        if seq != rcv_nxt and plen + (flags & FIN):
            d = (rcv_nxt - seq) & MASK
            if d < 0x80000000:
                if flags & SYN:
                    flags &= ~SYN
                    d -= 1
                    seq = (seq + 1) & MASK
                if d >= plen:
                    if d > plen:
                        flags &= ~FIN
                    payload = payload[:0]
                else:
                    payload = payload[d:]
                plen = len(payload)
                seq = rcv_nxt
        off = (seq - rcv_nxt) & MASK
        if off + plen > wnd:
            payload = payload[:max(wnd - off, 0)]
            flags &= ~FIN
        return seq, payload, flags

    def _segment_text(self, seq: int, payload: memoryview, fin: int, now: float) -> None:
        """RFC 9293 3.10.7.4 seventh and eighth steps, after the ACK was taken."""
        st = self._st
        if st in RECEIVING:
            if payload and self._user_closed:
                # Nobody will read this: reset, as Linux does for data after close().
                self._cx.counters.drop("tcp.data_after_close")
                self._note(self.snd_max, why.RST_DATA_AFTER_CLOSE)
                self._emit(self.snd_max, RST | ACK, b"", now)
                self._fail(errno.ECONNRESET)
                return
            self._receive(seq, payload, fin, now)
        elif fin and st == TIME_WAIT:
            self._ack_now = self._ack_at_once = True
            timers.restart_time_wait(self, now)

    def _quick_ack(self, now: float) -> bool:
        """Whether in-order data arriving now is ACKed at once in quick-ACK mode (TcpConfig.quickacks):
        the mode starts with the first data of a connection and again after a silence longer than an RTO."""
        if now - self._data_at > self.rtt.rto:
            self._quickacks = self._cfg.quickacks
        self._data_at = now
        if self._quickacks > 0:
            self._quickacks -= 1
            return True
        return False

    def _receive(self, seq: int, payload: memoryview, fin: int, now: float) -> None:
        """Deliver in-order data (and what it makes contiguous) or hold it out of order."""
        plen = len(payload)
        ooo = self._ooo
        rb = self._rb
        if seq == self.rcv_nxt:
            fin_now = bool(fin)
            if plen:
                rb.data += payload
                self.rcv_nxt = (self.rcv_nxt + plen) & MASK
                rb.pos += plen
                if plen > self._rcv_mss:
                    # At most the MSS we announced: a longer segment is a GRO super-frame of several, and
                    # RFC 5681 4.2 counts full-sized segments, not frames.
                    self._rcv_mss = min(plen, self._adv_mss())
                self._event = True
            if ooo:
                while True:
                    more = ooo.pop_ready(rb.pos)
                    if more is None:
                        break
                    rb.data += more
                    self.rcv_nxt = (self.rcv_nxt + len(more)) & MASK
                    rb.pos += len(more)
                self._ack_now = self._ack_at_once = True  # RFC 5681 4.2: ACK at once when a hole is (partly) filled
            if ooo.fin_pos is not None and ooo.fin_pos == rb.pos and not ooo:
                fin_now = True
            quick = bool(plen) and self._quick_ack(now)
            if fin_now:
                self._fin_received(now)
            elif quick or not self._cfg.delayed_ack or ((self.rcv_nxt - self._last_ack_sent) & MASK) >= 2 * self._rcv_mss:
                # RFC 5681 4.2: at least every second full-sized segment. While the link hands over a
                # batch of frames, one ACK at the end covers them all (a stretch ACK, as GRO gives Linux).
                if self._cx.batching:
                    self._cx.acks_owed[self] = None
                else:
                    self._ack_now = True
        else:
            pos = rb.pos + ((seq - self.rcv_nxt) & MASK)
            if ooo is NOTHING_HELD:
                ooo = self._ooo = Reassembly(self._cfg.ooo_max_segments)
            if plen and not ooo.add(pos, payload):
                self._cx.counters.drop("tcp.ooo_queue_full")
            if fin:
                ooo.fin_pos = pos + plen
            self._cx.counters["tcp.out_of_order"] += 1
            self._ack_now = self._ack_at_once = True  # RFC 5681 4.2: immediate duplicate ACK for out-of-order data

    def _fin_received(self, now: float) -> None:
        """RFC 9293 3.10.7.4 eighth step."""
        self.rcv_nxt = (self.rcv_nxt + 1) & MASK
        self._rb.eof = True
        self._ack_now = True
        self._event = True
        st = self._st
        if st in (SYN_RECEIVED, ESTABLISHED):
            self._set_state(CLOSE_WAIT)
        elif st == FIN_WAIT_1:
            if self._snd.fin_acked:
                timers.enter_time_wait(self, now)
            else:
                self._set_state(CLOSING)
        elif st == FIN_WAIT_2:
            timers.enter_time_wait(self, now)

    def _window_update(self, now: float) -> None:
        """After the user reads: tell a peer facing a small window that it opened (as Linux's
        tcp_cleanup_rbuf: when the new window is at least double what it has left)."""
        if self._st not in RECEIVING:
            return
        if self._rb.opened((self.rcv_adv - self.rcv_nxt) & MASK, self._rcv_wscale, self._smss):
            if self._dispatching is not None:
                self._ack_now = True  # sent when the user's handler returns, on its reply if it makes one
            else:
                self._send_ack(now, why.WINDOW_UPDATE)

    # ------------------------------------------------------------------ ICMP

    def icmp_error(self, err: int, hard: bool, now: float) -> None:
        """RFC 1122 4.2.3.9 / RFC 5461: hard errors abort a connection being opened; otherwise the
        error is remembered and reported if the connection later times out."""
        if hard and self._st in (SYN_SENT, SYN_RECEIVED):
            self._fail(err)
            self._flush_event(now)
        else:
            self._soft_error = err

    def set_mtu(self, mtu: int, now: float) -> None:
        """Path MTU shrank (RFC 1191): shrink segments and resend what is outstanding."""
        if mtu >= self._mtu or mtu < 68:
            return
        self._mtu = mtu
        self._update_smss()
        if self._st in SENDING and self.snd_una != self.snd_max:
            self.snd_nxt = self.snd_una
            self._rtt_seq = None
            sender.output(self, now)


def _ip(addr: int) -> str:
    return ".".join(str((addr >> s) & 0xFF) for s in (24, 16, 8, 0))
