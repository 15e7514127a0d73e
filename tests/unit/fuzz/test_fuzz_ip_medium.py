"""A stack on the IP medium (a TUN's bare packets) under the corpus's IPv4 packets, mutated: nothing
raises out of the core, no exception is caught in it (``drop.internal_error`` stays 0), every packet is
counted in, and what it sends back is a whole IPv4 datagram with a right header checksum."""

from __future__ import annotations

import random

import dpkt
import pytest

from pystack.apps.udp_echo import UdpEcho
from pystack.config import StackConfig
from pystack.medium import Medium
from pystack.stack import Stack

from .corpus import A_IP, A_MAC, B_IP, corpus, examples
from .mutate import mutate


def _ip_medium_target() -> Stack:
    """Stack A as ``pystack run --tun`` runs it: UDP echo on 7, a TCP listener on 80."""
    stack = Stack(A_MAC, StackConfig(medium=Medium.IP), rng=random.Random(3))
    stack.configure(A_IP, 24, B_IP, 1000.0)
    UdpEcho(stack)
    stack.tcp.listen(0, 80, 64)
    return stack


@pytest.mark.parametrize("seed", range(4))
def test_mutated_packets_on_the_ip_medium_are_dropped_counted_or_handled(seed: int) -> None:
    frames = corpus()
    packets = [f[14:] for f in frames if f[12:14] == b"\x08\x00"]  # the IPv4 ones, without Ethernet
    assert packets
    rng = random.Random(seed)
    stack = _ip_medium_target()
    now = 1000.0
    for i in range(examples(400)):
        mutated, applied = mutate(rng, rng.choice(frames), frames)
        packet = rng.choice((mutated[14:], mutated, rng.choice(packets)))  # also a whole frame, unstripped
        now += rng.choice((0.0, 0.001, 0.5, 3.0))
        before = stack.counters["frames_in"]
        stack.receive_frame(packet, now)
        if (deadline := stack.get_timer()) is not None and deadline <= now:
            stack.handle_timer(now)
        assert stack.counters["frames_in"] == before + 1
        assert stack.counters["drop.internal_error"] == 0, (i, applied, packet[:64].hex())
        for out in stack.frames_to_send():
            ip = dpkt.ip.IP(out)
            assert ip.v == 4 and ip.len == len(out) and ip.src == A_IP.to_bytes(4, "big"), out[:40].hex()
            assert dpkt.in_cksum(out[:ip.hl * 4]) == 0
