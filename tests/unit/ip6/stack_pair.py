"""Two stacks speaking IPv6 on an in-memory wire with a fake clock: A = 2001:db8::2, B = 2001:db8::1
(the lab's addresses, docs/lab.md), each with its link-local address from its MAC."""

from __future__ import annotations

import random

from pystack.config import StackConfig
from pystack.ip6.addresses import State
from pystack.link.memory import FakeClock, MemoryWire
from pystack.stack import Stack
from pystack.wire import ethernet, icmpv6, ipv6

A_MAC = bytes.fromhex("020000000002")
B_MAC = bytes.fromhex("020000000001")
A6 = ipv6.addr_to_int("2001:db8::2")
B6 = ipv6.addr_to_int("2001:db8::1")
A_LL = ipv6.addr_to_int("fe80::ff:fe00:2")  # modified EUI-64 of A_MAC (RFC 4291 appendix A)
B_LL = ipv6.addr_to_int("fe80::ff:fe00:1")
SETTLE = 5.0
"""Seconds for both to finish DAD (up to 1 s of random delay, then one probe and RetransTimer)."""


def make_pair6(config: StackConfig | None = None, seed: int = 0, *, a_address: int | None = A6,
               b_address: int | None = B6, **wire_kw) -> tuple[Stack, Stack, MemoryWire]:
    """A and B with IPv6 up and their static addresses past DAD. Their random choices come from ``seed``,
    as make_pair's (tests/unit/stack/conftest.py); ``wire_kw`` go to the MemoryWire."""
    clock = FakeClock()
    a = Stack(A_MAC, config or StackConfig(), rng=random.Random(seed))
    b = Stack(B_MAC, config or StackConfig(), rng=random.Random(seed + 1))
    for stack, address in ((a, a_address), (b, b_address)):
        stack.start_ipv6(clock.now)
        if address is not None:
            stack.add_address6(address, 64, clock.now)
    wire = MemoryWire(a, b, clock=clock, **wire_kw)
    wire.run(duration=SETTLE)
    return a, b, wire


def usable(stack: Stack) -> set[int]:
    return {entry.address for entry in stack.addresses6 if entry.state is State.PREFERRED}


def payload_of(size: int) -> bytes:
    return bytes(i & 0xFF for i in range(size))


def ping6(a: Stack, wire: MemoryWire, dst: int, size: int, seq: int = 1) -> list[tuple[int, int, bytes]]:
    """One echo request of ``size`` data bytes from ``a`` to ``dst``; the replies that came back."""
    replies: list[tuple[int, int, bytes]] = []
    a.echo6_reply_handler = lambda src, rest, payload, now: replies.append((src, rest, payload))
    src = a.source_for6(dst)
    assert src is not None
    request = icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, 0x4242_0000 | seq, payload_of(size), src, dst)
    a.send_ip6(dst, ipv6.NH_ICMPV6, request, wire.clock.now)
    wire.run(until=lambda: bool(replies), limit=30)
    wire.run(duration=0.5)  # anything else that answer brings (a second reply from a group)
    return replies


def ipv6_packets(wire: MemoryWire, since: int = 0, sender: int | None = None) -> list[ipv6.Ipv6Packet]:
    """The IPv6 packets put on the wire (by ``sender``, 0 for A, 1 for B), parsed."""
    out = []
    for _t, who, frame in wire.log[since:]:
        if frame[12:14] == b"\x86\xdd" and (sender is None or who == sender):
            out.append(ipv6.parse(bytes(frame[14:])))
    return out


def icmp_types(packets: list[ipv6.Ipv6Packet]) -> list[int]:
    """The ICMPv6 type of each packet that carries one right after a header or a hop-by-hop header."""
    types = []
    for pkt in packets:
        chain = ipv6.walk(pkt)
        if chain.protocol == ipv6.NH_ICMPV6:
            types.append(pkt.datagram[chain.offset])
    return types


def frame_to(stack: Stack, packet: bytes, src_mac: bytes = b"\x02\x00\x00\x00\x00\x0a") -> bytes:
    """``packet`` in an Ethernet frame from ``src_mac`` to the MAC its destination needs."""
    dst = ipv6.parse(packet).dst
    mac = ipv6.multicast_mac(dst) if ipv6.is_multicast(dst) else stack.mac
    return ethernet.build(mac, src_mac, ethernet.ETHERTYPE_IPV6, packet)
