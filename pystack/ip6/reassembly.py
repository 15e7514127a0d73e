"""IPv6 reassembly (RFC 8200 section 4.5) with hard bounds.

Fragments come here after :func:`pystack.wire.ipv6.walk` has checked each one (lengths in multiples of 8,
no end past 65,535, a first fragment that holds the whole header chain: RFC 7112) and kept atomic
fragments out (RFC 6946: they are whole packets). A packet is keyed by source, destination and
identification. Overlapping fragments abandon the packet (RFC 5722, RFC 8200 4.5); exact duplicates are
dropped without harm. Partial packets expire after ``reassembly_timeout``; the packets, bytes and
fragments per packet held are bounded, the oldest packet going first. A fragment without data discards
its packet, as Linux's ip6_frag_queue does. The result is the packet rebuilt without its fragment header
(:func:`pystack.wire.ipv6.join_fragments`), to be walked again with ``reassembled=True``.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

from pystack.counters import Counters
from pystack.ip6.config import Ipv6Config
from pystack.wire import ipv6
from pystack.wire.errors import WireError
from pystack.wire.ipv6 import HeaderChain, Ipv6Packet

Key = tuple[int, int, int]


@dataclass(slots=True)
class PartialPacket:
    expires: float
    starts: list[int] = field(default_factory=list)
    """Sorted start offsets; ``parts[i]`` begins at ``starts[i]``."""
    parts: list[bytes] = field(default_factory=list)
    received: int = 0
    total: int = -1
    """Length of the fragmentable part, known once the last fragment (M clear) arrived."""
    first: bytes = b""
    """The offset-0 fragment as it arrived: its headers start the rebuilt packet, and a time exceeded
    message quotes it (RFC 8200 4.5)."""
    first_chain: HeaderChain | None = None
    held: int = 0
    """Bytes counted against ``reassembly_max_bytes``: the parts and the first fragment kept whole."""


class Reassembler:
    def __init__(self, config: Ipv6Config, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.packets: OrderedDict[Key, PartialPacket] = OrderedDict()
        self.bytes_held = 0

    def add(self, pkt: Ipv6Packet, chain: HeaderChain, now: float) -> bytes | None:
        """Add one fragment (``chain`` is its walk); return the rebuilt packet when it is complete."""
        frag = chain.fragment
        assert frag is not None, "atomic fragments and whole packets are not reassembled"
        data = pkt.datagram[chain.offset:]
        start = frag.offset
        end = start + len(data)
        key = (pkt.src, pkt.dst, frag.ident)
        if not data:
            if key in self.packets:
                self._discard(key, "ipv6.frag_empty")
            else:
                self.counters.drop("ipv6.frag_empty")
            return None
        part = self.packets.get(key)
        if part is None:
            part = self._new(key, now)
        if not frag.more:
            if part.total >= 0 and part.total != end or end < self._highest_end(part):
                self._discard(key, "ipv6.frag_inconsistent_end")
                return None
            part.total = end
        elif part.total >= 0 and end > part.total:
            self._discard(key, "ipv6.frag_inconsistent_end")
            return None
        i = bisect.bisect_left(part.starts, start)
        if i < len(part.starts) and part.starts[i] == start and len(part.parts[i]) == len(data):
            self.counters.drop("ipv6.frag_duplicate")
            return None
        if (i > 0 and part.starts[i - 1] + len(part.parts[i - 1]) > start) or (
                i < len(part.starts) and part.starts[i] < end):
            self._discard(key, "ipv6.frag_overlap")
            return None
        if len(part.parts) >= self.config.reassembly_max_fragments:
            self._discard(key, "ipv6.frag_too_many")
            return None
        cost = len(data) + (len(pkt.datagram) if start == 0 else 0)
        if cost > self.config.reassembly_max_bytes:
            self._discard(key, "ipv6.frag_no_memory")
            return None
        while self.bytes_held + cost > self.config.reassembly_max_bytes:
            oldest = next(iter(self.packets))
            self._discard(oldest, "ipv6.frag_no_memory")
            if oldest == key:
                return None
        part.starts.insert(i, start)
        part.parts.insert(i, bytes(data))
        part.received += len(data)
        part.held += cost
        self.bytes_held += cost
        if start == 0:
            part.first = bytes(pkt.datagram)
            part.first_chain = chain
        if part.total < 0 or part.received != part.total:
            return None
        del self.packets[key]
        self.bytes_held -= part.held
        assert part.first_chain is not None  # the parts cover 0..total without overlap, so offset 0 came
        try:
            whole = ipv6.join_fragments(part.first, part.first_chain, b"".join(part.parts))
        except WireError as err:
            self.counters.drop(err.reason)
            return None
        self.counters["ipv6.reassembled"] += 1
        return whole

    def _new(self, key: Key, now: float) -> PartialPacket:
        while len(self.packets) >= self.config.reassembly_max_datagrams:
            self._discard(next(iter(self.packets)), "ipv6.frag_table_full")
        part = self.packets[key] = PartialPacket(now + self.config.reassembly_timeout)
        return part

    @staticmethod
    def _highest_end(part: PartialPacket) -> int:
        return part.starts[-1] + len(part.parts[-1]) if part.starts else 0

    def _discard(self, key: Key, reason: str) -> PartialPacket:
        part = self.packets.pop(key)
        self.bytes_held -= part.held
        self.counters.drop(reason)
        return part

    def next_deadline(self) -> float | None:
        # Packets are kept in arrival order and share one timeout, so the first expires first.
        for part in self.packets.values():
            return part.expires
        return None

    def expire(self, now: float) -> list[bytes]:
        """Drop timed-out packets; return the first fragment of each whose first fragment arrived: it earns
        an ICMPv6 Time Exceeded, code 1, quoting it (RFC 8200 4.5)."""
        expired = []
        while self.packets:
            key, part = next(iter(self.packets.items()))
            if part.expires > now:
                break
            self._discard(key, "ipv6.frag_timeout")
            if part.first:
                expired.append(part.first)
        return expired
