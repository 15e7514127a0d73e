"""A connection's timers (RFC 9293 3.8, RFC 6298, RFC 8985 7, RFC 1122 4.2.3.6): when each is due, and
what each does when it fires.

Their deadlines are slots of the Connection (``_rtx_at``, ``_delack_at``, ``_tw_at``, ``_ka_at``; the tail
loss probe's ``Recovery.tlp_at``), as its per-segment paths set and clear them; these functions are the
Connection's own, kept apart from its segment processing: they read and write its TCB as its methods do.
``deadline`` and ``on_timer`` are its methods (``Connection.deadline = deadline``), what the layer calls.

The retransmission timer's slot serves the persist timer too (``_persist`` says which runs: RFC 9293
3.8.6.1 probes only while nothing is in flight), and the TIME-WAIT timer's slot the FIN-WAIT-2 bound.
"""

from __future__ import annotations

import errno
import math
from typing import TYPE_CHECKING

from pystack.tcp import events, handshake, sender, why
from pystack.tcp.seq import MASK
from pystack.tcp.state import OPEN, SENDING, State
from pystack.wire.tcp import ACK, FIN, PSH

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection

INF = math.inf
CLOSED = State.CLOSED
SYN_SENT = State.SYN_SENT
SYN_RECEIVED = State.SYN_RECEIVED
FIN_WAIT_2 = State.FIN_WAIT_2
TIME_WAIT = State.TIME_WAIT


def deadline(conn: Connection) -> float:
    """When the connection's next timer is due (INF: none); the layer calls ``on_timer`` then."""
    return min(conn._rtx_at, conn._delack_at, conn._tw_at, conn._ka_at, conn._rec.tlp_at)


def on_timer(conn: Connection, now: float) -> None:
    """Whatever of its timers is due at ``now`` (the layer calls it at ``deadline()``)."""
    if conn._tw_at <= now:
        conn._tw_at = INF
        if conn._st in (TIME_WAIT, FIN_WAIT_2):
            conn._close_now()
            conn._flush_event(now)
            return
    if conn._delack_at <= now:
        conn._delack_at = INF
        if conn._st not in (CLOSED, SYN_SENT):
            conn._send_ack(now, why.DELAYED_ACK)
    tlp_at = conn._rec.tlp_at
    if tlp_at <= now:
        conn._rec.tlp_at = INF
        if conn._rtx_at >= tlp_at:  # also when both are due (tlp_at_rto): the probe, which re-arms the RTO
            send_tlp(conn, now)
    if conn._rtx_at <= now:
        conn._rtx_at = INF
        if conn._persist:
            on_persist(conn, now)
        else:
            on_rto(conn, now)
    if conn._ka_at <= now:
        on_keepalive(conn, now)
    conn._flush_event(now)


def on_rto(conn: Connection, now: float) -> None:
    """RFC 6298 5.4-5.7 and RFC 5681 3.1 (loss window), go-back-N from SND.UNA."""
    st = conn._st
    cfg = conn._cfg
    conn._retries += 1
    conn.stats["timeouts"] += 1
    conn._cx.counters["tcp.timeouts"] += 1
    trace = conn._cx.trace
    if trace is not None:
        trace(now, conn, events.RTO, {"retries": conn._retries, "rto": conn.rtt.rto, "snd_una": conn.snd_una,
                                      "flight": (conn.snd_max - conn.snd_una) & MASK})
    if st in (SYN_SENT, SYN_RECEIVED):
        limit = cfg.syn_retries if st == SYN_SENT else cfg.synack_retries
        if conn._retries > limit:
            if st == SYN_RECEIVED and conn._listener is not None:
                conn._cx.counters.drop("tcp.synack_timeout")
                conn._close_now()
            else:
                conn._fail(conn._soft_error or errno.ETIMEDOUT)
            return
        conn.rtt.backoff()
        handshake.send_syn(conn, now)
        conn._rtx_at = now + conn.rtt.rto
        return
    if st not in SENDING or conn.snd_una == conn.snd_max:
        return
    if conn._retries > cfg.max_retries:
        conn._fail(errno.ETIMEDOUT)
        return
    flight = (conn.snd_max - conn.snd_una) & MASK
    conn.cc.on_timeout(flight, now)
    conn._rec.on_timeout(conn.snd_max)
    sender.trace_congestion(conn, now, "rto")
    conn._rtt_seq = None  # Karn
    conn.rtt.backoff()
    conn.snd_nxt = conn.snd_una
    sender.output(conn, now)
    if conn._rtx_at == INF:
        conn._rtx_at = now + conn.rtt.rto


def on_persist(conn: Connection, now: float) -> None:
    """Zero-window probe, or the SWS-avoidance override for a small window (RFC 9293 3.8.6)."""
    if conn._st not in SENDING:
        conn._persist = False
        return
    buf = conn._snd.view()
    off = (conn.snd_nxt - conn.snd_una) & MASK
    if conn.snd_wnd == 0:
        conn._retries += 1
        if conn._retries > conn._cfg.max_retries:
            conn._fail(errno.ETIMEDOUT)
            return
        conn._cx.counters["tcp.window_probes"] += 1
        new_byte = off < len(buf) and not conn._cfg.window_probe_empty
        conn._note(conn.snd_nxt if new_byte else (conn.snd_una - 1) & MASK, why.WINDOW_PROBE)
        if new_byte:
            # One byte of new data (RFC 9293 3.8.6.1). SND.NXT and SND.MAX stay, so our other
            # segments keep sequence numbers the peer accepts; an ACK for the byte is still taken.
            conn._emit(conn.snd_nxt, ACK, buf[off:off + 1], now)
            conn._probe_end = (conn.snd_nxt + 1) & MASK
        else:
            # An old sequence number and no data (Linux's form; the only one when just a FIN waits):
            # the peer answers with an ACK carrying its window, and nothing is sent beyond SND.MAX.
            conn._emit((conn.snd_una - 1) & MASK, ACK, b"", now)
        conn._persist_backoff = min(conn._persist_backoff + 1, 16)
        start_persist(conn, now)
        return
    # Window open but too small for SWS avoidance: send what fits now (the override timeout).
    conn._persist = False
    n = min(conn.snd_wnd - off, len(buf) - off, conn._mss_now())
    if n > 0:
        end = off + n
        flags = ACK | PSH if end == len(buf) else ACK
        seq = conn.snd_nxt
        conn._emit(seq, flags, buf[off:end], now)
        conn._sent(seq, (seq + n) & MASK, now)
        conn._rtx_at = now + conn.rtt.rto
    else:
        sender.output(conn, now)


def start_persist(conn: Connection, now: float) -> None:
    """Nothing in flight but data held back by the peer's window: probe later (RFC 9293 3.8.6.1),
    or, for a small non-zero window, send despite SWS avoidance then (its override timeout)."""
    interval = min(max(conn.rtt.rto, conn._cfg.rto_min) * (1 << conn._persist_backoff), conn._cfg.persist_max)
    conn._persist = True
    conn._rtx_at = now + interval


def on_keepalive(conn: Connection, now: float) -> None:
    """RFC 1122 4.2.3.6: an ACK for SND.UNA-1 makes the peer answer with its current ACK."""
    cfg = conn._cfg
    if not conn._keepalive or conn._st not in OPEN:
        conn._ka_at = INF
        return
    if conn._ka_probes >= cfg.keepalive_probes:
        conn._fail(errno.ETIMEDOUT)
        return
    conn._ka_probes += 1
    conn._cx.counters["tcp.keepalive_probes"] += 1
    conn._note((conn.snd_una - 1) & MASK, why.keepalive(conn._ka_probes))
    conn._emit((conn.snd_una - 1) & MASK, ACK, b"", now)
    conn._ka_at = now + cfg.keepalive_interval


def restart_keepalive(conn: Connection, now: float) -> None:
    """The idle time before the first keepalive probe starts again: at each segment received in an open
    state, at the handshake's end, and when keepalive is turned on (RFC 1122 4.2.3.6)."""
    conn._ka_at = now + conn._cfg.keepalive_idle
    conn._ka_probes = 0


def schedule_tlp(conn: Connection, now: float) -> None:
    """Arm the tail loss probe (Recovery.schedule_tlp) while data is in flight in a sending state."""
    cfg = conn._cfg
    flight = (conn.snd_max - conn.snd_una) & MASK
    if conn._persist or not cfg.tail_loss_probe or conn._st not in SENDING:
        flight = 0
    conn._rec.schedule_tlp(now, conn.rtt.srtt, flight, conn._smss, conn._rtx_at, cfg)


def send_tlp(conn: Connection, now: float) -> None:
    """RFC 8985 7.3: the one probe of an episode, as Recovery.probe chooses it. None while the peer's
    window holds data back (``_window_bound``): a receiver whose reader is slow holds the ACK of a
    flight that fills its window, as that ACK would not open it (Linux waits for its delayed-ACK
    timer, tens of ms, past a PTO of 10 ms on a fast path), so the probe would only resend what
    arrived. The window, not a loss, keeps the data back; a real loss there is the RTO's, and once
    the window shows zero, the persist timer's (RFC 9293 3.8.6.1). Older Linux had the same rule
    (no probe while cwnd had room and data waited)."""
    rec = conn._rec
    if (rec.tlp_out or rec.in_recovery or conn._persist or conn.snd_una == conn.snd_max
            or conn._st not in SENDING or _window_bound(conn)):
        return
    buf = conn._snd.view()
    buflen = len(buf)
    una = conn.snd_una
    max_off = (conn.snd_max - una) & MASK
    probe = rec.probe(una, (conn.snd_nxt - una) & MASK, max_off, buflen, conn.snd_wnd, conn._mss_now(),
                      conn._sack_ok, conn._cfg.tlp_new_data)
    if probe is None:
        return
    start, end, new = probe
    if new:
        flags = ACK | PSH | FIN if end == buflen and conn._snd.fin else ACK | PSH if end == buflen else ACK
    else:  # the FIN went out after these bytes: send it again with them
        flags = ACK | PSH | FIN if max_off > buflen and end == buflen else ACK | PSH
        if start == end:
            flags = ACK | FIN  # the FIN alone
    seq = (una + start) & MASK
    conn._emit(seq, flags, buf[start:end], now)
    conn._sent(seq, (seq + end - start + (flags & FIN)) & MASK, now, why.TLP_NEW if new else why.TLP_RETRANSMISSION)
    conn._rtx_at = now + conn.rtt.rto  # RFC 8985 7.3: the RTO re-armed after the probe, the last resort


def _window_bound(conn: Connection) -> bool:
    """Whether data waits that the peer's window holds back: what it leaves past SND.NXT is less than
    the next segment needs (nothing, or a bit that SWS avoidance holds, RFC 9293 3.8.6.2.1)."""
    off = (conn.snd_nxt - conn.snd_una) & MASK
    waiting = len(conn._snd) - off
    return waiting > 0 and off + min(waiting, conn._mss_now()) > conn.snd_wnd


def enter_time_wait(conn: Connection, now: float) -> None:
    """Both FINs are acknowledged: wait 2 MSL (RFC 9293 3.4.2), unless ``TcpConfig.max_time_wait``
    connections already do, in which case this one closes at once after its last ACK (as Linux)."""
    cx = conn._cx
    conn._rtx_at = INF
    conn._ka_at = INF
    if cx.time_wait >= conn._cfg.max_time_wait:
        cx.counters["tcp.time_wait_overflow"] += 1
        conn._ack_now = False
        conn._send_ack(now)
        conn._close_now()
        return
    conn._set_state(TIME_WAIT)
    conn._delack_at = INF
    restart_time_wait(conn, now)


def restart_time_wait(conn: Connection, now: float) -> None:
    """2 MSL from now: on entering TIME-WAIT, and at each FIN the peer repeats (RFC 9293 3.10.7.4)."""
    conn._tw_at = now + conn._cfg.time_wait


def fin_wait_2_timeout(conn: Connection, now: float) -> None:
    """A connection the user closed waits in FIN-WAIT-2 for the peer's FIN at most
    ``TcpConfig.fin_wait2_timeout`` (as Linux's tcp_fin_timeout): RFC 9293 sets no bound, and an orphan
    nobody reads would otherwise stay for as long as the peer keeps its side open."""
    conn._tw_at = now + conn._cfg.fin_wait2_timeout
