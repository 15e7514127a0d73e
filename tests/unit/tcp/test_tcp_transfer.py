"""Two layers over the fake network: bulk data both ways under seeded loss, reordering, duplication
and corruption must arrive exactly once and in order, and both ends must close cleanly."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystack.tcp import State, TcpConfig

from .tcp_harness import IP_A, IP_B, Impairment, Net, drain


def _exchange(net: Net, size_ab: int, size_ba: int, seed: int, limit: float = 20_000.0) -> None:
    # The handshake runs on a clean wire: under heavy loss it can fail for good (that is TCP), and
    # handshake losses have their own tests. Impairments start with the data.
    impair, net.impair = net.impair, Impairment()
    lst = net.b.listen(IP_B, 80, 4)
    client = net.a.connect(IP_A, IP_B, 80, net.now)
    net.run(stop=lambda: lst.pending > 0, until=net.now + 600)
    server = lst.accept()
    assert server is not None and client.state == State.ESTABLISHED
    net.impair = impair
    rng = random.Random(seed)
    data_ab, data_ba = rng.randbytes(size_ab), rng.randbytes(size_ba)
    got_ab, got_ba = bytearray(), bytearray()
    sent_ab = sent_ba = 0
    closed_a = closed_b = False
    deadline = net.now + limit
    while True:
        if sent_ab < size_ab and client.writable:
            sent_ab += client.send(data_ab[sent_ab:sent_ab + rng.randint(1, 50_000)], net.now)
        if sent_ba < size_ba and server.writable:
            sent_ba += server.send(data_ba[sent_ba:sent_ba + rng.randint(1, 50_000)], net.now)
        if sent_ab == size_ab and not closed_a:
            client.shutdown_write(net.now)
            closed_a = True
        if sent_ba == size_ba and not closed_b:
            server.shutdown_write(net.now)
            closed_b = True
        drain(server, got_ab)
        drain(client, got_ba)
        if server.at_eof and client.at_eof and closed_a and closed_b:
            break
        assert net.step() and net.now < deadline, (len(got_ab), size_ab, len(got_ba), size_ba, client, server)
    assert got_ab == data_ab and got_ba == data_ba
    client.close(net.now)
    server.close(net.now)
    net.run(until=net.now + limit)
    assert client.state == State.CLOSED and server.state == State.CLOSED
    assert client.error is None and server.error is None
    assert not net.a.connections and not net.b.connections


def test_bulk_both_ways_clean_network() -> None:
    net = Net()
    _exchange(net, 3_000_000, 1_000_000, seed=1)
    assert net.counters_a["tcp.retransmits"] == 0 and net.counters_b["tcp.retransmits"] == 0
    assert net.counters_a.total_drops() == 0 and net.counters_b.total_drops() == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    loss=st.sampled_from([0.0, 0.02, 0.1, 0.2]),
    duplicate=st.sampled_from([0.0, 0.05, 0.2]),
    reorder=st.sampled_from([0.0, 0.1, 0.4]),
    corrupt=st.sampled_from([0.0, 0.02, 0.05]),
    size_ab=st.integers(0, 150_000),
    size_ba=st.integers(0, 40_000),
    sack=st.booleans(),
    timestamps=st.booleans(),
    window_scaling=st.booleans(),
    small=st.booleans(),
    mtu=st.sampled_from([576, 1500]),
)
def test_impaired_network_delivers_every_byte_once_in_order(
    seed, loss, duplicate, reorder, corrupt, size_ab, size_ba, sack, timestamps, window_scaling, small, mtu,
) -> None:
    def cfg() -> TcpConfig:
        c = TcpConfig(sack=sack, timestamps=timestamps, window_scaling=window_scaling, max_retries=30)
        if small:
            c.recv_buffer, c.send_buffer, c.ooo_max_segments = 3000, 2000, 4
        return c
    impair = Impairment(loss=loss, duplicate=duplicate, reorder=reorder, corrupt=corrupt)
    net = Net(cfg(), cfg(), seed=seed % 1000, impair=impair, mtu=mtu)
    _exchange(net, size_ab, size_ba, seed)
    if not (loss or duplicate or reorder or corrupt):
        assert net.counters_a["tcp.retransmits"] == 0 and net.counters_b["tcp.retransmits"] == 0


def test_corrupted_segments_are_counted_and_repaired() -> None:
    net = Net(impair=Impairment(corrupt=0.2), seed=5)
    _exchange(net, 200_000, 50_000, seed=5)
    bad = net.counters_a.drops().get("tcp.bad_checksum", 0) + net.counters_b.drops().get("tcp.bad_checksum", 0)
    assert bad > 10


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), reader_pause=st.floats(1.0, 30.0))
def test_slow_reader_zero_window_then_resume(seed: int, reader_pause: float) -> None:
    cfg_b = TcpConfig(recv_buffer=8000)
    net = Net(TcpConfig(), cfg_b, seed=seed)
    lst = net.b.listen(IP_B, 80, 1)
    client = net.a.connect(IP_A, IP_B, 80, net.now)
    net.run(for_=1)
    server = lst.accept()
    data = random.Random(seed).randbytes(50_000)
    sent = client.send(data, net.now)
    net.run(for_=reader_pause)  # nobody reads: the window closes, the sender probes
    assert server.recv_available <= 8000 + 128
    assert client.state == State.ESTABLISHED
    got = bytearray()
    while len(got) < len(data):
        drain(server, got)
        if sent < len(data) and client.writable:
            sent += client.send(data[sent:], net.now)
        assert net.step() or server.recv_available
    assert got == data
    assert net.counters_a["tcp.window_probes"] >= 1


def test_listen_backlog_bounds_accept_queue() -> None:
    cfg_b = TcpConfig(syn_backlog=8)
    net = Net(TcpConfig(), cfg_b)
    lst = net.b.listen(IP_B, 80, 2)
    clients = [net.a.connect(IP_A, IP_B, 80, net.now) for _ in range(4)]
    net.run(for_=0.5)
    assert lst.pending == 2  # further handshakes are not completed while the queue is full
    assert net.counters_b.drops().get("tcp.listen_queue_full", 0) + net.counters_b.drops().get("tcp.accept_queue_full", 0) >= 2
    accepted = [lst.accept(), lst.accept()]
    net.run(for_=10)  # the others retry (SYN or SYN-ACK retransmission) and get in
    accepted += [lst.accept(), lst.accept()]
    assert all(c is not None for c in accepted)
    assert all(c.state == State.ESTABLISHED for c in clients)
    assert {c.remote_port for c in accepted} == {c.local_port for c in clients}


def test_syn_backlog_bounds_half_open() -> None:
    net = Net(TcpConfig(), TcpConfig(syn_backlog=2, syncookies=False))
    lst = net.b.listen(IP_B, 80, 16)
    net.drop_filter = lambda s: s.src == IP_A and not (s.flags & 0x02)  # the clients' final ACKs are lost
    for _ in range(5):
        net.a.connect(IP_A, IP_B, 80, net.now)
    net.run(for_=0.05)
    assert lst.half_open == 2
    assert net.counters_b.drops()["tcp.listen_queue_full"] == 3


def test_many_connections_interleaved() -> None:
    net = Net(impair=Impairment(loss=0.05, reorder=0.2), seed=3)
    lst = net.b.listen(0, 80, 64)  # wildcard address
    clients = [net.a.connect(IP_A, IP_B, 80, net.now) for _ in range(20)]
    net.run(for_=30, stop=lambda: lst.pending == 20)
    servers = {}
    while (s := lst.accept()) is not None:
        servers[s.remote_port] = s
    assert len(servers) == 20
    for i, c in enumerate(clients):
        c.send(bytes([i]) * (1000 * (i + 1)), net.now)
        c.shutdown_write(net.now)
    net.run(for_=60)
    for i, c in enumerate(clients):
        s = servers[c.local_port]
        got = bytearray()
        drain(s, got)
        assert got == bytes([i]) * (1000 * (i + 1)) and s.at_eof
