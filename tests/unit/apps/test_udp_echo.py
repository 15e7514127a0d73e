"""The UDP echo service answers at the time the datagram came (UdpEndpoint.event_time), as sans-I/O code
must: it serves from a bare UDP layer that has no clock to read."""

from __future__ import annotations

import random

from pystack.apps.udp_echo import UdpEcho
from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.udp.layer import UdpLayer
from pystack.wire import udp as udp_wire

US, PEER = 0xC0000202, 0xC0000201


class _NoClock:
    """What UdpEcho takes of a Stack: its UDP layer and counters, IPv6 off; no ``now`` to read."""

    def __init__(self, udp: UdpLayer) -> None:
        self.udp = udp
        self.counters = udp.counters
        self.ipv6_enabled = False


def test_each_datagram_is_echoed_at_its_own_time() -> None:
    sent: list[tuple] = []
    layer = UdpLayer(StackConfig(), Counters(), lambda *datagram: sent.append(datagram), lambda _dst: US,
                     random.Random(1))
    UdpEcho(_NoClock(layer))  # type: ignore[arg-type]
    for now, data in ((10.0, b"first"), (12.5, b"second")):
        assert layer.receive(PEER, US, memoryview(udp_wire.build(PEER, US, 4000, 7, data)), now)
    assert [(dst, now, bytes(udp_wire.parse(segment, US, dst)[2])) for _src, dst, segment, now, _df in sent] == [
        (PEER, 10.0, b"first"), (PEER, 12.5, b"second")]
    assert layer.counters["udp.echoed"] == 2
