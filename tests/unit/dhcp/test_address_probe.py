"""RFC 5227 address probing: timing of the probes, their shape, and what counts as a conflict."""

from __future__ import annotations

import random

import pytest

from pystack.dhcp import AddressProbe, DhcpConfig
from pystack.wire import arp

MAC = bytes.fromhex("020000000002")
OTHER = bytes.fromhex("020000000099")
ADDR = 0xC0000264


def _run(probe: AddressProbe, now: float, until: float) -> list[tuple[float, bytes]]:
    sent = []
    while not probe.done:
        deadline = probe.get_timer()
        assert deadline is not None and deadline >= now
        if deadline > until:
            break
        now = deadline
        probe.handle_timer(now)
        sent += [(now, p) for p in probe.arp_to_send()]
    return sent


@pytest.mark.parametrize("seed", range(5))
def test_three_probes_then_announce_wait_and_no_conflict(seed: int) -> None:
    probe = AddressProbe(ADDR, MAC, 100.0, random.Random(seed))
    sent = _run(probe, 100.0, 200.0)
    assert probe.done and not probe.conflict and probe.get_timer() is None
    times = [t for t, _p in sent]
    assert len(times) == 3
    assert 100.0 <= times[0] <= 101.0  # PROBE_WAIT
    for a, b in zip(times, times[1:]):
        assert 1.0 <= b - a <= 2.0  # PROBE_MIN .. PROBE_MAX
    for _t, payload in sent:
        pkt = arp.parse(payload)
        # Section 2.1.1: a request with our MAC, sender IP zero, target the address, target MAC zero.
        assert (pkt.op, pkt.sender_mac, pkt.sender_ip, pkt.target_mac, pkt.target_ip) == (
            arp.OP_REQUEST, MAC, 0, bytes(6), ADDR)


def test_done_only_announce_wait_after_the_last_probe() -> None:
    cfg = DhcpConfig(probe_wait=0.0, probe_min=1.0, probe_max=1.0, announce_wait=2.0)
    probe = AddressProbe(ADDR, MAC, 0.0, random.Random(1), cfg)
    sent = _run(probe, 0.0, 2.9)
    assert [t for t, _ in sent] == [0.0, 1.0, 2.0] and not probe.done
    probe.handle_timer(3.9)
    assert not probe.done
    probe.handle_timer(4.0)
    assert probe.done and not probe.conflict


@pytest.mark.parametrize("pkt", [
    arp.ArpPacket(arp.OP_REPLY, OTHER, ADDR, MAC, 0),  # someone answers our probe
    arp.ArpPacket(arp.OP_REQUEST, OTHER, ADDR, bytes(6), 0xC0000201),  # someone uses the address
    arp.ArpPacket(arp.OP_REQUEST, OTHER, 0, bytes(6), ADDR),  # someone else probes it at the same time
])
def test_conflicts(pkt: arp.ArpPacket) -> None:
    probe = AddressProbe(ADDR, MAC, 0.0, random.Random(1))
    _run(probe, 0.0, 1.5)
    probe.observe(pkt)
    assert probe.done and probe.conflict and probe.conflicting_mac == OTHER
    assert probe.get_timer() is None


@pytest.mark.parametrize("pkt", [
    arp.ArpPacket(arp.OP_REQUEST, MAC, 0, bytes(6), ADDR),  # our own probe, looped back
    arp.ArpPacket(arp.OP_REQUEST, OTHER, 0xC0000201, bytes(6), 0xC0000202),  # unrelated traffic
    arp.ArpPacket(arp.OP_REQUEST, OTHER, 0xC0000201, bytes(6), ADDR),  # someone asking for it: no owner yet
    arp.ArpPacket(arp.OP_REPLY, OTHER, 0xC0000201, MAC, ADDR),
])
def test_not_conflicts(pkt: arp.ArpPacket) -> None:
    probe = AddressProbe(ADDR, MAC, 0.0, random.Random(1))
    probe.observe(pkt)
    _run(probe, 0.0, 100.0)
    assert probe.done and not probe.conflict


def test_packets_after_the_verdict_change_nothing() -> None:
    probe = AddressProbe(ADDR, MAC, 0.0, random.Random(1))
    _run(probe, 0.0, 100.0)
    probe.observe(arp.ArpPacket(arp.OP_REPLY, OTHER, ADDR, MAC, 0))
    assert probe.done and not probe.conflict
