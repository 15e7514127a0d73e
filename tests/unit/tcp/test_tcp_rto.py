"""Retransmission: RFC 6298 timer arithmetic, Karn, backoff and give-up, fast retransmit and NewReno
(RFC 5681/6582), SACK-based recovery (RFC 6675)."""

from __future__ import annotations

import errno

import pytest

from pystack.tcp import State, TcpConfig
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, SYN

from .tcp_harness import IP_A, IP_B, LOCAL_PORT, PEER_PORT, Solo
from .tcp_helpers import PEER_ISS

MSS = 1000
OPTS = wire.build_options(mss=MSS)
OPTS_SACK = wire.build_options(mss=MSS, sack_permitted=True)


def _connect(cfg: TcpConfig, rtt: float = 0.1, options: bytes = OPTS, window: int = 65535):
    """Active open where the SYN-ACK comes back after ``rtt`` seconds (one RTT sample)."""
    solo = Solo(cfg)
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    solo.advance(rtt)
    solo.send(PEER_ISS, syn.seq + 1, SYN | ACK, window, options=options)
    solo.one()
    return solo, conn, syn.seq + 1, PEER_ISS + 1


def test_syn_retransmits_with_doubling_then_etimedout() -> None:
    solo = Solo(TcpConfig(syn_retries=4))
    t0 = solo.now
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now)
    syn = solo.one()
    times = []
    while conn.state == State.SYN_SENT:
        solo.advance_to_next_timer()
        for seg in solo.take():
            assert seg.flags == SYN and seg.seq == syn.seq
            times.append(round(solo.now - t0, 6))
    assert times == [1, 3, 7, 15]  # initial RTO 1 s (RFC 6298 2.1), doubled each time (5.5)
    assert solo.now - t0 == 31 and conn.error == errno.ETIMEDOUT
    assert not solo.layer.connections


def test_data_rto_from_measured_rtt_backoff_and_give_up() -> None:
    cfg = TcpConfig(timestamps=False, rto_min=0.05, max_retries=3)
    solo, conn, our, peer = _connect(cfg, rtt=0.1)
    # RFC 6298 2.2 from the handshake sample R = 0.1: SRTT 0.1, RTTVAR 0.05, RTO = 0.1 + 4 * 0.05
    assert conn.rtt.srtt == pytest.approx(0.1) and conn.rtt.rto == pytest.approx(0.3)
    conn.send(b"x" * 500, solo.now)
    first = solo.one()
    t0 = solo.now
    gaps = []
    while conn.state == State.ESTABLISHED:
        solo.advance_to_next_timer()
        for seg in solo.take():
            assert seg.seq == first.seq and bytes(seg.payload) == bytes(first.payload)
            gaps.append(round(solo.now - t0, 6))
    assert gaps == [0.3, 0.9, 2.1]  # 0.3, then doubled: +0.6, +1.2
    assert solo.now - t0 == pytest.approx(4.5)  # the fourth expiry (+2.4) exceeds max_retries
    assert conn.error == errno.ETIMEDOUT and conn.state == State.CLOSED


def test_rtt_sample_updates_srtt_and_karn_skips_retransmitted() -> None:
    cfg = TcpConfig(timestamps=False, rto_min=0.05)
    solo, conn, our, peer = _connect(cfg, rtt=0.1)
    conn.send(b"a" * 100, solo.now)
    solo.one()
    solo.advance(0.2)
    solo.send(peer, our + 100, ACK)
    srtt = 0.875 * 0.1 + 0.125 * 0.2
    rttvar = 0.75 * 0.05 + 0.25 * abs(0.1 - 0.2)
    assert conn.rtt.srtt == pytest.approx(srtt) and conn.rtt.rttvar == pytest.approx(rttvar)
    assert conn.rtt.rto == pytest.approx(srtt + 4 * rttvar)
    conn.send(b"b" * 100, solo.now)
    solo.one()
    solo.advance_to_next_timer()  # retransmitted
    assert len(solo.take()) == 1
    solo.advance(0.01)
    solo.send(peer, our + 200, ACK)  # ambiguous ACK: no sample (Karn), backoff kept
    assert conn.rtt.srtt == pytest.approx(srtt)
    assert conn.rtt.rto == pytest.approx(2 * (srtt + 4 * rttvar))


def test_timer_restarts_on_ack_and_stops_when_all_acked() -> None:
    cfg = TcpConfig(timestamps=False, rto_min=0.05)
    solo, conn, our, peer = _connect(cfg, rtt=0.1)
    conn.set_nodelay(True, solo.now)
    conn.send(b"a" * 100, solo.now)
    conn.send(b"b" * 100, solo.now)
    solo.take()
    solo.advance(0.25)
    solo.send(peer, our + 100, ACK)  # RFC 6298 5.3: restart with the current RTO
    assert solo.layer.get_timer() == pytest.approx(solo.now + conn.rtt.rto)
    solo.send(peer, our + 200, ACK)  # 5.2: all acked, timer off
    assert conn._rtx_at == float("inf")


def _bulk(sack: bool, segments: int = 10, tlp: bool = True, congestion: str = "newreno"):
    """Ten segments out; NewReno by default, whose RFC 5681 arithmetic the recovery tests check."""
    cfg = TcpConfig(timestamps=False, sack=sack, rto_min=1.0, tail_loss_probe=tlp, congestion_control=congestion)
    solo, conn, our, peer = _connect(cfg, rtt=0.1, options=OPTS_SACK if sack else OPTS)
    conn.send(b"".join(bytes([65 + i]) * MSS for i in range(segments)), solo.now)
    segs = solo.take()
    assert [s.seq - our for s in segs] == [i * MSS for i in range(segments)]  # initial window 10 (RFC 6928)
    return solo, conn, our, peer


def test_fast_retransmit_after_three_dupacks_newreno() -> None:
    solo, conn, our, peer = _bulk(sack=False)
    solo.send(peer, our + MSS, ACK)  # segment 2 (offset 1000) lost
    solo.send(peer, our + MSS, ACK)
    solo.send(peer, our + MSS, ACK)
    solo.none()
    solo.send(peer, our + MSS, ACK)  # third duplicate
    rtx = solo.one()
    assert rtx.seq == our + MSS and bytes(rtx.payload) == b"B" * MSS
    flight = 9 * MSS
    assert conn.cc.ssthresh == max(flight // 2, 2 * MSS)  # RFC 5681 eq. 4
    assert conn.cc.cwnd == conn.cc.ssthresh + 3 * MSS  # RFC 6582 step 2
    # A partial ACK (segment 4 was lost too) retransmits the next hole at once (RFC 6582 step 5)
    solo.send(peer, our + 3 * MSS, ACK)
    rtx2 = [s for s in solo.take() if s.seq == our + 3 * MSS]
    assert rtx2 and bytes(rtx2[0].payload) == b"D" * MSS
    solo.send(peer, our + 10 * MSS, ACK)  # full ACK ends recovery
    assert not conn._rec.in_recovery and conn.cc.cwnd <= conn.cc.ssthresh + MSS


def test_dupacks_with_data_or_window_change_do_not_count() -> None:
    solo, conn, our, peer = _bulk(sack=False)
    solo.send(peer, our + MSS, ACK)
    for w in (60000, 61000, 62000):  # window changes: not duplicates (RFC 5681 2)
        solo.send(peer, our + MSS, ACK, window=w)
    solo.none()
    assert conn.stats["fast_retransmits"] == 0


def test_sack_recovery_retransmits_only_holes() -> None:
    solo, conn, our, peer = _bulk(sack=True)
    # segments at offsets 1000 and 3000 are lost; the receiver SACKs the rest
    def sack(*blocks):
        return wire.build_options(sack_blocks=[(our + a, our + b) for a, b in blocks])
    solo.send(peer, our + MSS, ACK, options=sack((2000, 3000)))
    solo.send(peer, our + MSS, ACK, options=sack((4000, 5000), (2000, 3000)))
    solo.none()
    solo.send(peer, our + MSS, ACK, options=sack((4000, 6000), (2000, 3000)))  # > 2 MSS SACKed above: lost
    out = solo.take()
    assert [s.seq - our for s in out][:1] == [1000]
    assert conn.cc.cwnd == conn.cc.ssthresh == 9 * MSS // 2  # RFC 6675: cwnd = ssthresh
    solo.send(peer, our + MSS, ACK, options=sack((4000, 10000), (2000, 3000)))
    out += solo.take()
    rtx = sorted({s.seq - our for s in out if s.seq - our < 10 * MSS})
    assert rtx == [1000, 3000]  # the holes, and nothing SACKed
    solo.send(peer, our + 10 * MSS, ACK)
    assert not conn._rec.in_recovery


def test_cubic_reduces_to_beta_of_the_flight_on_loss_and_on_timeout() -> None:
    """RFC 9438 4.6 and 4.8: 0.7 of the flight, where NewReno halves it."""
    solo, conn, our, peer = _bulk(sack=True, congestion="cubic")
    sack = wire.build_options(sack_blocks=[(our + 2 * MSS, our + 5 * MSS)])
    for _ in range(3):
        solo.send(peer, our + MSS, ACK, options=sack)
    assert conn._rec.in_recovery and conn.cc.ssthresh == int(9 * MSS * 0.7) == conn.cc.cwnd
    solo, conn, our, peer = _bulk(sack=False, segments=4, tlp=False, congestion="cubic")
    solo.advance_to_next_timer()
    assert conn.cc.cwnd == MSS and conn.cc.ssthresh == max(int(4 * MSS * 0.7), 2 * MSS)


def test_rto_collapses_cwnd_and_goes_back_n() -> None:
    solo, conn, our, peer = _bulk(sack=False, segments=4, tlp=False)  # the RTO alone (TLP tests below)
    solo.advance_to_next_timer()
    rtx = solo.one()
    assert rtx.seq == our and conn.cc.cwnd == MSS and conn.cc.ssthresh == 2 * MSS  # RFC 5681 3.1
    solo.send(peer, our + MSS, ACK)  # one more segment per ACK in slow start (cwnd grows)
    nxt = solo.take()
    assert [s.seq - our for s in nxt] == [MSS, 2 * MSS]
    solo.send(peer, our + 4 * MSS, ACK)  # the originals had arrived: late ACK covers everything
    assert conn.snd_una == conn.snd_max and conn.snd_nxt == conn.snd_max


def test_icmp_port_unreachable_aborts_connect_and_frag_needed_shrinks_mss() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    quoted = wire.build(IP_B, IP_A, LOCAL_PORT, PEER_PORT, syn.seq, 0, SYN, 0)[:8]
    solo.layer.icmp_error(3, 3, IP_B, IP_A, quoted, solo.now)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNREFUSED
    solo2, conn2, our, peer = _connect(TcpConfig(timestamps=False), options=wire.build_options(mss=1460))
    conn2.send(b"m" * 3000, solo2.now)
    first = solo2.take()
    assert len(first[0].payload) == 1460
    quoted = wire.build(IP_B, IP_A, LOCAL_PORT, PEER_PORT, our, 0, ACK, 0)[:8]
    solo2.layer.icmp_error(3, 4, IP_B, IP_A, quoted, solo2.now, next_hop_mtu=576)
    resent = solo2.take()
    assert resent and all(len(s.payload) <= 536 for s in resent) and resent[0].seq == our
    bad = wire.build(IP_B, IP_A, LOCAL_PORT, PEER_PORT, our + 100000, 0, ACK, 0)[:8]
    solo2.layer.icmp_error(3, 3, IP_B, IP_A, bad, solo2.now)  # sequence not in flight: ignored (RFC 5927)
    assert conn2.state == State.ESTABLISHED and solo2.counters.drops()["tcp.icmp_bad_seq"] == 1


def test_rto_is_3s_after_a_retransmitted_syn_without_sample() -> None:
    solo = Solo(TcpConfig(timestamps=False))
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    solo.advance_to_next_timer()
    solo.one()  # the SYN again: Karn forbids a sample from the SYN-ACK
    solo.send(PEER_ISS, syn.seq + 1, SYN | ACK, options=OPTS)
    solo.one()
    assert conn.rtt.srtt is None and conn.rtt.rto == 3.0  # RFC 6298 5.7
    conn.send(b"x", solo.now)
    solo.one()
    t0 = solo.now
    solo.advance_to_next_timer()
    assert solo.now - t0 == pytest.approx(3.0) and len(solo.take()) == 1


# --- tail loss probe (RFC 8985 section 7) ----------------------------------------------------------------


def test_tail_loss_probe_resends_the_last_segment_after_two_srtt_not_the_rto() -> None:
    """Four segments out and no ACK at all (the tail of a flight lost, or every ACK of it): after
    max(2 SRTT, 10 ms) one probe goes out, the last segment again, long before the 1 s RTO; the
    peer's answer to it (here a SACK of the probe) then starts recovery at once."""
    solo, conn, our, peer = _bulk(sack=True, segments=4)
    sent_at = solo.now
    fired = solo.advance_to_next_timer()
    probe = solo.one()
    assert probe.seq == our + 3 * MSS and len(probe.payload) == MSS
    assert fired - sent_at == pytest.approx(2 * conn.rtt.srtt)  # 2 x 0.1 s of handshake RTT
    assert solo.counters["tcp.tail_loss_probes"] == 1 and solo.counters["tcp.timeouts"] == 0
    solo.advance(0.1)
    solo.none()  # one probe per episode: the next timer is the RTO
    sack = wire.build_options(sack_blocks=[(our + 3 * MSS, our + 4 * MSS)])
    solo.send(peer, our, ACK, options=sack)
    solo.send(peer, our, ACK, options=sack)
    solo.send(peer, our, ACK, options=sack)
    assert [s.seq - our for s in solo.take()][:1] == [0]  # fast retransmit of the head, no RTO
    assert solo.counters["tcp.timeouts"] == 0


def test_tail_loss_probe_sends_new_data_when_sack_shows_a_hole() -> None:
    """With a hole known and unsent data the peer's window can take, the probe is the next new segment
    (RFC 8985 7.3), whatever the congestion window says: its SACK will mark the hole lost."""
    solo, conn, our, peer = _bulk(sack=True, segments=10)
    conn.send(b"Z" * MSS + b"Y" * MSS, solo.now)  # queued beyond the initial window of 10
    solo.none()
    solo.send(peer, our, ACK, options=wire.build_options(sack_blocks=[(our + 5 * MSS, our + 6 * MSS)]))
    limited = solo.one()  # one duplicate ACK: no fast retransmit, one new segment (RFC 3042)
    assert bytes(limited.payload) == b"Z" * MSS
    solo.advance_to_next_timer()
    probe = solo.one()
    assert probe.seq == our + 11 * MSS and bytes(probe.payload) == b"Y" * MSS
    assert conn.snd_max == our + 12 * MSS


def test_tail_loss_probe_repeats_the_last_segment_when_nothing_is_sacked_though_new_data_waits() -> None:
    """Nothing SACKed: the peer may have everything and only its ACKs were lost. A duplicate draws its ACK
    at once; new in-order data may wait for the peer's delayed ACK, past our RTO."""
    solo, conn, our, peer = _bulk(sack=True, segments=10)
    conn.send(b"Z" * MSS, solo.now)
    solo.none()
    solo.advance_to_next_timer()
    probe = solo.one()
    assert probe.seq == our + 9 * MSS and bytes(probe.payload) == b"J" * MSS
    assert conn.snd_max == our + 10 * MSS and solo.counters["tcp.retransmits"] == 1
    solo.send(peer, our + 10 * MSS, ACK)  # the peer had it all: its answer acknowledges everything
    assert conn._rec.tlp_probe is None and conn.stats["fast_retransmits"] == 0


def test_no_tail_loss_probe_for_a_lone_segment_before_the_rto() -> None:
    """One segment in flight may just be waiting on the peer's delayed ACK: the probe time grows by
    200 ms (RFC 8985 7.2 WCDelAckT), past the RTO here, so the RTO is the next timer."""
    cfg = TcpConfig(timestamps=False, sack=True, rto_min=0.2)
    solo, conn, our, peer = _connect(cfg, rtt=0.001, options=OPTS_SACK)
    conn.send(b"x" * 100, solo.now)
    solo.one()
    solo.advance_to_next_timer()
    assert solo.counters["tcp.timeouts"] == 1 and solo.counters["tcp.tail_loss_probes"] == 0


def test_a_lone_segments_probe_waits_the_delayed_ack_allowance_more() -> None:
    """TcpConfig.tlp_delayed_ack is the allowance for the peer's delayed ACK of a lone segment: at 50 ms
    the probe goes out max(2 SRTT, tlp_min) + 50 ms after it, before the RTO."""
    cfg = TcpConfig(timestamps=False, sack=True, rto_min=0.2, tlp_delayed_ack=0.05)
    solo, conn, our, peer = _connect(cfg, rtt=0.001, options=OPTS_SACK)
    t0 = solo.now
    conn.send(b"x" * 100, solo.now)
    solo.one()
    solo.advance_to_next_timer()
    probe = solo.one()
    assert probe.seq == our and bytes(probe.payload) == b"x" * 100
    assert solo.counters["tcp.tail_loss_probes"] == 1 and solo.counters["tcp.timeouts"] == 0
    assert conn.rtt.srtt is not None
    assert solo.now - t0 == pytest.approx(max(2 * conn.rtt.srtt, cfg.tlp_min) + 0.05)


def test_no_tail_loss_probe_while_the_peers_window_holds_the_data_back() -> None:
    """A flight that fills the peer's window, more data waiting: the peer (Linux, its reader slow, as
    under ``curl --limit-rate``) holds its ACK, which would not open the window, for its delayed-ACK
    time, then acknowledges everything with a zero window. Nothing was lost, so no tail loss probe
    (RFC 8985 7.2) may go out in between; after the ACK only zero-window probes, on the persist
    timer's doubling schedule (RFC 9293 3.8.6.1), and none counts as a retransmission (Linux counts
    neither its window probes nor new data in RetransSegs)."""
    cfg = TcpConfig(timestamps=False, sack=True, rto_min=0.2)
    solo, conn, our, peer = _connect(cfg, rtt=0.001, options=OPTS_SACK, window=4 * MSS)
    conn.send(b"w" * (10 * MSS), solo.now)
    assert sum(len(s.payload) for s in solo.take()) == 4 * MSS  # the peer's window, not cwnd, stops it
    solo.advance(0.04)  # the peer's delayed ACK; the probe timeout, max(2 SRTT, 10 ms), is shorter
    solo.none()
    solo.send(peer, our + 4 * MSS, ACK, window=0)
    solo.none()
    rto = conn.rtt.rto
    gaps = []
    for _ in range(4):
        t0 = solo.now
        solo.advance_to_next_timer()
        probe = solo.one()
        assert (probe.seq, len(probe.payload)) == (our + 4 * MSS, 1)  # one new byte past the closed window
        gaps.append(solo.now - t0)
        solo.send(peer, our + 4 * MSS, ACK, window=0)  # still closed
    assert gaps == pytest.approx([rto, 2 * rto, 4 * rto, 8 * rto])
    assert solo.counters["tcp.window_probes"] == 4
    assert solo.counters["tcp.tail_loss_probes"] == 0 and solo.counters["tcp.retransmits"] == 0
    assert conn.stats["retransmits"] == 0 and conn.info()["total_retrans"] == 0


def test_no_tail_loss_probe_after_an_ack_that_leaves_the_flight_at_the_windows_edge() -> None:
    """An ACK of new data arms the probe before its window is read: one for half the flight whose window
    ends where the flight does (the peer's reader took nothing) leaves the rest to the window too."""
    cfg = TcpConfig(timestamps=False, sack=True, rto_min=0.2)
    solo, conn, our, peer = _connect(cfg, rtt=0.001, options=OPTS_SACK, window=4 * MSS)
    conn.send(b"w" * (10 * MSS), solo.now)
    solo.take()
    solo.send(peer, our + 2 * MSS, ACK, window=2 * MSS)
    solo.advance(0.1)  # past the probe timeout (10 ms), before the RTO
    solo.none()
    assert solo.counters["tcp.tail_loss_probes"] == 0 and solo.counters["tcp.retransmits"] == 0


def test_tail_loss_probe_can_be_turned_off() -> None:
    solo, conn, our, peer = _bulk(sack=True, segments=4, tlp=False)
    solo.advance_to_next_timer()
    assert solo.one().seq == our  # the RTO, back to SND.UNA
    assert solo.counters["tcp.tail_loss_probes"] == 0 and solo.counters["tcp.timeouts"] == 1


def test_a_lost_fast_retransmission_is_sent_again_without_waiting_for_the_rto() -> None:
    """The hole at SND.UNA is retransmitted, and that copy is lost too. The peer goes on SACKing data
    we sent after the retransmission; once more than 2 MSS of it is SACKed with the hole still open,
    the retransmission counts as lost (RACK's inference, RFC 8985 6.2) and goes out again at once,
    instead of after the retransmission timeout (1 s here)."""
    solo, conn, our, peer = _bulk(sack=True, segments=10, tlp=False)
    conn.send(b"N" * (10 * MSS), solo.now)  # more to send once recovery lets new data out
    solo.none()
    highest = our + 10 * MSS
    head_copies = 0
    for k in range(2, 20):  # segment 0 is lost (and stays lost); everything else arrives
        if our + k * MSS > highest:
            break
        sack = wire.build_options(sack_blocks=[(our + MSS, our + k * MSS)])
        solo.send(peer, our, ACK, options=sack)
        for seg in solo.take():
            if seg.seq == our:
                head_copies += 1
            highest = max(highest, seg.seq + len(seg.payload))
        if head_copies == 2:
            break
    assert head_copies == 2, "the lost retransmission was not sent again"
    assert highest > our + 12 * MSS  # new data went out after the first retransmission, and was SACKed
    assert solo.counters["tcp.lost_retransmissions"] == 1 and solo.counters["tcp.timeouts"] == 0


def test_the_ack_of_a_tail_loss_probe_marks_what_it_leaves_behind_lost() -> None:
    """RFC 8985 7.4 with RACK's inference (6.2): a small flight (cwnd 2) loses both segments; the probe
    (the last segment again) goes out after 2 SRTT and is SACKed. Everything below the delivered probe
    is lost: the hole is retransmitted on that ACK, not after the RTO (1 s here), though one SACKed
    segment is far from the three duplicate ACKs fast retransmit waits for."""
    cfg = TcpConfig(timestamps=False, sack=True, rto_min=1.0)
    solo, conn, our, peer = _connect(cfg, rtt=0.1, options=OPTS_SACK)
    conn.cc.cwnd = conn.cc.ssthresh = 2 * MSS
    conn.send(bytes(range(256)) * 80, solo.now)  # 20 segments queued, 2 allowed out
    assert [s.seq - our for s in solo.take()] == [0, MSS]  # both lost
    solo.advance_to_next_timer()
    (probe,) = solo.take()
    assert probe.seq == our + MSS and conn.stats["timeouts"] == 0  # the tail loss probe: the last again
    solo.send(peer, our, ACK, options=wire.build_options(sack_blocks=[(our + MSS, our + 2 * MSS)]))
    again = [s.seq - our for s in solo.take()]
    assert again[:1] == [0]  # the hole below the probe, at once
    assert conn.stats["timeouts"] == 0 and solo.layer.counters["tcp.probe_losses"] == 1
    solo.send(peer, our + 2 * MSS, ACK)  # the hole filled: SND.UNA passes what was marked lost
    assert conn._rec.lost_limit(conn.snd_una) == 0 and conn._rec.lost_end is None


def test_a_probe_acked_with_everything_below_it_marks_nothing_lost() -> None:
    cfg = TcpConfig(timestamps=False, sack=True, rto_min=1.0)
    solo, conn, our, peer = _connect(cfg, rtt=0.1, options=OPTS_SACK)
    conn.cc.cwnd = conn.cc.ssthresh = 2 * MSS
    conn.send(bytes(20 * MSS), solo.now)
    solo.take()
    solo.advance_to_next_timer()
    (probe,) = solo.take()  # only the ACKs were slow
    solo.send(peer, our + 2 * MSS, ACK)
    assert conn.stats["fast_retransmits"] == 0 and conn._rec.tlp_probe is None
    assert solo.layer.counters["tcp.probe_losses"] == 0


def _sack_of(our: int):
    return lambda *blocks: wire.build_options(sack_blocks=[(our + a, our + b) for a, b in blocks])


def test_in_recovery_one_segment_sacked_above_a_hole_marks_it_lost() -> None:
    """RACK in recovery (RFC 8985 6.2, reordering window 0): a partial ACK leaves a second hole with a
    single segment SACKed above it. That segment was sent after the hole and is delivered, so the hole is
    lost and goes out on this ACK; RFC 6675's three-segment IsLost alone would wait for the RTO (1 s)."""
    solo, conn, our, peer = _bulk(sack=True)
    sack = _sack_of(our)
    for blocks in (((2000, 3000),), ((2000, 4000),), ((2000, 5000),)):  # 1000 lost: fast retransmit
        solo.send(peer, our + MSS, ACK, options=sack(*blocks))
    assert [s.seq - our for s in solo.take()][:1] == [1000]
    solo.send(peer, our + 5 * MSS, ACK, options=sack((6000, 7000)))  # partial ACK; 5000 lost, 6000 above it
    assert 5000 in [s.seq - our for s in solo.take()]
    assert conn.stats["timeouts"] == 0


def test_a_retransmission_is_known_lost_once_anything_sent_after_it_is_sacked() -> None:
    """RACK (RFC 8985 6.2): the retransmission of the hole went out before the new data the recovery's
    ACKs clocked out; once any of that new data is SACKed while the hole is still open, the retransmission
    was lost and is sent again, not after the RTO."""
    solo, conn, our, peer = _bulk(sack=True)
    sack = _sack_of(our)
    for blocks in (((1000, 2000),), ((1000, 3000),), ((1000, 4000),)):  # 0 lost
        solo.send(peer, our, ACK, options=sack(*blocks))
    first = [s.seq - our for s in solo.take()]
    assert first[0] == 0
    conn.send(bytes(10 * MSS), solo.now)  # more to send: recovery clocks it out after the retransmission
    solo.take()
    solo.send(peer, our, ACK, options=sack((1000, 10000)))  # the rest arrives; new data goes out after
    after = [s.seq - our for s in solo.take()]
    assert after and min(after) >= 10 * MSS  # new data only: the retransmission may still arrive
    solo.send(peer, our, ACK, options=sack((1000, 10000), (after[0] + 0, after[0] + MSS)))  # one new SACKed
    again = [s.seq - our for s in solo.take()]
    assert 0 in again and conn.stats["timeouts"] == 0
    assert solo.layer.counters["tcp.lost_retransmissions"] == 1


def test_data_the_sws_override_sends_again_after_a_timeout_counts_as_a_retransmission() -> None:
    """After an RTO that a shrunken window held back (SWS avoidance: the persist timer instead), the
    override timeout sends from SND.UNA bytes that went out before: a retransmission like any other
    (Connection._sent), counted, and no RTT sample may come from their first transmission."""
    solo, conn, our, peer = _connect(TcpConfig(rto_min=0.2, tail_loss_probe=False), window=10000)
    conn.send(b"y" * 3000, solo.now)
    assert sum(len(s.payload) for s in solo.take()) == 3000
    solo.send(peer, our, ACK, window=500)  # acknowledges nothing, shrinks the window below what is out
    solo.advance_to_next_timer()  # the RTO: cwnd one segment, but 500 bytes is a window SWS avoidance holds
    solo.none()
    assert conn.snd_nxt == our and conn.stats["retransmits"] == 0
    solo.advance_to_next_timer()  # the persist timer: the override sends what fits
    seg = solo.one()
    assert (seg.seq, len(seg.payload)) == (our, 500)
    assert conn.stats["retransmits"] == 1 == solo.counters["tcp.retransmits"]
    assert conn.snd_nxt == our + 500 and conn.snd_max == our + 3000
