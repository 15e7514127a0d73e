"""RFC 7323 timestamps: the RTT measured from echoed TSvals (4.1) whatever the clock's offset (5.4)."""

from __future__ import annotations

import pytest

from pystack.tcp import TcpConfig
from pystack.tcp.isn import IsnGenerator

from .tcp_harness import IP_A, IP_B, Net, drain


def _secret_with_offset(upper_half: bool) -> bytes:
    """An ISN secret whose TSval offset for IP_A -> IP_B lies in the upper (or lower) half of the 32-bit
    space: the clock starts there, a random point as RFC 7323 5.4 has it."""
    for i in range(256):
        secret = bytes([i]) * 16
        if (IsnGenerator(secret).ts_offset(IP_A, IP_B) >= 0x80000000) == upper_half:
            return secret
    raise AssertionError("no such secret")


@pytest.mark.parametrize("upper_half", [False, True])
def test_the_rtt_follows_echoed_timestamps_whatever_the_clock_offset(upper_half: bool) -> None:
    """The path's delay grows from 10 to 15 ms after the handshake: SRTT follows the echoes of the data's
    TSvals, nothing being retransmitted, with the clock in either half of the sequence space. (A clock in
    the upper half once read as older than "the last retransmission" before there was any, and SRTT stayed
    at the handshake's 20 ms until a retransmission.)"""
    net = Net(TcpConfig(isn_secret=_secret_with_offset(upper_half)), TcpConfig(delayed_ack=False), delay=0.01)
    listener = net.b.listen(IP_B, 80, 4)
    client = net.a.connect(IP_A, IP_B, 80, net.now)
    net.run(for_=1)
    server = listener.accept()
    assert server is not None and client.info()["timestamps"]
    assert client.rtt.srtt == pytest.approx(0.02)
    net.delay = 0.015
    client.send(b"x" * 50_000, net.now)
    sink = bytearray()
    for _ in range(40):
        net.run(for_=0.05)
        drain(server, sink)
    assert len(sink) == 50_000
    assert client.stats["retransmits"] == 0
    assert client.rtt.srtt is not None and client.rtt.srtt > 0.025
