"""DhcpHost.attach wires the client into the stack's own hooks (ARP observers, timer sources,
send_frame, port-68 events): a plain Stack leases an address with no glue of its own."""

from __future__ import annotations

import random

from pystack.config import StackConfig
from pystack.dhcp import Bound, DhcpClient, DhcpConfig
from pystack.dhcp.host import DhcpHost
from pystack.link.memory import FakeClock, MemoryWire
from pystack.stack import Stack
from pystack.wire import dhcp as dhcp_wire

from .fake_server import OFFERED, SERVER, FakeServer
from .test_dhcp_over_stack import CLIENT_MAC, SERVER_MAC, SQUATTER_MAC, Node


def _attached(squatter: bool = False):
    clock = FakeClock()
    client_stack = Stack(CLIENT_MAC, StackConfig())
    server = Node(Stack(SERVER_MAC, StackConfig()))
    server.stack.configure(SERVER, 24, None, clock.now)
    server.server = FakeServer(lease=600)
    server.server_endpoint = server.stack.udp.bind(0, dhcp_wire.SERVER_PORT)
    nodes = [client_stack, server]
    if squatter:
        other = Stack(SQUATTER_MAC, StackConfig())
        other.configure(OFFERED, 24, None, clock.now)
        nodes.append(other)
    events: list[object] = []
    client = DhcpClient(CLIENT_MAC, clock.now, random.Random(5), DhcpConfig(), client_stack.counters)
    host = DhcpHost.attach(client_stack, client, random.Random(6), on_event=events.append)
    host.poll(clock.now)
    return client_stack, host, MemoryWire(*nodes, clock=clock), events  # type: ignore[arg-type]


def test_attached_host_leases_and_configures_a_plain_stack():
    stack, host, wire, events = _attached()
    wire.run(until=lambda: stack.address is not None, limit=120)
    assert stack.address == OFFERED and stack.gateway == SERVER
    assert any(isinstance(e, Bound) for e in events)
    assert stack.counters["drop.internal_error"] == 0


def test_attached_host_probe_sees_a_conflict_through_the_arp_observer():
    stack, host, wire, events = _attached(squatter=True)
    wire.run(until=lambda: stack.counters["dhcp.declines_sent"] > 0 or any(
        type(e).__name__ == "Declined" for e in events), limit=120)
    assert any(type(e).__name__ == "Declined" for e in events)
    assert stack.address is None


def test_attached_host_hears_port_68_datagrams_at_their_own_time():
    """The endpoint callback passes the datagram's time (UdpEndpoint.event_time) on, not Stack.now,
    which is only the time of whatever the stack was last given."""
    stack, host, _wire, _events = _attached()
    heard: list[float] = []
    receive = host.client.receive
    host.client.receive = lambda data, now: (heard.append(now), receive(data, now))  # type: ignore[method-assign]
    stack.now = 1.0
    host.endpoint.deliver(b"not a DHCP message", (SERVER, dhcp_wire.SERVER_PORT), 42.0)
    assert heard == [42.0]
