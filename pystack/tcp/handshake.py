"""Opening a connection (RFC 9293 3.5, 3.10.1, 3.10.7.2-3): the three-way handshake, its retransmitted
SYNs, and the options both SYNs agree on (MSS, window scale, SACK-permitted, timestamps; RFC 9293 3.7.1,
RFC 7323, RFC 2018).

These functions are the Connection's own, kept apart from its data transfer: they read and write its TCB
as its methods do. ``open_active``, ``open_passive`` and ``open_from_cookie`` are its methods, what the
layer calls; the others are called from its segment processing (``input_syn_sent``, ``handshake_acked``,
``syn_when_synchronized``) and its retransmission timer (``send_syn``).
"""

from __future__ import annotations

import errno
import math
from typing import TYPE_CHECKING

from pystack.tcp import timers, why
from pystack.tcp.seq import MASK, seq_gt
from pystack.tcp.state import State
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, FIN, RST, SYN

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection
    from pystack.wire.tcp import TcpSegment

INF = math.inf
SYN_SENT = State.SYN_SENT
SYN_RECEIVED = State.SYN_RECEIVED
ESTABLISHED = State.ESTABLISHED
FIN_WAIT_1 = State.FIN_WAIT_1
TIME_WAIT = State.TIME_WAIT


def open_active(conn: Connection, now: float) -> None:
    """Active OPEN (RFC 9293 3.10.1): the SYN goes out."""
    cfg = conn._cfg
    _start_sequence(conn, now)
    conn._rcv_wscale = _choose_rcv_wscale(conn) if cfg.window_scaling else 0
    conn._set_state(SYN_SENT)
    conn._syn_time = now
    send_syn(conn, now)
    conn._rtx_at = now + conn.rtt.rto


def open_passive(conn: Connection, seg: TcpSegment, now: float) -> None:
    """A SYN reached a listener (RFC 9293 3.10.7.2): answer SYN-ACK with the options we share."""
    conn.irs = seg.seq
    conn.rcv_nxt = (seg.seq + 1) & MASK
    _start_sequence(conn, now)
    _negotiate(conn, seg, now)
    _window_from_syn(conn, seg, conn.iss)
    conn._set_state(SYN_RECEIVED)
    conn._syn_time = now
    send_syn(conn, now)
    conn._rtx_at = now + conn.rtt.rto
    conn._cx.counters["tcp.passive_opens"] += 1


def open_from_cookie(conn: Connection, seg: TcpSegment, mss: int, now: float) -> None:
    """The final ACK of a handshake answered with a SYN cookie: ESTABLISHED at once, with the MSS the
    cookie carried and no other option (they were not remembered), then the ACK itself is processed."""
    conn.irs = (seg.seq - 1) & MASK
    conn.rcv_nxt = seg.seq
    conn.iss = (seg.ack - 1) & MASK
    conn.snd_una = conn.snd_nxt = conn.snd_max = seg.ack
    conn._rec.recover = conn.iss
    conn._peer_mss = mss
    _window_from_syn(conn, seg, seg.ack)  # not a SYN, but unscaled too: no scaling without the options
    conn.rcv_adv = (conn.rcv_nxt + _syn_window(conn)) & MASK
    conn._cx.counters["tcp.passive_opens"] += 1
    established(conn, now)
    if seg.payload or seg.flags & FIN:
        conn.input(seg, now)
    conn._flush_event(now)


def _start_sequence(conn: Connection, now: float) -> None:
    """Our ISN (RFC 9293 3.4.1, RFC 6528) and the send sequence space from it: the SYN takes the ISN."""
    conn.iss = iss = conn._cx.isn(conn.local_ip, conn.local_port, conn.remote_ip, conn.remote_port, now)
    conn.snd_una = iss
    conn.snd_nxt = conn.snd_max = (iss + 1) & MASK
    conn._rec.recover = iss


def _window_from_syn(conn: Connection, seg: TcpSegment, wl2: int) -> None:
    """SND.WND from the peer's SYN, which is never scaled (RFC 7323 2.2), with SND.WL1/WL2 of the update."""
    conn.snd_wnd = conn.max_snd_wnd = seg.window
    conn.snd_wl1 = seg.seq
    conn.snd_wl2 = wl2


def _syn_window(conn: Connection) -> int:
    """The window our SYN or SYN-ACK offers: never scaled (RFC 7323 2.2), so at most 65535."""
    return min(conn._rb.cap, 0xFFFF)


def _negotiate(conn: Connection, seg: TcpSegment, now: float) -> None:
    """Adopt the options of the peer's SYN that we also offer (as Linux: each needs both sides)."""
    cfg = conn._cfg
    if seg.mss is not None:
        conn._peer_mss = seg.mss
    wscale = seg.wscale
    conn._ws_ok = cfg.window_scaling and wscale is not None
    if wscale is not None and conn._ws_ok:
        conn._snd_wscale = min(wscale, 14)  # RFC 7323 2.3: larger shifts are treated as 14
        if conn._st != SYN_SENT:
            conn._rcv_wscale = _choose_rcv_wscale(conn)  # passive: ours goes in the SYN-ACK
    else:
        conn._snd_wscale = conn._rcv_wscale = 0  # RFC 7323 2.2: scaling needs both SYNs
    if cfg.timestamps and seg.ts_val is not None:
        conn._ts.ok = True
        conn._ts.remember(seg.ts_val, now)
    conn._sack_ok = cfg.sack and seg.sack_permitted
    conn._update_smss()


def _choose_rcv_wscale(conn: Connection) -> int:
    """Our window scale (RFC 7323 2.2): the least shift whose window reaches the receive buffer's ceiling."""
    shift = 0
    reach = max(conn._rb.cap, conn._cfg.recv_buffer_max)  # the window may grow that far
    while (reach >> shift) > 0xFFFF and shift < 14:
        shift += 1
    return shift


def send_syn(conn: Connection, now: float) -> None:
    """Our SYN, or SYN-ACK in SYN-RECEIVED, with the options we offer (a SYN-ACK: those the peer's SYN
    offered too); sent again as is on each retransmission (RFC 9293 3.8.1)."""
    cfg = conn._cfg
    synack = conn._st == SYN_RECEIVED
    ts = None
    if cfg.timestamps and (not synack or conn._ts.ok):
        ts = (conn._ts.clock(now), conn._ts.recent if synack else 0)
    if synack:
        wscale = conn._rcv_wscale if conn._ws_ok else None
    else:
        wscale = conn._rcv_wscale if cfg.window_scaling else None
    options = wire.build_options(
        mss=conn._adv_mss(), wscale=wscale,
        sack_permitted=cfg.sack and (not synack or conn._sack_ok), timestamps=ts,
    )
    window = _syn_window(conn)
    conn.rcv_adv = (conn.rcv_nxt + window) & MASK
    ack = conn.rcv_nxt if synack else 0
    seg = wire.build(
        conn.local_ip, conn.remote_ip, conn.local_port, conn.remote_port, conn.iss, ack,
        SYN | ACK if synack else SYN, window, options,
    )
    conn._last_ack_sent = ack
    conn._cx.counters["tcp.out_segments"] += 1
    conn._note(conn.iss, why.syn(synack, conn._retries))
    conn._cx.emit(conn.local_ip, conn.remote_ip, seg, now)


def input_syn_sent(conn: Connection, seg: TcpSegment, now: float) -> None:
    """RFC 9293 3.10.7.3."""
    flags = seg.flags
    if flags & ACK:
        if not seq_gt(seg.ack, conn.iss) or seq_gt(seg.ack, conn.snd_max):
            if not flags & RST:
                conn._cx.send_rst(conn.local_ip, conn.remote_ip, conn.local_port, conn.remote_port,
                                  seg.ack, 0, RST, why.RST_BAD_ACK)
            conn._cx.counters.drop("tcp.syn_sent_bad_ack")
            return
    if flags & RST:
        if flags & ACK:  # acceptable ACK (checked above): the peer refused (RFC 5961 3.2 allows this)
            conn._fail(errno.ECONNREFUSED)
        else:
            conn._cx.counters.drop("tcp.syn_sent_rst_without_ack")
        return
    if not flags & SYN:
        conn._cx.counters.drop("tcp.syn_sent_no_syn")
        return
    conn.irs = seg.seq
    conn.rcv_nxt = (seg.seq + 1) & MASK
    conn.rcv_adv = (conn.rcv_nxt + _syn_window(conn)) & MASK  # what our SYN offered
    _negotiate(conn, seg, now)
    if flags & ACK:
        conn.snd_una = seg.ack
        _rtt_sample_syn(conn, seg, now)
        _window_from_syn(conn, seg, seg.ack)
        established(conn, now)
        conn._ack_now = True
    else:
        # Simultaneous open (RFC 9293 figure 8): answer SYN-ACK with the same ISS.
        _window_from_syn(conn, seg, conn.iss)
        conn._set_state(SYN_RECEIVED)
        conn._retries = 0
        send_syn(conn, now)
        conn._rtx_at = now + conn.rtt.rto


def handshake_acked(conn: Connection, seg: TcpSegment, seq: int, now: float) -> bool:
    """SYN-RECEIVED: an ACK of our SYN completes the handshake (ESTABLISHED); False drops the segment."""
    counters = conn._cx.counters
    if not (seq_gt(seg.ack, conn.snd_una) and not seq_gt(seg.ack, conn.snd_max)):
        conn._cx.send_rst(conn.local_ip, conn.remote_ip, conn.local_port, conn.remote_port,
                          seg.ack, 0, RST, why.RST_BAD_ACK)
        counters.drop("tcp.syn_received_bad_ack")
        return False
    listener = conn._listener
    if listener is not None and not listener.has_room():
        counters.drop("tcp.accept_queue_full")  # as Linux: ignore the ACK, the SYN-ACK will repeat
        return False
    _rtt_sample_syn(conn, seg, now)
    conn.snd_una = (conn.iss + 1) & MASK
    conn.snd_wnd = seg.window << conn._snd_wscale
    conn.max_snd_wnd = conn.snd_wnd
    conn.snd_wl1 = seq
    conn.snd_wl2 = seg.ack
    established(conn, now)
    return True


def _rtt_sample_syn(conn: Connection, seg: TcpSegment, now: float) -> None:
    """The handshake's RTT sample, the connection's first (RFC 6298 2.2)."""
    if conn._retries == 0:  # Karn: only if the SYN was not retransmitted
        sample = conn._ts.rtt(seg.ts_ecr, now) if conn._ts.ok else None
        conn.rtt.sample(now - conn._syn_time if sample is None else sample)


def established(conn: Connection, now: float) -> None:
    """The handshake is complete: the retransmission timer's backoff ends (RFC 6298 5.7 after a lost SYN),
    the segment size and the initial window (RFC 6928) follow the options agreed, and the listener learns."""
    syn_retransmitted = conn._retries > 0
    conn._retries = 0
    conn.rtt.reset_backoff()
    if syn_retransmitted:
        conn.rtt.syn_fallback()
    conn._rtx_at = INF
    conn._update_smss()
    conn.cc.cwnd = conn._cfg.initial_window_segments * conn._smss
    conn._rb.space_time = now
    if conn._snd.fin:
        conn._set_state(FIN_WAIT_1)
    else:
        conn._set_state(ESTABLISHED)
    if conn._keepalive:
        timers.restart_keepalive(conn, now)
    listener = conn._listener
    if listener is not None:
        listener.established(conn, now)


def syn_when_synchronized(conn: Connection, seg: TcpSegment, now: float) -> bool | None:
    """A SYN after the handshake: what ``_input_synchronized`` returns for it, or None to go on."""
    st = conn._st
    if st != SYN_RECEIVED:
        if st == TIME_WAIT and not seg.flags & ACK and seq_gt(seg.seq, conn.rcv_nxt):
            conn._close_now()  # a new incarnation may reuse the 4-tuple (RFC 9293 3.6.1, RFC 6191)
            return True
        conn._cx.counters.drop("tcp.syn_in_synchronized")
        conn._challenge_ack(now)  # RFC 5961 4.2, whatever the sequence number
        return False
    if seg.seq == conn.irs and not seg.flags & ACK:
        send_syn(conn, now)  # the peer lost our SYN-ACK and repeats its SYN: repeat ours
        return False
    return None
