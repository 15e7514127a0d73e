"""RST generation and processing (RFC 9293 3.10.7, RFC 5961), each as one injected segment and the
exact reply expected."""

from __future__ import annotations

import errno

import pytest

from pystack.tcp import State, TcpConfig
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, FIN, PSH, RST, SYN

from .tcp_harness import IP_A, IP_B, LOCAL_PORT, PEER_PORT, Solo
from .tcp_helpers import PEER_ISS, active, passive


@pytest.mark.parametrize(
    ("flags", "payload", "expect_ack"),
    [
        (SYN, b"", 1001),  # RFC 9293 3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
        (SYN, b"abc", 1004),
        (FIN, b"xy", 1003),
        (0, b"zzzz", 1004),
    ],
)
def test_closed_port_without_ack_gets_rst_ack(flags: int, payload: bytes, expect_ack: int) -> None:
    solo = Solo()
    solo.send(1000, 0, flags, payload=payload)
    rst = solo.one()
    assert (rst.flags, rst.seq, rst.ack, rst.window) == (RST | ACK, 0, expect_ack, 0)
    assert (rst.src_port, rst.dst_port) == (LOCAL_PORT, PEER_PORT)
    assert solo.counters.drops() == {"tcp.no_socket": 1}


def test_closed_port_with_ack_gets_rst_at_ack() -> None:
    solo = Solo()
    solo.send(1000, 777777, ACK | PSH, payload=b"data")
    rst = solo.one()
    assert (rst.flags, rst.seq, rst.ack) == (RST, 777777, 0)


def test_closed_port_rst_is_not_answered() -> None:
    solo = Solo()
    solo.send(1000, 5, RST | ACK)
    solo.none()


def test_listener_answers_ack_with_rst_and_ignores_rst() -> None:
    solo = Solo()
    solo.layer.listen(IP_B, LOCAL_PORT, 4)
    solo.send(1000, 4242, ACK)
    rst = solo.one()
    assert (rst.flags, rst.seq) == (RST, 4242)
    solo.send(1000, 0, RST)
    solo.none()
    solo.send(1000, 0, FIN)  # neither SYN nor ACK: dropped
    solo.none()


def test_bad_checksum_is_dropped_silently() -> None:
    solo = Solo()
    raw = bytearray(wire.build(IP_A, IP_B, PEER_PORT, LOCAL_PORT, 1, 0, SYN, 100))
    raw[4] ^= 0xFF
    solo.layer.receive(IP_A, IP_B, memoryview(raw), solo.now)
    solo.none()
    assert solo.counters.drops() == {"tcp.bad_checksum": 1}


def test_syn_sent_rst_rules() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    solo.send(0, 0, RST)  # no ACK: ignored (RFC 9293 3.10.7.3)
    solo.send(0, syn.seq + 5, RST | ACK)  # unacceptable ACK: ignored
    solo.none()
    assert conn.state == State.SYN_SENT
    solo.send(9, syn.seq + 5, ACK)  # unacceptable ACK without RST: <SEQ=SEG.ACK><CTL=RST>
    rst = solo.one()
    assert (rst.flags, rst.seq) == (RST, syn.seq + 5)
    assert conn.state == State.SYN_SENT
    solo.send(0, syn.seq + 1, RST | ACK)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNREFUSED
    solo.none()


def test_syn_received_bad_ack_gets_rst() -> None:
    solo = Solo()
    solo.layer.listen(IP_B, LOCAL_PORT, 4)
    solo.send(PEER_ISS, 0, SYN)
    synack = solo.one()
    solo.send(PEER_ISS + 1, synack.seq + 10, ACK)
    rst = solo.one()
    assert (rst.flags, rst.seq) == (RST, synack.seq + 10)
    [conn] = solo.layer.connections.values()
    assert conn.state == State.SYN_RECEIVED


def _est(cfg: TcpConfig | None = None):
    solo = Solo(cfg)
    _l, conn, synack = passive(solo)
    return solo, conn, synack.seq + 1, PEER_ISS + 1


def test_exact_rst_resets_connection() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer, 0, RST)
    solo.none()
    assert conn.state == State.CLOSED and conn.error == errno.ECONNRESET
    with pytest.raises(ConnectionResetError):
        conn.recv(10, solo.now)


def test_in_window_rst_gets_challenge_ack() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer + 100, 0, RST)  # RFC 5961 3.2
    ack = solo.one()
    assert (ack.flags, ack.seq, ack.ack) == (ACK, our, peer)
    assert conn.state == State.ESTABLISHED
    assert solo.counters["tcp.challenge_acks"] == 1


def test_out_of_window_rst_is_ignored() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer + 10_000_000, 0, RST)
    solo.send(peer - 1, 0, RST)
    solo.none()
    assert conn.state == State.ESTABLISHED


def test_syn_in_established_gets_challenge_ack() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer + 12345, 0, SYN)  # RFC 5961 4.2, whatever the sequence number
    ack = solo.one()
    assert (ack.flags, ack.seq, ack.ack) == (ACK, our, peer)
    assert conn.state == State.ESTABLISHED


def test_challenge_acks_are_rate_limited() -> None:
    solo, conn, our, peer = _est(TcpConfig(challenge_ack_limit=2))
    for i in range(5):
        solo.send(peer + 10 + i, 0, RST)
    assert len(solo.take()) == 2
    assert solo.counters.drops()["tcp.challenge_ack_limited"] == 3
    solo.advance(1.0)
    solo.send(peer + 10, 0, RST)
    assert len(solo.take()) == 1


def test_ack_of_unsent_data_is_answered_and_dropped() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer, our + 500, ACK | PSH, payload=b"data")
    ack = solo.one()
    assert (ack.flags, ack.seq, ack.ack) == (ACK, our, peer)
    assert conn.recv_available == 0  # the segment was dropped (RFC 9293 3.10.7.4 fifth step)


def test_ack_too_old_is_challenged() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer, our - 200_000, ACK | PSH, payload=b"data")  # RFC 5961 5.2: below SND.UNA - MAX.SND.WND
    ack = solo.one()
    assert ack.ack == peer and conn.recv_available == 0


def test_rst_in_time_wait_closes() -> None:
    solo, conn, our, peer = _est()
    conn.close(solo.now)
    solo.one()
    solo.send(peer, our + 1, FIN | ACK)
    solo.one()
    solo.send(peer + 1, 0, RST)
    assert conn.state == State.CLOSED and conn.error is None


def test_close_with_unread_data_sends_rst() -> None:
    solo, conn, our, peer = _est()
    solo.send(peer, our, ACK | PSH, payload=b"unread")
    solo.advance(1)
    solo.take()
    conn.close(solo.now)
    rst = solo.one()
    assert (rst.flags, rst.seq, rst.ack) == (RST | ACK, our, peer + 6)
    assert conn.state == State.CLOSED and not solo.layer.connections


def test_abort_sends_rst() -> None:
    solo, conn, our, peer = _est()
    conn.abort(solo.now)
    rst = solo.one()
    assert rst.flags & RST and rst.seq == our
    assert conn.state == State.CLOSED


def test_data_after_close_is_reset() -> None:
    solo, conn, our, peer = _est()
    conn.close(solo.now)
    solo.one()  # FIN
    solo.send(peer, our + 1, ACK | PSH, payload=b"late")
    rst = solo.one()
    assert rst.flags & RST and rst.seq == our + 1
    assert conn.state == State.CLOSED


def test_syn_reuses_time_wait_tuple_when_newer() -> None:
    solo, conn, our, peer = _est()
    conn.close(solo.now)
    solo.one()
    solo.send(peer, our + 1, FIN | ACK)
    solo.one()
    assert conn.state == State.TIME_WAIT
    solo.send(peer + 100_000, 0, SYN)  # RFC 9293 3.6.1: a new incarnation with a higher sequence number
    synack = solo.one()
    assert synack.flags == SYN | ACK and synack.ack == peer + 100_001
    assert conn.state == State.CLOSED


def test_active_open_ignores_old_duplicate_and_completes() -> None:
    solo = Solo()
    conn, syn, _ack = active(solo)
    assert conn.state == State.ESTABLISHED
    solo.send(PEER_ISS, syn.seq + 1, SYN | ACK)  # a repeated SYN-ACK: our ACK was lost
    ack = solo.one()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 1
    assert conn.state == State.ESTABLISHED
