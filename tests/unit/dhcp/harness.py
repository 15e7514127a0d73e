"""Drives a DhcpClient against a FakeServer with a fake clock: time jumps from timer to timer."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from pystack.counters import Counters
from pystack.dhcp import DhcpClient, DhcpConfig, DhcpDatagram, Event, ProbeAddress
from pystack.wire import dhcp

from .fake_server import CLIENT_MAC, FakeServer

START = 1000.0


class Harness:
    def __init__(self, server: FakeServer | None = None, config: DhcpConfig | None = None, seed: int = 1,
                 **client_kw) -> None:
        self.now = START
        self.counters = Counters()
        self.server = server
        self.client = DhcpClient(CLIENT_MAC, self.now, random.Random(seed), config, self.counters, **client_kw)
        self.sent: list[tuple[float, DhcpDatagram]] = []
        self.events: list[tuple[float, Event]] = []
        self.conflicts: set[int] = set()
        """Addresses whose ARP probe finds another host."""
        self.answer_probes = True
        self.link_down = False
        """Drop everything the client sends (as if no server were reachable)."""

    def pump(self) -> None:
        """Move datagrams and events until the client is quiet at the current time."""
        client = self.client
        for _ in range(1000):
            out = client.datagrams_to_send()
            for dgram in out:
                self.sent.append((self.now, dgram))
                if self.server is not None and not self.link_down:
                    for reply in self.server.answer(dgram.payload):
                        client.receive(reply, self.now)
            events = client.events()
            for event in events:
                self.events.append((self.now, event))
                if isinstance(event, ProbeAddress) and self.answer_probes:
                    client.probe_result(event.address, event.address in self.conflicts, self.now)
            if not out and not events:
                return
        raise RuntimeError("client and server exchange messages without end at one instant")

    def run(self, duration: float | None = None, until: Callable[[], bool] | None = None) -> None:
        """Advance the clock timer by timer for ``duration`` seconds, or until ``until()`` holds (or the
        client has no timer left)."""
        end = self.now + duration if duration is not None else (math.inf if until else self.now)
        for _ in range(100_000):
            self.pump()
            if until and until():
                return
            deadline = self.client.get_timer()
            if deadline is None or deadline > end:
                self.now = max(self.now, end)
                return
            self.now = max(self.now, deadline)
            self.client.handle_timer(self.now)
        raise RuntimeError("client did not settle")

    def deliver(self, payload: bytes) -> None:
        self.client.receive(payload, self.now)
        self.pump()

    # ---- what went out

    def messages(self, mtype: int | None = None) -> list[tuple[float, DhcpDatagram, dhcp.DhcpMessage]]:
        out = []
        for t, dgram in self.sent:
            msg = dhcp.parse(dgram.payload)
            if mtype is None or msg.message_type == mtype:
                out.append((t, dgram, msg))
        return out

    def event_list(self, kind: type | None = None) -> list[Event]:
        return [e for _t, e in self.events if kind is None or isinstance(e, kind)]
