"""The stream server runs on the times its events carry (Connection.event_time, Listener.event_time), as
sans-I/O code must: it serves from a bare TCP layer that has no clock to read."""

from __future__ import annotations

from pystack.apps.stream_server import EchoSession, StreamServer
from pystack.config import StackConfig
from pystack.tcp import State, TcpLayer

from tcp.tcp_harness import IP_A, IP_B, Net


class _NoClock:
    """What StreamServer takes of a Stack: its TCP layer and config, IPv6 off; no ``now`` to read."""

    def __init__(self, tcp: TcpLayer) -> None:
        self.tcp = tcp
        self.config = StackConfig()
        self.ipv6_enabled = False


def test_echo_is_served_at_the_times_of_its_events() -> None:
    net = Net()
    sent_at: list[tuple[float, float]] = []  # (the time B's segment was stamped with, the harness's time)
    emit = net.b.cx.emit
    net.b.cx.emit = lambda src, dst, seg, now, *gso: (sent_at.append((now, net.now)), emit(src, dst, seg, now))
    server = StreamServer(_NoClock(net.b), 7, EchoSession)  # type: ignore[arg-type]
    client = net.a.connect(IP_A, IP_B, 7, net.now)
    net.run(stop=lambda: client.state == State.ESTABLISHED)
    data = b"echo me " * 20_000
    got = bytearray()
    sent = 0
    while len(got) < len(data):
        sent += client.send(data[sent:], net.now)
        net.run(stop=lambda: client.recv_available > 0)
        got += client.recv(1 << 20, net.now)
    assert got == data and len(server.active) == 1
    assert sent_at and all(stamp == clock for stamp, clock in sent_at)
    client.close(net.now)
    net.run(for_=5.0)
    assert not server.active and client.state in (State.TIME_WAIT, State.CLOSED)
