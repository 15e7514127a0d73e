"""Two runtimes in threads, joined by a socketpair link: A = 192.0.2.2 (client), B = 192.0.2.1; with
``runtimes6`` dual-stack, A also 2001:db8::2 and B 2001:db8::1 (the lab's addresses, docs/lab.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pystack.config import StackConfig
from pystack.ip6.config import Ipv6Config
from pystack.link.socketpair import SocketPairLink
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.wire import ipv6
from pystack.wire.ipv4 import addr_to_int

A_IP, B_IP = "192.0.2.2", "192.0.2.1"
A6, B6 = "2001:db8::2", "2001:db8::1"
QUIET6 = Ipv6Config(dad_transmits=0, max_rtr_solicitations=0, max_rtr_solicitation_delay=0.0)
"""IPv6 whose addresses are usable at once: no DAD wait, no router solicitations."""


@pytest.fixture
def runtimes() -> Iterator[tuple[Runtime, Runtime]]:
    yield from _pair(ipv6_up=False)


@pytest.fixture
def runtimes6() -> Iterator[tuple[Runtime, Runtime]]:
    yield from _pair(ipv6_up=True)


def _pair(ipv6_up: bool) -> Iterator[tuple[Runtime, Runtime]]:
    la, lb = SocketPairLink.pair()
    config = StackConfig(ipv6=QUIET6) if ipv6_up else StackConfig()
    ra = Runtime(Stack(bytes.fromhex("020000000002"), config), la)
    rb = Runtime(Stack(bytes.fromhex("020000000001"), config), lb)
    for rt, ip4, ip6 in ((ra, A_IP, A6), (rb, B_IP, B6)):
        rt.stack.configure(addr_to_int(ip4), 24, None, rt.now())
        if ipv6_up:
            rt.stack.start_ipv6(rt.now())
            rt.stack.add_address6(ipv6.addr_to_int(ip6), 64, rt.now())
    threads = [ra.start_thread(), rb.start_thread()]
    try:
        yield ra, rb
    finally:
        for rt in (ra, rb):
            rt.stop()
        for t in threads:
            t.join(5)
        for rt in (ra, rb):
            rt.close()
