"""RFC 5227 address probing: is anyone else on the link already using the address a server offered us?

Sans-I/O like the rest of the stack: the owner feeds every ARP packet it receives to :meth:`observe`,
sends what :meth:`arp_to_send` returns as Ethernet broadcasts, and calls :meth:`handle_timer` at
:meth:`get_timer`. When :attr:`done` is true, :attr:`conflict` is the answer.
"""

from __future__ import annotations

import random

from pystack.dhcp.config import DhcpConfig
from pystack.wire import arp as arp_wire

_ZERO_MAC = b"\x00" * 6


class AddressProbe:
    __slots__ = ("address", "mac", "config", "conflict", "done", "_sends", "_finish", "_out", "conflicting_mac")

    def __init__(self, address: int, mac: bytes, now: float, rng: random.Random,
                 config: DhcpConfig | None = None) -> None:
        self.address = address
        self.mac = mac
        self.config = cfg = config or DhcpConfig()
        self.conflict = False
        self.conflicting_mac: bytes | None = None
        self.done = False
        self._out: list[bytes] = []
        # RFC 5227 section 2.1.1: wait rand(0, PROBE_WAIT), then PROBE_NUM probes rand(PROBE_MIN, PROBE_MAX)
        # apart, then ANNOUNCE_WAIT after the last one.
        t = now + rng.uniform(0.0, cfg.probe_wait)
        sends = []
        for i in range(cfg.probe_num):
            if i:
                t += rng.uniform(cfg.probe_min, cfg.probe_max)
            sends.append(t)
        self._sends = sends
        self._finish = t + cfg.announce_wait

    def arp_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        if self.done:
            return None
        return self._sends[0] if self._sends else self._finish

    def handle_timer(self, now: float) -> None:
        if self.done:
            return
        while self._sends and self._sends[0] <= now:
            self._sends.pop(0)
            # An ARP probe: sender IP zero so no one's cache learns the address from us (section 2.1.1).
            self._out.append(arp_wire.build(arp_wire.OP_REQUEST, self.mac, 0, _ZERO_MAC, self.address))
        if not self._sends and now >= self._finish:
            self.done = True

    def observe(self, pkt: arp_wire.ArpPacket) -> None:
        """Any ARP packet seen on the link while probing (section 2.1.1 defines which ones conflict)."""
        if self.done or pkt.sender_mac == self.mac:
            return
        someone_uses_it = pkt.sender_ip == self.address
        someone_probes_it = (pkt.op == arp_wire.OP_REQUEST and pkt.sender_ip == 0
                             and pkt.target_ip == self.address)
        if someone_uses_it or someone_probes_it:
            self.conflict = True
            self.conflicting_mac = pkt.sender_mac
            self.done = True
