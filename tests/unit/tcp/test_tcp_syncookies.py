"""SYN cookies: with the half-open queue full, SYNs are answered statelessly and the final ACK
rebuilds the connection; forged or stale cookies are refused."""

from __future__ import annotations

from pystack.counters import Counters
from pystack.tcp import TcpConfig
from pystack.tcp.layer import TcpLayer
from pystack.tcp.state import State
from pystack.tcp.syncookie import SynCookies
from pystack.wire import tcp as wire

LOCAL, REMOTE = 0xC0000202, 0xC0000201


def _layer(**cfg):
    out = []
    layer = TcpLayer(TcpConfig(syn_backlog=1, **cfg), Counters(), lambda s, d, seg, *gso: out.append(seg))
    return layer, out


def _syn(port: int, isn: int, mss: int = 1460) -> bytes:
    return wire.build(REMOTE, LOCAL, port, 80, isn, 0, wire.SYN, 65535, wire.build_options(mss=mss))


def test_cookie_round_trip_and_expiry():
    cfg = TcpConfig()
    tick = cfg.syncookie_period
    c = SynCookies(b"k" * 16, cfg)
    cookie, mss = c.make(LOCAL, 80, REMOTE, 5000, 12345, 1400, now=1000.0)
    assert mss == 1300 and mss in cfg.syncookie_mss
    assert c.check(LOCAL, 80, REMOTE, 5000, 12345, cookie, now=1000.0 + tick) == 1300
    assert c.check(LOCAL, 80, REMOTE, 5001, 12345, cookie, now=1000.0) is None  # other 4-tuple
    assert c.check(LOCAL, 80, REMOTE, 5000, 12345 + 1000, cookie, now=1000.0) is None  # other peer ISN
    assert c.check(LOCAL, 80, REMOTE, 5000, 12345, cookie, now=1000.0 + 3 * tick) is None  # expired


def test_the_cookies_table_and_lifetime_are_the_configs():
    """TcpConfig.syncookie_mss is what a cookie can grant, syncookie_max_age how many ticks it lives."""
    c = SynCookies(b"k" * 16, TcpConfig(syncookie_mss=(1000, 1200), syncookie_max_age=1, syncookie_period=10.0))
    assert c.lifetime == 10.0
    cookie, mss = c.make(LOCAL, 80, REMOTE, 5000, 12345, 1400, now=1000.0)
    assert mss == 1200
    assert c.check(LOCAL, 80, REMOTE, 5000, 12345, cookie, now=1009.0) == 1200
    assert c.check(LOCAL, 80, REMOTE, 5000, 12345, cookie, now=1010.0) is None  # the next tick: expired
    assert c.make(LOCAL, 80, REMOTE, 5000, 12345, 536, now=1000.0)[1] == 1000  # below the table: its least


def test_full_syn_queue_answers_with_a_cookie_and_the_ack_establishes():
    layer, out = _layer()
    lst = layer.listen(0, 80, 16)
    layer.receive(REMOTE, LOCAL, _syn(4000, 100), 10.0)  # takes the only half-open slot
    assert lst.half_open == 1
    out.clear()
    layer.receive(REMOTE, LOCAL, _syn(4001, 5000, mss=1460), 10.0)
    [synack] = [wire.parse(s, LOCAL, REMOTE) for s in out]
    assert synack.flags == wire.SYN | wire.ACK and synack.ack == 5001 and synack.mss == 1460
    assert layer.counters["tcp.syncookies_sent"] == 1 and len(layer.connections) == 1  # no state kept
    ack = wire.build(REMOTE, LOCAL, 4001, 80, 5001, (synack.seq + 1) & 0xFFFFFFFF, wire.ACK, 65535,
                     payload=b"GET / HTTP/1.0\r\n\r\n")
    layer.receive(REMOTE, LOCAL, ack, 11.0)
    conn = lst.accept()
    assert conn is not None and conn.state == State.ESTABLISHED
    assert conn.recv(100, 11.0) == b"GET / HTTP/1.0\r\n\r\n"
    assert layer.counters["tcp.syncookies_accepted"] == 1


def test_forged_cookie_ack_gets_a_reset():
    layer, out = _layer()
    lst = layer.listen(0, 80, 16)
    layer.receive(REMOTE, LOCAL, _syn(4000, 100), 10.0)
    layer.receive(REMOTE, LOCAL, _syn(4001, 5000), 10.0)
    out.clear()
    forged = wire.build(REMOTE, LOCAL, 4002, 80, 7001, 0x12345678, wire.ACK, 65535)
    layer.receive(REMOTE, LOCAL, forged, 10.5)
    [rst] = [wire.parse(s, LOCAL, REMOTE) for s in out]
    assert rst.flags & wire.RST and lst.accept() is None
    assert layer.counters["drop.tcp.syncookie_invalid"] == 1


def test_without_cookies_a_full_queue_drops_syns():
    layer, out = _layer(syncookies=False)
    layer.listen(0, 80, 16)
    layer.receive(REMOTE, LOCAL, _syn(4000, 100), 10.0)
    out.clear()
    layer.receive(REMOTE, LOCAL, _syn(4001, 5000), 10.0)
    assert out == [] and layer.counters["drop.tcp.listen_queue_full"] == 1
