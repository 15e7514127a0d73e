"""ARP (RFC 826) for the interface's IPv4 address: answering for it, resolving next hops, holding datagrams
while a resolution runs, and announcing a new address (RFC 5227 2.3). The table is pystack.ip.arp_cache."""

from __future__ import annotations

from typing import Callable

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.ethernet import EthernetLink
from pystack.iface.ipv4_address import Ipv4Address, is_martian_source
from pystack.ip.arp_cache import ArpCache
from pystack.reasons import Note, arp_key
from pystack.wire import arp as arp_wire
from pystack.wire import ethernet
from pystack.wire.errors import WireError

_ZERO_MAC = b"\x00" * 6


class Arp:
    """ARP of one interface. ``cache`` is the table; ``observers`` see every valid packet received (the DHCP
    client's RFC 5227 probe watches them)."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, addr: Ipv4Address) -> None:
        self.config = config
        self.counters = counters
        self.link = link
        self.addr = addr
        self.cache = ArpCache(config, counters)
        self.observers: list[Callable[[arp_wire.ArpPacket], None]] = []
        self._announce: list[float] = []
        self.why: Note | None = None
        """Told why each ARP packet is sent, while a capture listens (pystack.reasons)."""
        link.protocols[ethernet.ETHERTYPE_ARP] = self.receive

    # ------------------------------------------------------------------ resolution

    def resolve(self, next_hop: int, now: float) -> bytes | None:
        """The MAC of the on-link ``next_hop``, or None while ARP has not resolved it (hold the datagram).
        A stale entry is still used, and polled by unicast (RFC 1122 2.3.2.1)."""
        mac, ask = self.cache.lookup(next_hop, now)
        if ask and mac is not None:
            self.request(next_hop, mac, "ARP request: the entry is stale, polled by unicast (RFC 1122 2.3.2.1)")
        return mac

    def hold(self, next_hop: int, packet: bytes, now: float) -> None:
        """Keep an IPv4 datagram until ``next_hop`` resolves; the first one held asks for it."""
        if self.cache.enqueue(next_hop, packet, now):
            self.request(next_hop, None, "ARP request: a datagram waits for this next hop's MAC")

    def request(self, target_ip: int, known_mac: bytes | None, reason: str) -> None:
        """Broadcast a request, or unicast it to refresh a stale entry (RFC 1122 2.3.2.1)."""
        self.counters["arp.requests_sent"] += 1
        if self.why is not None:
            self.why(arp_key(arp_wire.OP_REQUEST, self.addr.address or 0, target_ip), reason)
        request = arp_wire.build(arp_wire.OP_REQUEST, self.link.mac, self.addr.address or 0, _ZERO_MAC, target_ip)
        self.link.send(known_mac or ethernet.BROADCAST, ethernet.ETHERTYPE_ARP, request)

    # ------------------------------------------------------------------ receive

    def receive(self, payload: memoryview, link_unicast: bool, now: float) -> None:
        pkt = arp_wire.parse(payload)
        for observer in self.observers:
            observer(pkt)
        us = self.addr.address
        if pkt.sender_ip == us and us is not None:
            self.counters.drop("arp.address_conflict")  # someone else claims our address
            return
        if pkt.sender_mac[0] & 1:
            raise WireError("arp.bad_sender_mac")
        sip = pkt.sender_ip
        if is_martian_source(sip) or (sip == self.addr.broadcast and us is not None):
            raise WireError("arp.martian_sender")  # as IPv4 refuses these sources (Linux: arp_process)
        for_us = us is not None and pkt.target_ip == us
        # RFC 826 "merge": refresh a known sender; add it when the packet is addressed to us.
        if sip:
            for packet in self.cache.update(sip, pkt.sender_mac, now, create=for_us):
                self.link.send(pkt.sender_mac, ethernet.ETHERTYPE_IPV4, packet)
        if pkt.op == arp_wire.OP_REQUEST:
            if for_us and us is not None:
                self.counters["arp.replies_sent"] += 1
                if self.why is not None:
                    self.why(arp_key(arp_wire.OP_REPLY, us, sip), "ARP reply: asked for our address")
                reply = arp_wire.build(arp_wire.OP_REPLY, self.link.mac, us, pkt.sender_mac, sip)
                self.link.send(pkt.sender_mac, ethernet.ETHERTYPE_ARP, reply)
            else:
                self.counters["arp.requests_ignored"] += 1
        elif not for_us:
            self.counters["arp.replies_ignored"] += 1  # a reply for another host (or gratuitous)

    # ------------------------------------------------------------------ announcements and timers

    def announce(self, now: float) -> None:
        """Announce a new address (RFC 5227 2.3): ``arp_announcements`` requests, the first one now."""
        cfg = self.config
        self._announce = [now + i * cfg.arp_announce_interval for i in range(cfg.arp_announcements)]

    def stop_announcing(self) -> None:
        self._announce = []

    def next_deadline(self) -> float | None:
        best = self.cache.next_deadline()
        if self._announce and (best is None or self._announce[0] < best):
            best = self._announce[0]
        return best

    def handle_timer(self, now: float) -> list[bytes]:
        """Send the announcements and requests now due; returns the datagrams of resolutions that gave up."""
        while self._announce and self._announce[0] <= now:
            self._announce.pop(0)
            us = self.addr.address
            if us is not None:
                # RFC 5227 2.3: an ARP request with sender and target IP both ours.
                self.counters["arp.announcements_sent"] += 1
                if self.why is not None:
                    self.why(arp_key(arp_wire.OP_REQUEST, us, us), "ARP announcement of our address (RFC 5227 2.3)")
                self.link.send(ethernet.BROADCAST, ethernet.ETHERTYPE_ARP, arp_wire.build(
                    arp_wire.OP_REQUEST, self.link.mac, us, _ZERO_MAC, us))
        retry, failed = self.cache.handle_timer(now)
        for ip in retry:
            waiting = self.cache.pending.get(ip)
            tries = waiting.tries if waiting is not None else 0
            self.request(ip, None, f"ARP request again, retry #{tries - 1}: no reply yet")
        return [packet for _ip, packets in failed for packet in packets]
