"""Layer-level behaviour: ports, listener addresses, timers, orphan timeouts, early writes."""

from __future__ import annotations

import errno

import pytest

from pystack.ports import PortRange
from pystack.tcp import State, TcpConfig
from pystack.wire.tcp import ACK, FIN, SYN

from .tcp_harness import IP_A, IP_B, LOCAL_PORT, PEER_PORT, Net, Solo
from .tcp_helpers import PEER_ISS, passive


def test_listen_twice_is_eaddrinuse() -> None:
    solo = Solo()
    solo.layer.listen(IP_B, 80, 1)
    with pytest.raises(OSError) as exc:
        solo.layer.listen(IP_B, 80, 1)
    assert exc.value.errno == errno.EADDRINUSE


def test_connect_same_tuple_twice_is_eaddrinuse() -> None:
    solo = Solo()
    solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=5555)
    with pytest.raises(OSError) as exc:
        solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=5555)
    assert exc.value.errno == errno.EADDRINUSE


def test_ephemeral_ports_are_in_range_and_distinct() -> None:
    solo = Solo()
    solo.layer.ephemeral = PortRange(40000, 40003)
    ports = {solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now).local_port for _ in range(4)}
    assert ports == {40000, 40001, 40002, 40003}
    with pytest.raises(OSError) as exc:
        solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now)
    assert exc.value.errno == errno.EADDRNOTAVAIL


def test_specific_address_listener_wins_over_wildcard() -> None:
    solo = Solo()
    wild = solo.layer.listen(0, 80, 1)
    exact = solo.layer.listen(IP_B, 80, 1)
    solo.send(PEER_ISS, 0, SYN)
    synack = solo.one()
    solo.send(PEER_ISS + 1, synack.seq + 1, ACK)
    assert exact.accept() is not None and wild.accept() is None


def test_data_written_before_the_handshake_goes_after_it() -> None:
    solo = Solo()
    conn = solo.layer.connect(IP_B, IP_A, PEER_PORT, solo.now, local_port=LOCAL_PORT)
    syn = solo.one()
    assert conn.send(b"early", solo.now) == 5
    solo.none()  # nothing but the SYN before the handshake
    solo.send(PEER_ISS, syn.seq + 1, SYN | ACK)
    [seg] = solo.take()
    assert bytes(seg.payload) == b"early" and seg.seq == syn.seq + 1 and seg.ack == PEER_ISS + 1


def test_orphaned_fin_wait_2_times_out() -> None:
    solo = Solo(TcpConfig(fin_wait2_timeout=5.0))
    _l, conn, synack = passive(solo)
    conn.close(solo.now)
    solo.one()
    solo.send(PEER_ISS + 1, synack.seq + 2, ACK)
    assert conn.state == State.FIN_WAIT_2
    solo.advance(4.9)
    assert conn.state == State.FIN_WAIT_2
    solo.advance(0.2)
    assert conn.state == State.CLOSED and not solo.layer.connections


def test_half_closed_fin_wait_2_waits_for_the_peer() -> None:
    solo = Solo(TcpConfig(fin_wait2_timeout=5.0))
    _l, conn, synack = passive(solo)
    conn.shutdown_write(solo.now)  # not closed: the application still reads
    solo.one()
    solo.send(PEER_ISS + 1, synack.seq + 2, ACK)
    solo.advance(100)
    assert conn.state == State.FIN_WAIT_2
    solo.send(PEER_ISS + 1, synack.seq + 2, FIN | ACK)
    assert conn.state == State.TIME_WAIT


def test_get_timer_is_none_when_idle_and_earliest_otherwise() -> None:
    net = Net()
    assert net.a.get_timer() is None
    c = net.a.connect(IP_A, IP_B, 9, net.now)  # nobody listens on B: RST
    assert net.a.get_timer() == pytest.approx(net.now + 1.0)
    net.run(for_=1)
    assert c.state == State.CLOSED and c.error == errno.ECONNREFUSED
    assert net.a.get_timer() is None and not net.a.connections


def test_recv_raises_blocking_when_empty_and_send_after_shutdown_is_epipe() -> None:
    solo = Solo()
    _l, conn, _s = passive(solo)
    with pytest.raises(BlockingIOError):
        conn.recv(10, solo.now)
    conn.shutdown_write(solo.now)
    with pytest.raises(BrokenPipeError):
        conn.send(b"x", solo.now)


def test_bad_input_never_raises() -> None:
    solo = Solo()
    _l, conn, _s = passive(solo)
    for junk in (b"", b"\x00" * 19, b"\xff" * 40, bytes(range(60))):
        solo.layer.receive(IP_A, IP_B, memoryview(junk), solo.now)
    assert conn.state == State.ESTABLISHED
    assert solo.counters.total_drops() == 4


def test_many_time_wait_connections_expire_in_order() -> None:
    net = Net(TcpConfig(time_wait=10.0), TcpConfig())
    lst = net.b.listen(IP_B, 80, 16)
    clients = []
    for i in range(5):
        c = net.a.connect(IP_A, IP_B, 80, net.now)
        net.run(for_=0.5)
        s = lst.accept()
        c.close(net.now)
        net.run(for_=0.5)
        s.close(net.now)
        net.run(for_=0.5)
        assert c.state == State.TIME_WAIT
        clients.append((c, net.now - 0.5 + 0.01))  # entered TIME-WAIT when the server's FIN arrived
    assert net.a.get_timer() == pytest.approx(clients[0][1] + 10.0)
    for c, entered in clients:
        net.run(until=entered + 10.0 - 0.001)
        assert c.state == State.TIME_WAIT
        net.run(until=entered + 10.0 + 0.001)
        assert c.state == State.CLOSED
    assert net.a.get_timer() is None and not net.a.connections


def test_get_timer_does_not_scan_idle_connections(monkeypatch) -> None:
    """With many idle connections, finding the next deadline looks at a handful, not all of them."""
    from pystack.tcp.connection import Connection

    net = Net(TcpConfig(), TcpConfig())
    lst = net.b.listen(IP_B, 80, 512)
    for _ in range(300):
        net.a.connect(IP_A, IP_B, 80, net.now)
    net.run(for_=1.0)
    while lst.accept() is not None:
        pass
    net.run(for_=5.0)  # everything acknowledged: idle
    calls = 0
    real = Connection.deadline

    def counting(self):
        nonlocal calls
        calls += 1
        return real(self)

    monkeypatch.setattr(Connection, "deadline", counting)
    for _ in range(100):
        net.a.get_timer()
        net.b.get_timer()
    assert calls < 50, f"{calls} deadline() calls for 200 get_timer() over 600 idle connections"
