"""Every transition of RFC 9293 figure 5, driven segment by segment."""

from __future__ import annotations

import errno

import pytest

from pystack.tcp import State, TcpConfig
from pystack.wire.tcp import ACK, FIN, SYN

from .tcp_harness import IP_A, IP_B, LOCAL_PORT, PEER_PORT, Net, Solo, drain
from .tcp_helpers import PEER_ISS, passive


def test_passive_open_listen_synrcvd_established() -> None:
    solo = Solo()
    lst = solo.layer.listen(IP_B, LOCAL_PORT, 4)
    assert lst.state == State.LISTEN
    solo.send(PEER_ISS, 0, SYN)
    synack = solo.one()
    assert synack.flags == SYN | ACK and synack.ack == PEER_ISS + 1
    assert lst.half_open == 1 and lst.accept() is None
    [conn] = solo.layer.connections.values()
    assert conn.state == State.SYN_RECEIVED
    solo.send(PEER_ISS + 1, synack.seq + 1, ACK)
    solo.none()
    assert conn.state == State.ESTABLISHED and lst.half_open == 0 and lst.accept() is conn


def test_active_open_synsent_established() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    assert conn.state == State.SYN_SENT and not conn.writable
    syn = solo.one()
    assert syn.flags == SYN and syn.seq == conn.iss
    solo.send(PEER_ISS, syn.seq + 1, SYN | ACK)
    assert conn.state == State.ESTABLISHED and conn.writable
    ack = solo.one()
    assert (ack.flags, ack.seq, ack.ack) == (ACK, syn.seq + 1, PEER_ISS + 1)


def test_syn_sent_close_deletes_tcb() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now)
    solo.take()
    conn.close(solo.now)
    assert conn.state == State.CLOSED and conn.error is None
    assert not solo.layer.connections and solo.layer.get_timer() is None
    solo.none()


def test_simultaneous_open_through_synrcvd() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    solo.send(PEER_ISS, 0, SYN)  # the peer's SYN crosses ours
    assert conn.state == State.SYN_RECEIVED
    synack = solo.one()
    assert synack.flags == SYN | ACK and synack.seq == syn.seq and synack.ack == PEER_ISS + 1
    solo.send(PEER_ISS + 1, syn.seq + 1, ACK)
    assert conn.state == State.ESTABLISHED


def test_simultaneous_open_two_layers() -> None:
    net = Net()
    a = net.a.connect(IP_A, IP_B, 7000, net.now, local_port=6000)
    b = net.b.connect(IP_B, IP_A, 6000, net.now, local_port=7000)
    net.run(for_=5)
    assert a.state == b.state == State.ESTABLISHED
    a.send(b"ping", net.now)
    b.send(b"pong", net.now)
    net.run(for_=1)
    assert b.recv(10, net.now) == b"ping" and a.recv(10, net.now) == b"pong"


def test_synrcvd_close_sends_fin_after_handshake() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    solo.send(PEER_ISS, 0, SYN)
    solo.one()
    conn.close(solo.now)
    assert conn.state == State.SYN_RECEIVED
    solo.send(PEER_ISS + 1, syn.seq + 1, ACK)
    assert conn.state == State.FIN_WAIT_1
    fin = solo.one()
    assert fin.flags == FIN | ACK and fin.seq == syn.seq + 1


def test_synrcvd_rst_returns_to_listen() -> None:
    solo = Solo()
    lst = solo.layer.listen(IP_B, LOCAL_PORT, 4)
    solo.send(PEER_ISS, 0, SYN)
    solo.one()
    solo.send(PEER_ISS + 1, 0, 0x04)  # RST with the exact sequence number
    assert lst.half_open == 0 and not solo.layer.connections
    solo.none()
    solo.send(PEER_ISS + 100, 0, SYN)  # the listener still works
    assert solo.one().flags == SYN | ACK


def _established() -> tuple[Solo, object, int, int]:
    solo = Solo()
    _lst, conn, synack = passive(solo)
    return solo, conn, synack.seq + 1, PEER_ISS + 1  # our next seq, peer's next seq


def test_active_close_finwait1_finwait2_timewait_closed() -> None:
    solo, conn, our, peer = _established()
    conn.close(solo.now)
    assert conn.state == State.FIN_WAIT_1
    fin = solo.one()
    assert fin.flags == FIN | ACK and fin.seq == our
    solo.send(peer, our + 1, ACK)
    assert conn.state == State.FIN_WAIT_2
    solo.send(peer, our + 1, FIN | ACK)
    assert conn.state == State.TIME_WAIT
    ack = solo.one()
    assert (ack.flags, ack.seq, ack.ack) == (ACK, our + 1, peer + 1)
    solo.advance(59.9)
    assert conn.state == State.TIME_WAIT  # 2 MSL = 60 s by default
    solo.advance(0.2)
    assert conn.state == State.CLOSED and not solo.layer.connections and conn.error is None


def test_finwait1_closing_timewait() -> None:
    solo, conn, our, peer = _established()
    conn.close(solo.now)
    solo.one()
    solo.send(peer, our, FIN | ACK)  # their FIN does not ack ours: simultaneous close
    assert conn.state == State.CLOSING
    assert solo.one().ack == peer + 1
    solo.send(peer + 1, our + 1, ACK)
    assert conn.state == State.TIME_WAIT


def test_finwait1_fin_with_ack_goes_straight_to_timewait() -> None:
    solo, conn, our, peer = _established()
    conn.close(solo.now)
    solo.one()
    solo.send(peer, our + 1, FIN | ACK)
    assert conn.state == State.TIME_WAIT


def test_passive_close_closewait_lastack_closed() -> None:
    solo, conn, our, peer = _established()
    solo.send(peer, our, FIN | ACK)
    assert conn.state == State.CLOSE_WAIT and conn.recv(10, solo.now) == b""
    assert solo.one().ack == peer + 1  # a FIN is acknowledged at once
    conn.close(solo.now)
    assert conn.state == State.LAST_ACK
    fin = solo.one()
    assert fin.flags == FIN | ACK and fin.seq == our
    solo.send(peer + 1, our + 1, ACK)
    assert conn.state == State.CLOSED and not solo.layer.connections and conn.error is None


def test_time_wait_acks_repeated_fin_and_restarts_2msl() -> None:
    solo, conn, our, peer = _established()
    conn.close(solo.now)
    solo.one()
    solo.send(peer, our + 1, FIN | ACK)
    solo.one()
    solo.advance(30)
    solo.send(peer, our + 1, FIN | ACK)  # our last ACK was lost
    ack = solo.one()
    assert ack.flags == ACK and ack.ack == peer + 1
    solo.advance(59)
    assert conn.state == State.TIME_WAIT
    solo.advance(2)
    assert conn.state == State.CLOSED


def test_time_wait_is_configurable_and_bounded() -> None:
    solo = Solo(TcpConfig(time_wait=1.0, max_time_wait=0))
    _l, conn, synack = passive(solo)
    conn.close(solo.now)
    solo.one()
    solo.send(PEER_ISS + 1, synack.seq + 2, FIN | ACK)
    assert conn.state == State.CLOSED  # no TIME-WAIT slot left: closed at once, after the ACK
    assert solo.one().flags == ACK
    assert solo.counters["tcp.time_wait_overflow"] == 1


def test_half_close_keeps_receiving() -> None:
    solo, conn, our, peer = _established()
    conn.shutdown_write(solo.now)
    assert conn.state == State.FIN_WAIT_1
    solo.one()
    solo.send(peer, our + 1, ACK, payload=b"more data")
    assert conn.state == State.FIN_WAIT_2 and conn.recv(100, solo.now) == b"more data"
    solo.send(peer + 9, our + 1, FIN | ACK, payload=b"!")
    assert conn.recv(100, solo.now) == b"!" and conn.recv(100, solo.now) == b""
    assert conn.state == State.TIME_WAIT


def test_half_close_two_layers_both_directions() -> None:
    net = Net()
    lst = net.b.listen(IP_B, 80, 1)
    c = net.a.connect(IP_A, IP_B, 80, net.now)
    net.run(for_=1)
    s = lst.accept()
    c.send(b"request", net.now)
    c.shutdown_write(net.now)
    net.run(for_=1)
    assert s.recv(100, net.now) == b"request" and s.recv(100, net.now) == b"" and s.state == State.CLOSE_WAIT
    assert c.state == State.FIN_WAIT_2
    s.send(b"response after half-close", net.now)
    s.close(net.now)
    net.run(for_=1)
    got = bytearray()
    drain(c, got)
    assert got == b"response after half-close" and c.recv(10, net.now) == b""
    assert c.state == State.TIME_WAIT and s.state == State.CLOSED
    net.run()
    assert c.state == State.CLOSED and not net.a.connections and not net.b.connections


def test_simultaneous_close_two_layers() -> None:
    net = Net()
    lst = net.b.listen(IP_B, 80, 1)
    c = net.a.connect(IP_A, IP_B, 80, net.now)
    net.run(for_=1)
    s = lst.accept()
    c.close(net.now)
    s.close(net.now)
    net.run(for_=1)
    assert c.state == s.state == State.TIME_WAIT
    assert net.counters_a["tcp.state.CLOSING"] == 1 and net.counters_b["tcp.state.CLOSING"] == 1
    net.run()
    assert c.state == s.state == State.CLOSED and c.error is None and s.error is None


def test_listener_close_resets_pending_connections() -> None:
    solo = Solo()
    lst, conn, synack = passive(solo)
    lst2_conn_syn = solo.send(PEER_ISS + 50, 0, SYN, sport=PEER_PORT + 1)
    assert lst2_conn_syn is None
    solo.take()
    lst._accept_queue.append(conn)  # not yet accepted
    lst.close(solo.now)
    rsts = [s for s in solo.take() if s.flags & 0x04]
    assert len(rsts) == 2
    assert conn.state == State.CLOSED and not solo.layer.listeners and not solo.layer.connections
    solo.send(PEER_ISS, 0, SYN)
    assert solo.one().flags & 0x04  # the port is closed now


def test_connect_refused_error() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    solo.send(0, syn.seq + 1, 0x04 | ACK)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNREFUSED
    assert conn.readable and conn.writable
    try:
        conn.send(b"x", solo.now)
    except OSError as exc:
        assert exc.errno == errno.ECONNREFUSED
    else:
        raise AssertionError("send on a refused connection must fail")


def test_on_event_fires_for_readable_writable_closed() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    events: list[tuple[bool, bool, State]] = []
    conn.on_event = lambda: events.append((conn.readable, conn.writable, conn.state))
    syn = solo.one()
    solo.send(PEER_ISS, syn.seq + 1, SYN | ACK, options=b"")
    assert events[-1] == (False, True, State.ESTABLISHED)
    solo.send(PEER_ISS + 1, syn.seq + 1, ACK | 0x08, payload=b"hi")
    assert events[-1][0] is True
    solo.send(PEER_ISS + 3, syn.seq + 1, 0x04)
    assert events[-1][2] == State.CLOSED
    lst = solo.layer.listen(IP_B, 81, 1)
    fired = []
    lst.on_event = lambda: fired.append(lst.readable)
    solo.send(1, 0, SYN, dport=81)
    synack = solo.take()[-1]
    solo.send(2, synack.seq + 1, ACK, dport=81)
    assert fired == [True]


def test_handshake_survives_lost_syn_synack_and_final_ack() -> None:
    net = Net()
    lost = {"syn": 1, "synack": 1, "ack": 1}

    def drop(sent) -> bool:
        kind = {0x02: "syn", 0x12: "synack", 0x10: "ack"}.get(sent.flags)
        if kind and lost[kind] and not len(sent.seg.payload):
            lost[kind] -= 1
            return True
        return False

    net.drop_filter = drop
    lst = net.b.listen(IP_B, 80, 1)
    c = net.a.connect(IP_A, IP_B, 80, net.now)
    t0 = net.now
    net.run(stop=lambda: c.state == State.ESTABLISHED)
    assert net.now - t0 == pytest.approx(2.02)  # SYN again after 1 s, SYN-ACK again after its own 1 s
    assert lst.pending == 0  # the final ACK was lost: the server is still half-open
    c.send(b"first data", net.now)  # data carries the ACK that completes the server's handshake
    net.run(for_=1)
    s = lst.accept()
    assert s is not None and s.recv(100, net.now) == b"first data"
    assert lost == {"syn": 0, "synack": 0, "ack": 0}
