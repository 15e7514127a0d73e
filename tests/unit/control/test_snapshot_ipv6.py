"""``pystack ss`` lists IPv6 sockets beside the IPv4 ones (pystack/control/snapshot.py), written as ss
writes them: ``[2001:db8::1]:80``."""

from __future__ import annotations

import random

from pystack.config import StackConfig
from pystack.control.render import ss_table
from pystack.control.snapshot import sockets
from pystack.ip6.config import Ipv6Config
from pystack.link.memory import FakeClock, MemoryWire
from pystack.stack import Stack
from pystack.tcp.state import State
from pystack.wire.ipv4 import addr_to_int
from pystack.wire.ipv6 import addr_to_int as addr6

A6, B6 = addr6("2001:db8::2"), addr6("2001:db8::1")


def _pair() -> tuple[Stack, Stack, MemoryWire]:
    """Two in-memory stacks with IPv6 up, their addresses usable at once (no DAD)."""
    clock = FakeClock()
    config = StackConfig(ipv6=Ipv6Config(dad_transmits=0))
    a = Stack(bytes.fromhex("020000000002"), config, rng=random.Random(1))
    b = Stack(bytes.fromhex("020000000001"), config, rng=random.Random(2))
    for stack, address in ((a, A6), (b, B6)):
        stack.start_ipv6(clock.now)
        stack.add_address6(address, 64, clock.now)
    return a, b, MemoryWire(a, b, clock=clock)


def test_ss_lists_ipv6_connections_listeners_and_udp_ports_beside_ipv4_ones() -> None:
    a, b, wire = _pair()
    b.configure(addr_to_int("192.0.2.1"), 24, None, wire.clock.now)
    b.tcp.listen(0, 80, 8)
    listener = b.tcp6.listen(0, 80, 8)
    client = a.tcp6.connect(A6, B6, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    assert client.state == State.ESTABLISHED
    b.udp6.bind(B6, 53)
    rows = sockets(b, all=True)
    table = {(r["netid"], r["state"], r["local"], r["peer"]) for r in rows}
    port = client.local_port
    assert table == {
        ("tcp", "ESTABLISHED", "[2001:db8::1]:80", f"[2001:db8::2]:{port}"),
        ("tcp", "LISTEN", "0.0.0.0:80", "0.0.0.0:*"),
        ("tcp", "LISTEN", "[::]:80", "[::]:*"),
        ("udp", "UNCONN", "[2001:db8::1]:53", "[::]:*"),
    }
    assert sockets(a, tcp=True)[0]["local"] == f"[2001:db8::2]:{port}"
    lines = ss_table(sockets(b, tcp=True)).splitlines()
    assert lines[1].split()[:2] == ["tcp", "ESTAB"] and lines[1].split()[4] == "[2001:db8::1]:http"
