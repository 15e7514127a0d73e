"""Data flow rules, one injected segment at a time: delayed ACK, out-of-order and SACK, windows,
zero-window probing, Nagle, SWS avoidance, MSS, PAWS."""

from __future__ import annotations

import pytest

from pystack.tcp import State, TcpConfig
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, FIN, PSH, SYN

from .tcp_harness import IP_B, LOCAL_PORT, Solo
from .tcp_helpers import PEER_ISS, active, passive

NO_TS = TcpConfig(timestamps=False, sack=True)


def _est(cfg: TcpConfig | None = None, options: bytes = wire.build_options(mss=1460, sack_permitted=True),
         window: int = 65535):
    solo = Solo(cfg or NO_TS)
    _l, conn, synack = passive(solo, options=options, window=window)
    return solo, conn, synack.seq + 1, PEER_ISS + 1


def test_delayed_ack_fires_after_ack_delay() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer, our, ACK | PSH, payload=b"x" * 100)
    solo.none()
    solo.advance(0.039)
    solo.none()
    solo.advance(0.002)
    ack = solo.one()
    assert (ack.flags, ack.ack) == (ACK, peer + 100)


def test_every_second_full_segment_is_acked_at_once() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer, our, ACK, payload=b"a" * 1460)
    solo.none()
    solo.send(peer + 1460, our, ACK, payload=b"b" * 1460)
    ack = solo.one()
    assert ack.ack == peer + 2920


def test_delayed_ack_off_acks_every_segment() -> None:
    solo, conn, our, peer = _est(TcpConfig(timestamps=False, delayed_ack=False))
    solo.send(peer, our, ACK, payload=b"a" * 10)
    assert solo.one().ack == peer + 10


def test_out_of_order_gets_immediate_sack_and_hole_fill_acks_all() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer + 100, our, ACK, payload=b"B" * 100)
    dup = solo.one()
    assert dup.ack == peer and dup.sack_blocks == ((peer + 100, peer + 200),)
    solo.send(peer + 300, our, ACK, payload=b"D" * 50)
    dup2 = solo.one()
    assert dup2.sack_blocks == ((peer + 300, peer + 350), (peer + 100, peer + 200))  # latest first (RFC 2018)
    solo.send(peer, our, ACK, payload=b"A" * 100)
    ack = solo.one()  # a hole filled: ACK at once
    assert ack.ack == peer + 200 and ack.sack_blocks == ((peer + 300, peer + 350),)
    assert conn.recv(1000, solo.now) == b"A" * 100 + b"B" * 100
    solo.send(peer + 200, our, ACK, payload=b"C" * 100)
    ack = solo.one()
    assert ack.ack == peer + 350 and ack.sack_blocks == ()
    assert conn.recv(1000, solo.now) == b"C" * 100 + b"D" * 50


def test_no_sack_blocks_unless_negotiated() -> None:
    solo, conn, our, peer = _est(options=wire.build_options(mss=1460))
    solo.send(peer + 100, our, ACK, payload=b"B" * 100)
    assert solo.one().sack_blocks == ()


def test_out_of_order_fin_is_held_until_the_gap_fills() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer + 5, our, FIN | ACK, payload=b"world")
    solo.take()
    assert conn.state == State.ESTABLISHED and not conn.readable
    solo.send(peer, our, ACK, payload=b"hello")
    ack = solo.one()
    assert ack.ack == peer + 11 and conn.state == State.CLOSE_WAIT
    assert conn.recv(100, solo.now) == b"helloworld" and conn.recv(100, solo.now) == b""


def test_overlapping_and_duplicate_segments_deliver_once() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer, our, ACK, payload=b"0123456789")
    solo.send(peer + 5, our, ACK, payload=b"56789ABCDE")  # overlaps the front
    solo.send(peer, our, ACK, payload=b"0123456789")  # entirely old: just an ACK
    assert conn.recv(100, solo.now) == b"0123456789ABCDE"
    assert solo.take()[-1].ack == peer + 15


def test_receive_window_tracks_buffer_and_reopens() -> None:
    cfg = TcpConfig(timestamps=False, window_scaling=False, recv_buffer=4000)
    solo, conn, our, peer = _est(cfg)
    solo.send(peer, our, ACK, payload=b"a" * 1460)
    solo.send(peer + 1460, our, ACK, payload=b"b" * 1460)
    ack = solo.one()
    assert ack.window == 4000 - 2920
    solo.send(peer + 2920, our, ACK, payload=b"c" * 1080)
    solo.advance(0.05)
    ack = solo.take()[-1]
    assert ack.ack == peer + 4000 and ack.window == 0
    # a zero-window probe: one byte at RCV.NXT is not taken, but answered with the current state
    solo.send(peer + 4000, our, ACK, payload=b"p")
    probe_ack = solo.one()
    assert (probe_ack.ack, probe_ack.window) == (peer + 4000, 0)
    assert conn.recv(1000, solo.now) == b"a" * 1000  # 1000 free: less than min(buffer/2, MSS), no update (SWS)
    solo.none()
    assert conn.recv(460, solo.now) == b"a" * 460  # 1460 free: the window opens by an MSS -> window update
    update = solo.one()
    assert (update.ack, update.window) == (peer + 4000, 1460)
    assert conn.recv(100, solo.now) == b"b" * 100  # a little more space: no update (SWS avoidance)
    solo.none()


def test_a_window_update_sent_by_recv_long_after_the_last_segment_carries_the_time_of_the_recv() -> None:
    """recv's ACK is stamped with the time recv is called at, not the time of the last segment handled."""
    cfg = TcpConfig(window_scaling=False, recv_buffer=2920)
    solo = Solo(cfg)
    _l, conn, synack = passive(solo, options=wire.build_options(mss=1460, timestamps=(1000, 0)))
    our, peer = synack.seq + 1, PEER_ISS + 1
    ts = wire.timestamp_option(1001, synack.ts_val)
    solo.send(peer, our, ACK, payload=b"a" * 1460, options=ts)
    solo.send(peer + 1460, our, ACK, payload=b"b" * 1460, options=ts)
    closed = solo.take()[-1]
    assert closed.window == 0
    solo.advance(100)  # nothing is owed, nothing in flight: no timer sends anything meanwhile
    solo.none()
    assert conn.recv(2920, solo.now) == b"a" * 1460 + b"b" * 1460
    update = solo.one()
    assert update.window == 2920
    assert update.ts_val - closed.ts_val == 100 * 1000  # RFC 7323 5.4: TSval ticks at 1 ms


def test_data_beyond_window_is_trimmed() -> None:
    cfg = TcpConfig(timestamps=False, window_scaling=False, recv_buffer=1000)
    solo, conn, our, peer = _est(cfg)
    solo.send(peer, our, ACK, payload=b"z" * 1460)
    solo.advance(1)
    assert conn.recv(5000, solo.now) == b"z" * 1000
    assert solo.take()[0].ack == peer + 1000


def test_window_scale_covers_the_receive_buffer_ceiling() -> None:
    """The shift is chosen once, in the SYN: it must reach the window the buffer may grow to (6 MiB: 7,
    as Linux's for its tcp_rmem[2]); without growth, the buffer itself."""
    for cfg, shift in ((TcpConfig(), 7), (TcpConfig(recv_buffer_max=0), 3)):
        solo = Solo(cfg)
        solo.layer.listen(IP_B, LOCAL_PORT, 4)
        solo.send(PEER_ISS, 0, SYN, 65535, options=wire.build_options(mss=1460, wscale=2))
        assert solo.one().wscale == shift


def test_window_scale_negotiated_and_applied() -> None:
    cfg = TcpConfig(timestamps=False, recv_buffer=1 << 20, recv_buffer_max=0)
    solo = Solo(cfg)
    lst = solo.layer.listen(IP_B, LOCAL_PORT, 4)
    solo.send(PEER_ISS, 0, SYN, 65535, options=wire.build_options(mss=1460, wscale=2))
    synack = solo.one()
    assert synack.wscale == 5 and synack.window == 65535  # 2**20 >> 5 fits 16 bits; SYN windows unscaled
    solo.send(PEER_ISS + 1, synack.seq + 1, ACK, 1000)  # peer window 1000 << 2
    conn = lst.accept()
    assert conn.snd_wnd == 4000
    solo.send(PEER_ISS + 1, synack.seq + 1, ACK, 1000, payload=b"q" * 1460)
    solo.advance(1)
    assert solo.one().window == ((1 << 20) - 1460 + 31) >> 5


def test_no_window_scale_when_peer_lacks_it() -> None:
    solo = Solo(TcpConfig(recv_buffer=1 << 20))
    solo.layer.listen(IP_B, LOCAL_PORT, 4)
    solo.send(PEER_ISS, 0, SYN, options=wire.build_options(mss=1460))
    synack = solo.one()
    assert synack.wscale is None and synack.ts_val is None and not synack.sack_permitted


@pytest.mark.parametrize(("mtu", "cfg_mss", "expect"), [(1500, None, 1460), (576, None, 536), (1500, 1000, 1000), (1500, 9000, 1460)])
def test_mss_option_clamped_to_mtu(mtu: int, cfg_mss: int | None, expect: int) -> None:
    solo = Solo(TcpConfig(mss=cfg_mss), mtu=mtu)
    solo.layer.listen(IP_B, LOCAL_PORT, 4)
    solo.send(PEER_ISS, 0, SYN)
    assert solo.one().mss == expect


def test_send_segments_respect_peer_mss_and_timestamps() -> None:
    solo = Solo(TcpConfig())
    _l, conn, synack = passive(solo, options=wire.build_options(mss=500, timestamps=(1, 0)))
    conn.send(b"x" * 2000, solo.now)
    segs = solo.take()
    assert [len(s.payload) for s in segs] == [488, 488, 488, 488]  # 500 - 12 bytes of timestamps
    assert all(s.ts_val is not None and s.ts_ecr == 1 for s in segs)
    solo.send(PEER_ISS + 1, synack.seq + 1 + 1952, ACK, options=wire.timestamp_option(2, segs[-1].ts_val))
    assert len(solo.one().payload) == 48  # the small tail waited for the ACK (Nagle)


def test_default_mss_536_without_option() -> None:
    solo = Solo(NO_TS)
    _l, conn, synack = passive(solo, options=b"")
    conn.set_nodelay(True, solo.now)
    conn.send(b"x" * 1000, solo.now)
    assert [len(s.payload) for s in solo.take()] == [536, 464]


def test_nagle_holds_small_segment_until_ack() -> None:
    solo, conn, our, peer = _est()
    conn.send(b"first", solo.now)
    assert bytes(solo.one().payload) == b"first"
    conn.send(b"second", solo.now)
    conn.send(b"third", solo.now)
    solo.none()  # Nagle: unacked data outstanding, small segment waits
    solo.send(peer, our + 5, ACK)
    seg = solo.one()
    assert bytes(seg.payload) == b"secondthird" and seg.seq == our + 5


def test_nodelay_sends_at_once() -> None:
    solo, conn, our, peer = _est()
    conn.set_nodelay(True, solo.now)
    conn.send(b"first", solo.now)
    conn.send(b"second", solo.now)
    assert [bytes(s.payload) for s in solo.take()] == [b"first", b"second"]


def test_send_buffer_is_bounded() -> None:
    solo, conn, our, peer = _est(TcpConfig(timestamps=False, send_buffer=3000, send_buffer_max=0))
    assert conn.send(b"x" * 5000, solo.now) == 3000
    assert not conn.writable and conn.send(b"y", solo.now) == 0
    solo.take()
    solo.send(peer, our + 1460, ACK)
    assert conn.writable and conn.send_space == 1460


def test_send_buffer_follows_twice_the_window_up_to_its_ceiling() -> None:
    solo, conn, our, peer = _est(TcpConfig(timestamps=False, send_buffer=3000, send_buffer_max=40000))
    assert conn.send(b"x" * 5000, solo.now) == 3000
    solo.take()
    solo.send(peer, our + 1460, ACK)  # slow start: cwnd grows by what was acknowledged
    assert conn._snd.cap == 2 * conn.cc.cwnd > 3000
    for _ in range(40):
        sent = [s for s in solo.take() if s.payload]
        conn.send(b"y" * conn.send_space, solo.now)
        if sent:
            solo.send(peer, (sent[-1].seq + len(sent[-1].payload)) & 0xFFFFFFFF, ACK)
    assert conn._snd.cap == 40000 < 2 * conn.cc.cwnd  # the ceiling holds


@pytest.mark.parametrize("empty", [False, True], ids=["new-byte", "linux-una-minus-1"])
def test_zero_window_probe_backoff_and_reopen(empty: bool) -> None:
    # RFC 9293 3.8.6.1's probe is one byte of new data; with window_probe_empty, Linux's: an ACK for
    # SND.UNA - 1 without data. Either way the same backoff, and the peer's answer reopens sending.
    solo, conn, our, peer = _est(TcpConfig(timestamps=False, sack=True, window_probe_empty=empty), window=1000)
    conn.send(b"d" * 3000, solo.now)
    first = solo.one()
    assert len(first.payload) == 1000
    solo.send(peer, our + 1000, ACK, window=0)
    solo.none()
    rto = conn.rtt.rto
    times = []
    for _ in range(3):
        t0 = solo.now
        solo.advance_to_next_timer()
        probe = solo.one()
        expected = (our + 999, b"") if empty else (our + 1000, b"d")
        assert (probe.seq, bytes(probe.payload), probe.flags, probe.ack) == (*expected, ACK, peer)
        times.append(solo.now - t0)
        solo.send(peer, our + 1000, ACK, window=0)  # still closed
    assert times[0] == pytest.approx(max(rto, 0.2)) and times[1] == pytest.approx(2 * times[0])
    assert times[2] == pytest.approx(4 * times[0])
    assert conn.state == State.ESTABLISHED  # probes answered: never times out
    solo.send(peer, our + 1000, ACK, window=4000)  # window update
    seg = solo.one()  # a full segment; the 540-byte tail waits for its ACK (Nagle)
    assert (seg.seq, len(seg.payload)) == (our + 1000, 1460)
    solo.send(peer, our + 2460, ACK, window=4000)
    tail = solo.one()
    assert (tail.seq, len(tail.payload)) == (our + 2460, 540)


@pytest.mark.parametrize("empty", [False, True], ids=["new-byte", "linux-una-minus-1"])
def test_answered_zero_window_probes_never_time_out(empty: bool) -> None:
    # RFC 1122 4.2.2.17: while the peer answers the probes, the connection MUST stay open however long
    # its window stays closed; only unanswered probes count towards max_retries.
    cfg = TcpConfig(timestamps=False, window_probe_empty=empty, max_retries=3)
    solo, conn, our, peer = _est(cfg, window=1000)
    conn.send(b"d" * 3000, solo.now)
    solo.one()
    solo.send(peer, our + 1000, ACK, window=0)
    for _ in range(10):
        solo.advance_to_next_timer()
        assert len(solo.take()) == 1
        solo.send(peer, our + 1000, ACK, window=0)  # answered, still closed
    assert conn.state == State.ESTABLISHED
    for _ in range(4):  # now unanswered
        solo.advance_to_next_timer()
    assert conn.state == State.CLOSED and conn.error == 110  # ETIMEDOUT


def test_zero_window_probe_accepted_when_window_reopened_silently() -> None:
    solo, conn, our, peer = _est(window=100)
    conn.send(b"d" * 300, solo.now)
    solo.take()
    solo.send(peer, our + 100, ACK, window=0)
    solo.advance_to_next_timer()
    probe = solo.one()
    solo.send(peer, our + 101, ACK, window=1000)  # the receiver took the probe byte
    rest = solo.take()
    assert rest[0].seq == our + 101 and sum(len(s.payload) for s in rest) == 199


def test_sws_override_sends_small_window_after_timeout() -> None:
    solo, conn, our, peer = _est(window=4000)
    conn.send(b"s" * 6000, solo.now)
    sent = solo.take()
    assert sum(len(s.payload) for s in sent) == 2920  # 1080 more would fit, but < max window / 2
    solo.send(peer, our + 2920, ACK, window=100)  # all acked, but a tiny window: SWS avoidance waits
    solo.none()
    solo.advance_to_next_timer()  # ... until the override timeout (RFC 9293 3.8.6.2.1)
    seg = solo.one()
    assert len(seg.payload) == 100 and seg.seq == our + 2920


def test_paws_drops_old_timestamp() -> None:
    solo = Solo(TcpConfig())
    _l, conn, synack = passive(solo, options=wire.build_options(mss=1460, timestamps=(1000, 0)))
    our, peer = synack.seq + 1, PEER_ISS + 1
    ts_new = wire.timestamp_option(1010, synack.ts_val)
    solo.send(peer, our, ACK, payload=b"new", options=ts_new)
    solo.advance(1)
    solo.take()
    solo.send(peer + 3, our, ACK, payload=b"old", options=wire.timestamp_option(900, synack.ts_val))
    ack = solo.one()
    assert ack.ack == peer + 3 and ack.ts_ecr == 1010
    assert conn.recv(100, solo.now) == b"new"
    assert solo.counters.drops()["tcp.paws"] == 1


def test_timestamps_echo_and_negotiation_on_active_open() -> None:
    solo = Solo(TcpConfig())
    conn, syn, ack = active(solo, options=wire.build_options(mss=1460, timestamps=(77, 0)))
    assert syn.ts_val is not None and syn.ts_ecr == 0 and syn.sack_permitted and syn.wscale is not None
    assert ack.ts_ecr == 77
    conn.send(b"hi", solo.now)
    assert solo.one().ts_ecr == 77


def test_keepalive_probes_then_times_out() -> None:
    cfg = TcpConfig(timestamps=False, keepalive=True, keepalive_idle=10, keepalive_interval=2, keepalive_probes=3)
    solo, conn, our, peer = _est(cfg)
    solo.advance(9.9)
    solo.none()
    solo.advance(0.2)
    probe = solo.one()
    assert probe.seq == our - 1 and len(probe.payload) == 0
    solo.send(peer, our, ACK)  # answered: back to idle
    solo.advance(9.9)
    solo.none()
    solo.advance(0.2 + 2 * 3)
    assert len(solo.take()) == 3
    assert conn.state == State.CLOSED and conn.error == 110  # ETIMEDOUT


def test_setting_nodelay_flushes_what_nagle_held() -> None:
    solo, conn, our, peer = _est()
    conn.send(b"first", solo.now)
    solo.one()
    conn.send(b"held", solo.now)
    solo.none()
    conn.set_nodelay(True, solo.now)
    assert bytes(solo.one().payload) == b"held"


def test_enabling_keepalive_later_arms_the_idle_timer() -> None:
    cfg = TcpConfig(timestamps=False, keepalive_idle=10, keepalive_interval=2, keepalive_probes=3)
    solo, conn, our, peer = _est(cfg)
    assert conn.keepalive is False
    solo.advance(50)
    solo.none()
    conn.set_keepalive(True, solo.now)
    solo.advance(10.1)
    assert solo.one().seq == our - 1
    conn.set_keepalive(False, solo.now)
    solo.advance(100)
    solo.none()
    assert conn.state == State.ESTABLISHED
