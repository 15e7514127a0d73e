"""The attached DHCPv6 host runs its client at the time each event came, not at Stack.now, which is only
the time of whatever the stack was last given (sans-I/O: the time comes as a value)."""

from __future__ import annotations

import random

from pystack.config import StackConfig
from pystack.dhcp6 import Mode
from pystack.dhcp6.host import Dhcp6Host
from pystack.ip6.config import Ipv6Config
from pystack.stack import Stack
from pystack.wire import dhcp6, ipv6

from ip6.stack_pair import A_MAC, B_LL

SERVER = (B_LL, dhcp6.SERVER_PORT)


def _stack() -> Stack:
    return Stack(A_MAC, StackConfig(ipv6=Ipv6Config(dad_transmits=0, max_rtr_solicitation_delay=0.0)), rng=random.Random(1))


def test_port_546_datagrams_reach_the_client_at_their_own_time() -> None:
    stack = _stack()
    stack.start_ipv6(0.0)
    host = Dhcp6Host.attach(stack)
    heard: list[float] = []
    receive = host.client.receive
    host.client.receive = lambda data, now: (heard.append(now), receive(data, now))  # type: ignore[method-assign]
    stack.now = 1.0
    host.endpoint.deliver(b"not a DHCPv6 message", SERVER, 42.0)
    assert heard == [42.0]


def test_a_wanted_start_runs_at_the_time_the_link_local_address_became_usable() -> None:
    stack = _stack()
    host = Dhcp6Host.attach(stack)
    host.start(Mode.STATELESS, 0.0)  # IPv6 not started: no link-local address yet, so wanted
    started: list[float] = []
    start = host.client.start
    host.client.start = lambda mode, now: (started.append(now), start(mode, now))  # type: ignore[method-assign]
    stack.now = 1.0
    stack.start_ipv6(42.0)  # no DAD, no delay: the link-local address is usable at once
    assert stack.nd.link_local() != ipv6.UNSPECIFIED
    assert started == [42.0]
