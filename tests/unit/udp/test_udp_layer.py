"""The UDP layer on its own: a transport that sends through the port it is given, with no stack behind it."""

from __future__ import annotations

import errno
import random

import pytest

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.udp.layer import UdpLayer
from pystack.wire import udp as udp_wire

US, PEER = 0xC0000202, 0xC0000201


def _layer(source: int | None = US, seed: int = 1) -> tuple[UdpLayer, list[tuple]]:
    sent: list[tuple] = []
    layer = UdpLayer(StackConfig(mtu=1500), Counters(), lambda *datagram: sent.append(datagram),
                     lambda _dst: source, random.Random(seed))
    return layer, sent


def test_a_datagram_leaves_through_the_emit_port_with_df_when_it_fits() -> None:
    layer, sent = _layer()
    endpoint = layer.bind(0, 5000)
    assert endpoint.sendto(b"x" * 1472, (PEER, 53), 7.0) == 1472
    assert endpoint.sendto(b"y" * 1473, (PEER, 53), 8.0) == 1473
    (src, dst, segment, now, df), (_s, _d, big, _n, big_df) = sent
    assert (src, dst, now, df, big_df) == (US, PEER, 7.0, True, False)  # the larger one is fragmented
    assert udp_wire.parse(segment, US, PEER) == (5000, 53, memoryview(b"x" * 1472))


def test_without_a_source_address_sendto_raises_enetunreach() -> None:
    layer, sent = _layer(source=None)
    with pytest.raises(OSError) as info:
        layer.bind(0, 0).sendto(b"x", (PEER, 53), 0.0)
    assert info.value.errno == errno.ENETUNREACH and sent == []


def test_received_datagrams_reach_their_port_and_a_closed_port_is_reported() -> None:
    layer, _sent = _layer()
    endpoint = layer.bind(0, 4000)
    assert layer.receive(PEER, US, udp_wire.build(PEER, US, 9, 4000, b"hi"), 0.0) is True
    assert endpoint.recvfrom() == (b"hi", (PEER, 9))
    assert layer.receive(PEER, US, udp_wire.build(PEER, US, 9, 4001, b"hi"), 0.0) is False
    assert layer.counters["drop.udp.port_closed"] == 1
    bad = bytearray(udp_wire.build(PEER, US, 9, 4000, b"hi"))
    bad[-1] ^= 1
    assert layer.receive(PEER, US, bytes(bad), 0.0) is True  # handled: dropped and counted here
    assert layer.counters["drop.udp.bad_checksum"] == 1


def test_an_icmp_error_reaches_the_connected_endpoint_of_its_source_port() -> None:
    layer, _sent = _layer()
    endpoint = layer.bind(0, 4000)
    endpoint.connect((PEER, 53))
    quoted = udp_wire.build(US, PEER, 4000, 53, b"q")[:8]
    layer.icmp_error(3, 3, US, PEER, quoted, 0.0)
    with pytest.raises(ConnectionRefusedError):
        endpoint.recvfrom()


def test_ephemeral_ports_come_from_the_injected_rng() -> None:
    ports = [[layer.bind().port for _ in range(5)] for layer, _ in (_layer(seed=3), _layer(seed=3))]
    assert ports[0] == ports[1] and len(set(ports[0])) == 5
    assert _layer(seed=4)[0].bind().port != ports[0][0]
