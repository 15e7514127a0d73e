"""Ethernet (RFC 894) for one interface: which frames are ours, and the one queue of frames out.

Every layer's output is a frame queued here (queue and drain): the stack's user drains the queue with
``Stack.frames_to_send`` and writes it to the link, so nothing above touches a file descriptor.
"""

from __future__ import annotations

from typing import Callable, Iterable

from pystack.counters import Counters
from pystack.wire import ethernet
from pystack.wire.errors import WireError

Receive = Callable[[memoryview, bool, float], None]
"""``receive(payload, link_unicast, now)``: the payload of a frame for us; ``link_unicast`` is False when
the frame was sent to a broadcast or multicast MAC."""


class EthernetLink:
    """Our MAC, the multicast MACs we listen to, the protocols above by EtherType, and the frames out."""

    __slots__ = ("mac", "counters", "multicast_macs", "protocols", "out")

    def __init__(self, mac: bytes, counters: Counters) -> None:
        self.mac = mac
        self.counters = counters
        self.multicast_macs: set[bytes] = set()
        self.protocols: dict[int, Receive] = {}
        self.out: list[bytes] = []
        """Frames for the link, oldest first (a pystack.wire.gso.GsoFrame is one of them)."""

    def receive(self, frame: bytes | memoryview, now: float) -> None:
        """Hand a frame for us to its protocol; raises WireError (counted by the caller) for the rest."""
        dst, src, ethertype, payload = ethernet.parse_fields(frame)
        receive = self.protocols.get(ethertype)
        if receive is None and ethertype == ethernet.ETHERTYPE_IPV6:
            raise WireError("ethernet.ipv6_unsupported")
        if dst != self.mac and dst != ethernet.BROADCAST and dst not in self.multicast_macs:
            raise WireError("ethernet.not_for_us")
        if src[0] & 1:
            raise WireError("ethernet.multicast_source")
        if receive is None:
            raise WireError("ethernet.unsupported_ethertype")
        receive(payload, dst == self.mac, now)

    def send(self, dst_mac: bytes, ethertype: int, payload: bytes | memoryview) -> None:
        self.out.append(ethernet.header(dst_mac, self.mac, ethertype) + payload)
        self.counters["frames_out"] += 1

    def send_all(self, dst_mac: bytes, ethertype: int, payloads: Iterable[bytes]) -> None:
        """Several payloads to one MAC (the fragments of a datagram)."""
        head = ethernet.header(dst_mac, self.mac, ethertype)
        before = len(self.out)
        self.out.extend(head + payload for payload in payloads)
        self.counters["frames_out"] += len(self.out) - before

    def send_frame(self, frame: bytes) -> None:
        """A whole frame, headers included."""
        self.out.append(frame)
        self.counters["frames_out"] += 1

    def drain(self) -> list[bytes]:
        out, self.out = self.out, []
        return out
