"""The send side of a connection: what goes out, and what the peer's ACKs do to it.

- output (RFC 9293 3.8.6.2.1, RFC 1122 4.2.3.4): new data and the FIN as the peer's window, cwnd, sender
  SWS avoidance and Nagle allow, in bursts down the one-pack path when the IP layer has one;
- the ACK's processing (RFC 9293 3.10.7.4 fifth step, with RFC 5961 5.2's bounds): SND.UNA, the window
  update, the RTT sample (RFC 6298, RFC 7323 4.1), the congestion controller (pystack.tcp.congestion);
- fast retransmit and recovery (RFC 5681 3.2, RFC 6582 without SACK, RFC 6675 with it), on what
  pystack.tcp.recovery decides: the scoreboard, NextSeg, the tail loss probe's answer.

These functions are the Connection's own, kept apart from its receiving: they read and write its TCB as
its methods do, and every segment they send is recorded by ``Connection._sent``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pystack.tcp import events, timers, why
from pystack.tcp.context import CONFIRM_SPACING
from pystack.tcp.seq import MASK, seq_ge, seq_gt, seq_lt
from pystack.tcp.state import SENDING, State
from pystack.wire.tcp import ACK, FIN, PSH, SYN

if TYPE_CHECKING:
    from pystack.ip.tcp_path import TcpPath
    from pystack.tcp.connection import Connection
    from pystack.wire.tcp import TcpSegment

INF = math.inf
FIN_WAIT_1 = State.FIN_WAIT_1
FIN_WAIT_2 = State.FIN_WAIT_2
CLOSING = State.CLOSING
LAST_ACK = State.LAST_ACK


def output(conn: Connection, now: float) -> None:
    """Send whatever data (and FIN) the windows, Nagle and SWS avoidance allow."""
    rec = conn._rec
    rec.batch_acked = 0  # the flight is refilled from here on
    if conn._st not in SENDING:
        return
    if rec.in_recovery and conn._sack_ok:
        _output_sack_recovery(conn, now)
        return
    snd = conn._snd
    fin = snd.fin
    avail = len(snd) - ((conn.snd_nxt - conn.snd_una) & MASK)
    if avail < 0 or not avail and not fin:
        return  # all sent (FIN too, if any): the common call after input (nothing below would act)
    buf = snd.view()
    buflen = len(buf)
    smss = conn._mss_now()
    # With segmentation offload a segment may carry many MSS; the link cuts it on the wire.
    gso_max = conn._cx.gso_max
    seg_max = (gso_max // smss) * smss if gso_max > smss else smss
    snd_una = conn.snd_una
    wnd = _window(conn, smss)
    timed = not conn._ts.ok  # RTT from one timed segment at a time, unless echoes time every ACK
    sent = False
    burst: tuple[TcpPath, int, int, bytes] | None = None  # what every segment of this pass shares
    burst_tried = False  # asked for once per pass, at the first segment within the MSS
    while True:
        snd_nxt = conn.snd_nxt
        off = (snd_nxt - snd_una) & MASK
        avail = buflen - off
        if avail > 0:
            usable = wnd - off
            n = seg_max if seg_max < avail else avail
            if usable < n:
                n = usable
            if n <= 0:
                break
            if n < smss:
                if n < avail:
                    # Window-limited: sender SWS avoidance (RFC 9293 3.8.6.2.1) sends a partial
                    # segment only if it is at least half the largest window the peer offered.
                    if n < (conn.max_snd_wnd >> 1):
                        break
                elif off and not conn._nodelay and not fin:
                    break  # Nagle (RFC 1122 4.2.3.4): hold a small segment while data is unacked
            end = off + n
            flags = ACK
            if end == buflen:
                flags = ACK | PSH | FIN if fin else ACK | PSH
            if n <= smss and not burst_tried:
                burst_tried = True
                burst = _open_burst(conn, smss, now)  # not for the link's 64 KiB segments (GSO)
            if n <= smss and burst is not None:
                path, ack, field, options = burst
                path.send(snd_nxt, ack, flags, field, options, buf[off:end])
            else:
                conn._emit(snd_nxt, flags, buf[off:end], now)
            new_nxt = (snd_nxt + n + (flags & FIN)) & MASK
        elif avail == 0 and fin:
            conn._emit(snd_nxt, ACK | FIN, b"", now)  # a bare FIN is not held by the window
            new_nxt = (snd_nxt + 1) & MASK
        else:
            break
        sent = True
        if timed and snd_nxt == conn.snd_max and conn._rtt_seq is None:
            conn._rtt_seq = new_nxt  # new data: time it unless a sample is under way (Karn)
            conn._rtt_time = now
        conn._sent(snd_nxt, new_nxt, now)
    if burst is not None:
        conn._cx.counters["tcp.out_segments"] += burst[0].finish()
    _after_output(conn, sent, now)


def _window(conn: Connection, smss: int) -> int:
    """How far past SND.UNA an output pass may send: the peer's window and cwnd, whichever is smaller."""
    rec = conn._rec
    wnd = conn.snd_wnd
    cwnd = conn.cc.cwnd
    if rec.dupacks and not rec.in_recovery:
        # RFC 3042 limited transmit: a new segment for each of the first two duplicate ACKs,
        # so a small window still produces the third one that triggers fast retransmit.
        cwnd += min(rec.dupacks, 2) * smss
    return cwnd if wnd > cwnd else wnd


def _after_output(conn: Connection, sent: bool, now: float) -> None:
    """The timers after an output pass: the RTO runs while data is out (RFC 6298 5.1), and the tail
    loss probe; with nothing sent and nothing out but data (or a FIN) waiting, the persist timer."""
    if sent:
        if conn._rtx_at == INF or conn._persist:
            conn._persist = False
            conn._rtx_at = now + conn.rtt.rto
        timers.schedule_tlp(conn, now)
        conn.cc.track_use((conn.snd_nxt - conn.snd_una) & MASK, conn.snd_una, conn.snd_nxt)
    elif conn._rtx_at == INF and conn.snd_nxt == conn.snd_una and (len(conn._snd) or conn._snd.fin):
        timers.start_persist(conn, now)


def _open_burst(conn: Connection, smss: int, now: float) -> tuple[TcpPath, int, int, bytes] | None:
    """The one-pack path (pystack.ip.tcp_path) and the header fields every data segment of this
    output pass shares, or None when the IP layer wants each segment the layered way (neighbour
    unresolved, our own address, no IP layer below: the unit tests' bare TCP layer)."""
    path_for = conn._cx.segment_path
    if path_for is None:
        return None
    path = path_for(conn.local_ip, conn.remote_ip, conn.local_port, conn.remote_port, now)
    if path is None:
        return None
    ack, field, options = conn._header_fields(ACK, now)
    if 40 + len(options) + smss > conn._mtu:
        return None  # a minimum MSS above what the MTU carries: the layered path copes (EMSGSIZE)
    return path, ack, field, options


def _retransmit_head(conn: Connection, now: float, reason: str) -> int:
    """Retransmit the first unacknowledged segment (fast retransmit, partial ACK); returns its length."""
    buf = conn._snd.view()
    inflight = (conn.snd_max - conn.snd_una) & MASK  # never more than was sent before
    n = min(conn._mss_now(), len(buf), inflight)
    if n > 0:
        flags = ACK | PSH if n == len(buf) else ACK
        if n == len(buf) and conn._snd.fin and inflight > n:
            flags |= FIN
    elif conn._snd.fin and inflight > len(buf):
        flags = ACK | FIN
    else:
        return 0
    una = conn.snd_una
    conn._emit(una, flags, buf[:n], now)
    conn._sent(una, (una + n + (flags & FIN)) & MASK, now, reason)
    return n


def _output_sack_recovery(conn: Connection, now: float) -> None:
    """SACK-based loss recovery's sending (RFC 6675 5): what Recovery.next_seg chooses, while cwnd - pipe
    leaves room."""
    buf = conn._snd.view()
    buflen = len(buf)
    smss = conn._mss_now()
    rec = conn._rec
    una = conn.snd_una
    sent = False
    while True:
        seg = rec.next_seg(una, (conn.snd_max - una) & MASK, buflen, (conn.snd_nxt - una) & MASK,
                           conn.snd_wnd, conn.cc.cwnd, smss)
        if seg is None:
            break
        off, n, new = seg
        flags = ACK | PSH if off + n == buflen else ACK
        if new and flags & PSH and conn._snd.fin:
            flags |= FIN
        seq = (una + off) & MASK
        if not new and conn._cx.trace is not None:
            _trace_loss(conn, now, seq, why.SACK_HOLE, (seq + n) & MASK)
        conn._emit(seq, flags, buf[off:off + n], now)
        conn._sent(seq, (seq + n + (flags & FIN)) & MASK, now, why.SACK_NEW if new else why.SACK_HOLE)
        sent = True
    if sent and conn._rtx_at == INF:
        conn._rtx_at = now + conn.rtt.rto


def process_ack(conn: Connection, seg: TcpSegment, seq: int, now: float) -> bool:
    """RFC 9293 3.10.7.4 fifth step, with RFC 5961 5.2 bounds, RFC 5681/6582/6675 recovery.
    Returns False when the segment must be dropped."""
    ack = seg.ack
    una = conn.snd_una
    counters = conn._cx.counters
    if seq_gt(ack, conn.snd_max) and ack == conn._probe_end:
        conn.snd_max = ack  # the peer took our zero-window probe byte
    if seq_gt(ack, conn.snd_max):
        counters.drop("tcp.ack_unsent")
        conn._ack_now = conn._ack_at_once = True  # RFC 9293: ACK something not yet sent -> send ACK, drop
        return False
    if seq_lt(ack, (una - conn.max_snd_wnd) & MASK):
        counters.drop("tcp.ack_too_old")
        conn._challenge_ack(now)  # RFC 5961 5.2
        return False
    win = seg.window << conn._snd_wscale
    acked = (ack - una) & MASK
    if acked and acked < 0x80000000:
        ack_new(conn, ack, acked, seg, now)
    elif acked == 0 and conn.snd_max != una:
        # RFC 5681 2: a duplicate ACK carries no data, no SYN/FIN, the same window, and data is out.
        sack_news = conn._sack_ok and seg.sack_blocks and _update_scoreboard(conn, seg.sack_blocks)
        # Not while the window is zero: the answers to our window probes look just like dup ACKs.
        if ((not len(seg.payload) and not seg.flags & (SYN | FIN) and win == conn.snd_wnd) or sack_news) \
                and win and not conn._persist:
            _on_dupack(conn, now)
    elif conn._sack_ok and seg.sack_blocks and acked == 0:
        _update_scoreboard(conn, seg.sack_blocks)
    if conn._rec.tlp_probe is not None and conn._rec.probe_answered(conn.snd_una):
        _fast_retransmit(conn, now, why.FAST_PROBE)
    # Window update (RFC 9293 3.10.7.4: SND.UNA =< SEG.ACK, and only from a newer segment as
    # tracked by SND.WL1/WL2).
    if acked < 0x80000000 and (
            seq_lt(conn.snd_wl1, seq) or (conn.snd_wl1 == seq and seq_ge(ack, conn.snd_wl2))):
        opened = conn.snd_wnd == 0 and win > 0
        if win != conn.snd_wnd and conn._cx.trace is not None:
            conn._cx.trace(now, conn, events.WINDOW, {"from": conn.snd_wnd, "to": win})
        conn.snd_wnd = win
        conn.snd_wl1 = seq
        conn.snd_wl2 = ack
        if win > conn.max_snd_wnd:
            conn.max_snd_wnd = win
        if opened and conn._persist:
            conn._persist = False
            conn._persist_backoff = 0
            conn._rtx_at = INF
            conn._retries = 0
    if conn._persist:
        # The peer answers our probes, its window still closed: keep probing as long as it does
        # (RFC 1122 4.2.2.17 MUST; only unanswered probes count towards ETIMEDOUT).
        conn._retries = 0

    st = conn._st
    if conn._snd.fin_acked and st in (FIN_WAIT_1, CLOSING, LAST_ACK):
        if st == FIN_WAIT_1:
            conn._set_state(FIN_WAIT_2)
            if conn._user_closed:
                timers.fin_wait_2_timeout(conn, now)
        elif st == CLOSING:
            timers.enter_time_wait(conn, now)
        else:
            conn._close_now()
            return False
    return True


def ack_new(conn: Connection, ack: int, acked: int, seg: TcpSegment, now: float) -> None:
    """An ACK of new data (``acked`` bytes up to ``ack``): SND.UNA moves, the RTT is sampled, congestion
    control and recovery take it, and the retransmission timer restarts or stops."""
    cc = conn.cc
    rec = conn._rec
    flight = (conn.snd_max - conn.snd_una) & MASK
    rec.batch_acked += acked
    if conn._snd.acknowledge(acked):
        conn._event = True  # writable again
    conn.snd_una = ack
    if seq_lt(conn.snd_nxt, ack):
        conn.snd_nxt = ack
    if now >= conn._confirm_at and (confirm := conn._cx.confirm) is not None:
        conn._confirm_at = now + confirm(conn.remote_ip, now) * CONFIRM_SPACING  # forward progress
    # RTT (RFC 6298 / RFC 7323 4.1). Karn's rule: without timestamps _rtt_seq is cleared by any
    # retransmission; with them, an echo of a TSval sent before the last retransmission is not
    # used (it may time the original transmission of data whose ACK was lost, seconds ago).
    # Only a valid sample ends the RTO backoff (RFC 6298 5.7 with Karn, as Linux).
    ts = conn._ts
    if ts.ok:
        sample = ts.rtt(seg.ts_ecr, now)
        if sample is not None:
            conn.rtt.sample(sample)
    elif conn._rtt_seq is not None and seq_ge(ack, conn._rtt_seq):
        conn.rtt.sample(now - conn._rtt_time)
        conn._rtt_seq = None
    conn._retries = 0
    delivered = acked
    if not conn._cfg.slow_start_limit:  # Linux's count: what the peer reported before was delivered then
        delivered -= rec.sacked.covered(0, acked) if conn._sack_ok else rec.dupacks * conn._smss
        delivered = max(delivered, 0)
    if rec.sacked or rec.high_rxt:
        rec.shift(acked)
    if conn._sack_ok and seg.sack_blocks:
        _update_scoreboard(conn, seg.sack_blocks)
    # Congestion control and recovery.
    if rec.in_recovery:
        if seq_ge(ack, rec.recover):
            rec.in_recovery = False
            rec.dupacks = 0
            if conn._sack_ok:
                cc.cwnd = cc.ssthresh  # RFC 6675 5 (end of recovery)
            else:
                cc.on_exit_recovery((conn.snd_max - ack) & MASK)
            trace_congestion(conn, now, "recovery_end")
        elif not conn._sack_ok:
            _trace_loss(conn, now, ack, why.PARTIAL_ACK)
            _retransmit_head(conn, now, why.PARTIAL_ACK)  # RFC 6582 3.2 step 5: partial ACK
            cc.on_partial_ack(acked)
    else:
        rec.dupacks = 0
        if not conn._cfg.cwnd_validation or cc.used():
            cc.on_ack(delivered, flight, now, conn.rtt.srtt or 0.0)
        conn._snd.follow(cc.cwnd)
    # RFC 6298 5.2/5.3: stop the timer when all is acked, else restart it.
    if conn.snd_una == conn.snd_max:
        conn._rtx_at = INF
        conn._persist = False
    elif not conn._persist:
        conn._rtx_at = now + conn.rtt.rto
    rec.tlp_out = False
    timers.schedule_tlp(conn, now)


def _update_scoreboard(conn: Connection, blocks: tuple[tuple[int, int], ...]) -> bool:
    """The peer's SACK blocks into the scoreboard, within what was sent and is held; True if news."""
    una = conn.snd_una
    return conn._rec.update(blocks, una, min((conn.snd_max - una) & MASK, len(conn._snd)))


def _on_dupack(conn: Connection, now: float) -> None:
    """A duplicate ACK (RFC 5681 2): fast retransmit at DupThresh of them, or as soon as SACK shows more
    than (DupThresh - 1) * SMSS above the hole (RFC 6675 5)."""
    rec = conn._rec
    if rec.in_recovery:
        if not conn._sack_ok:
            conn.cc.on_dupack_in_recovery()  # RFC 6582 3.2 step 3
        return
    rec.dupacks += 1
    thresh = conn._cfg.dupack_threshold
    lost_by_sack = conn._sack_ok and rec.sacked.size > (thresh - 1) * conn._smss
    if (rec.dupacks >= thresh or lost_by_sack) and seq_ge(conn.snd_una, rec.recover):
        _fast_retransmit(conn, now, why.FAST_DUPACKS if rec.dupacks >= thresh else why.FAST_SACK)


def _fast_retransmit(conn: Connection, now: float, reason: str) -> None:
    """Enter recovery and retransmit the head (RFC 5681 3.2, RFC 6582 3.2 step 2 / RFC 6675 5 step 4)."""
    cc = conn.cc
    _trace_loss(conn, now, conn.snd_una, reason)
    cc.on_enter_recovery(conn._rec.enter(conn.snd_max, (conn.snd_max - conn.snd_una) & MASK), now)
    if conn._sack_ok:
        cc.cwnd = cc.ssthresh  # RFC 6675: cwnd = ssthresh, pipe governs sending
    trace_congestion(conn, now, "recovery")
    conn._rec.high_rxt = _retransmit_head(conn, now, reason)
    conn.stats["fast_retransmits"] += 1
    conn._cx.counters["tcp.fast_retransmits"] += 1


def trace_congestion(conn: Connection, now: float, event: str) -> None:
    """Tell the context's ``trace`` hook (``--trace``) of a congestion event, with the window after it."""
    trace = conn._cx.trace
    if trace is not None:
        cc = conn.cc
        trace(now, conn, events.CONGESTION, {"event": event, "cwnd": cc.cwnd, "ssthresh": cc.ssthresh,
                                             "flight": (conn.snd_max - conn.snd_una) & MASK})


def _trace_loss(conn: Connection, now: float, seq: int, rule: str, end: int | None = None) -> None:
    """Tell the ``trace`` hook that the bytes from ``seq`` (one segment's worth unless ``end``) are
    taken for lost by ``rule``."""
    trace = conn._cx.trace
    if trace is not None:
        if end is None:
            end = (seq + min(conn._mss_now(), (conn.snd_max - seq) & MASK)) & MASK
        trace(now, conn, events.LOSS, {"seq": seq, "end": end, "rule": rule})
