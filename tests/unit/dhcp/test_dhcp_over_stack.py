"""The DHCP client on a real Stack, through Ethernet frames on the in-memory wire, against a scripted
server that runs on another Stack: lease, ARP probe, configuration, renewal by unicast, release.

``Node`` stands in for what the stack does not offer yet (see pystack/dhcp/host.py): it shows ARP
packets to the DHCP host, lets it put raw frames on the link, and merges its timer with the stack's.
"""

from __future__ import annotations

import random

from pystack.config import StackConfig
from pystack.dhcp import Bound, Declined, DhcpClient, DhcpConfig, LeaseLost, State
from pystack.dhcp.host import DhcpHost
from pystack.link.memory import FakeClock, MemoryWire
from pystack.stack import Stack
from pystack.wire import WireError, arp, ethernet
from pystack.wire import dhcp as dhcp_wire

from .fake_server import OFFERED, SERVER, FakeServer

CLIENT_MAC = bytes.fromhex("020000000002")
SERVER_MAC = bytes.fromhex("020000000001")
SQUATTER_MAC = bytes.fromhex("0200000000ee")


class Node:
    """A Stack plus the extra pieces a DHCP host needs, shaped like a Stack for MemoryWire."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.raw: list[bytes] = []
        self.host: DhcpHost | None = None
        self.server: FakeServer | None = None
        self.server_endpoint = None
        self.now = 0.0

    @property
    def counters(self):
        return self.stack.counters

    def frames_to_send(self) -> list[bytes]:
        out = self.raw[:]
        self.raw.clear()  # the host holds this list's append method
        return out + self.stack.frames_to_send()

    def receive_frame(self, frame: bytes, now: float) -> None:
        self.now = now
        if self.host is not None:
            try:
                eth = ethernet.parse(frame)
                if eth.ethertype == ethernet.ETHERTYPE_ARP:
                    self.host.observe_arp(arp.parse(eth.payload))  # the ARP observer hook
            except WireError:
                pass
        self.stack.receive_frame(frame, now)
        self._poll(now)

    def get_timer(self) -> float | None:
        deadlines = [d for d in (self.stack.get_timer(), self.host.get_timer() if self.host else None)
                     if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        self.now = now
        deadline = self.stack.get_timer()
        if deadline is not None and deadline <= now:
            self.stack.handle_timer(now)
        if self.host is not None:
            deadline = self.host.get_timer()
            if deadline is not None and deadline <= now:
                self.host.handle_timer(now)
        self._poll(now)

    def _poll(self, now: float) -> None:
        if self.host is not None:
            self.host.poll(now)
        if self.server is not None:
            while (item := self.server_endpoint.recvfrom()) is not None:
                data, _source = item
                for reply in self.server.answer(data):
                    msg = dhcp_wire.parse(reply)
                    # RFC 2131 4.1: broadcast if the client asked so; unicast to ciaddr when it has one.
                    dst = 0xFFFFFFFF if msg.flags & dhcp_wire.FLAG_BROADCAST or not msg.ciaddr else msg.ciaddr
                    self.server_endpoint.sendto(reply, (dst, dhcp_wire.CLIENT_PORT), now)


def _lab(server: FakeServer, config: DhcpConfig | None = None, squatter: bool = False):
    clock = FakeClock()
    a = Node(Stack(CLIENT_MAC, StackConfig()))
    b = Node(Stack(SERVER_MAC, StackConfig()))
    b.stack.configure(SERVER, 24, None, clock.now)
    b.server = server
    b.server_endpoint = b.stack.udp.bind(0, dhcp_wire.SERVER_PORT)
    nodes = [a, b]
    if squatter:  # a host that already uses the address the server hands out
        c = Node(Stack(SQUATTER_MAC, StackConfig()))
        c.stack.configure(OFFERED, 24, None, clock.now)
        nodes.append(c)
    events: list[tuple[float, object]] = []
    client = DhcpClient(CLIENT_MAC, clock.now, random.Random(5), config or DhcpConfig(), a.stack.counters)
    a.host = DhcpHost(a.stack, client, random.Random(6), a.raw.append,
                      on_event=lambda e: events.append((clock.now, e)))
    wire = MemoryWire(*nodes, clock=clock)  # type: ignore[arg-type]
    return a, b, wire, events


def test_lease_over_frames_configures_the_stack() -> None:
    server = FakeServer(lease=600)
    a, _b, wire, events = _lab(server)
    wire.run(until=lambda: a.stack.address is not None)
    assert a.stack.address == OFFERED and a.stack.netmask == 0xFFFFFF00 and a.stack.gateway == SERVER
    # The probes went out as RFC 5227 ARP probes, before the address was taken.
    probes = [arp.parse(ethernet.parse(f).payload) for _t, i, f in wire.log
              if i == 0 and ethernet.parse(f).ethertype == ethernet.ETHERTYPE_ARP]
    assert len(probes) >= 3 and all(p.sender_ip == 0 and p.target_ip == OFFERED for p in probes[:3])
    bound_at = [t for t, e in events if isinstance(e, Bound)][0]
    assert bound_at - wire.log[0][0] >= 1 + 1 + 2  # three probes at least 1 s apart, then ANNOUNCE_WAIT
    assert a.stack.counters["drop.internal_error"] == 0


def test_renewal_is_unicast_through_arp_and_keeps_the_address() -> None:
    server = FakeServer(lease=600)
    a, b, wire, events = _lab(server)
    wire.run(until=lambda: a.stack.address is not None)
    wire.run(duration=400)
    renewals = [m for m in server.seen if m.message_type == dhcp_wire.REQUEST and m.ciaddr]
    assert len(renewals) == 1 and renewals[0].ciaddr == OFFERED
    # The renewal reached the server as a unicast frame to its MAC, from our new address.
    unicast = [f for _t, i, f in wire.log if i == 0 and f[:6] == SERVER_MAC and f[12:14] == b"\x08\x00"]
    assert unicast and int.from_bytes(unicast[-1][14 + 12:14 + 16], "big") == OFFERED
    assert [e.renewed for _t, e in events if isinstance(e, Bound)] == [False, True]
    assert a.stack.address == OFFERED and a.host.client.state is State.BOUND


def test_release_deconfigures_and_tells_the_server() -> None:
    server = FakeServer()
    a, _b, wire, events = _lab(server)
    wire.run(until=lambda: a.stack.address is not None)
    a.host.release(wire.clock.now)
    wire.run(duration=1)
    assert a.stack.address is None
    assert [m.message_type for m in server.seen][-1] == dhcp_wire.RELEASE
    assert isinstance(events[-1][1], LeaseLost)


def test_address_in_use_is_declined_and_another_is_leased() -> None:
    server = FakeServer()
    a, _b, wire, events = _lab(server, squatter=True)
    wire.run(until=lambda: any(isinstance(e, Declined) for _t, e in events))
    wire.run(duration=1)  # the DECLINE reaches the server
    assert a.stack.address is None
    declines = [m for m in server.seen if m.message_type == dhcp_wire.DECLINE]
    assert len(declines) == 1 and declines[0].requested_ip == OFFERED
    server.address = OFFERED + 1
    wire.run(until=lambda: a.stack.address is not None)
    assert a.stack.address == OFFERED + 1


def test_lease_expiry_without_a_server_deconfigures() -> None:
    server = FakeServer(lease=120)
    a, _b, wire, events = _lab(server, DhcpConfig(renew_min_interval=10, acquire_timeout=None))
    wire.run(until=lambda: a.stack.address is not None)
    server.ignore_requests = server.ignore_discovers = True
    wire.run(until=lambda: a.stack.address is None)
    lost = [e for _t, e in events if isinstance(e, LeaseLost)]
    assert lost == [LeaseLost(OFFERED, "expired")]


def test_every_frame_of_a_lease_says_why_it_was_sent() -> None:
    from pystack.reasons import FrameReasons

    a, _b, wire, _events = _lab(FakeServer(lease=600))
    reasons = FrameReasons()
    a.stack.explain(reasons.note)
    lost: list[bytes] = []

    def lose_the_first_datagram(sender: int, frame: bytes) -> list[bytes]:
        if sender == 0 and frame[12:14] == b"\x08\x00" and not lost:
            lost.append(frame)
            return []
        return [frame]

    wire.fault = lose_the_first_datagram
    wire.run(until=lambda: a.stack.address is not None)
    wire.run(duration=3)
    comments = [reasons.take(f) for _t, i, f in wire.log if i == 0]
    assert comments[:3] == ["DHCPDISCOVER", "DHCPDISCOVER retransmission #1 (RFC 2131 4.1)",
                            "DHCPREQUEST for the offered address"]
    assert comments.count("ARP probe: does another host have the offered address? (RFC 5227 2.1)") >= 3
    assert "ARP announcement of our address (RFC 5227 2.3)" in comments
    assert None not in comments, comments
