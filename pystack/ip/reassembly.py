"""IPv4 reassembly (RFC 791 section 3.2, RFC 815) with hard bounds.

Overlapping fragments discard the whole datagram, as RFC 5722 prescribes for IPv6 and Linux does for
IPv4 since the FragmentSmack fix; exact duplicates are dropped without harm. Partial datagrams expire
after ``reassembly_timeout``; the number of datagrams and of bytes held are bounded, the oldest going
first. A last fragment that carries no data discards its datagram, as Linux does.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.wire.checksum import internet_checksum
from pystack.wire.ipv4 import MAX_DATAGRAM, IPv4Packet

Key = tuple[int, int, int, int]


def whole_header(first_header: bytes, payload_len: int) -> bytes:
    """The first fragment's header made the whole datagram's, as Linux's ip_frag_reasm does: the total
    length of everything, no fragment offset and no MF (RFC 791 3.2), the checksum computed again. So the
    layers above, and an ICMP error's quote, see one datagram and not its last fragment."""
    header = bytearray(first_header)
    header[2:4] = (len(header) + payload_len).to_bytes(2, "big")
    header[6:8] = b"\0\0"
    header[10:12] = b"\0\0"
    header[10:12] = internet_checksum(header).to_bytes(2, "big")
    return bytes(header)


@dataclass(slots=True)
class PartialDatagram:
    expires: float
    starts: list[int] = field(default_factory=list)
    """Sorted start offsets; ``parts[i]`` begins at ``starts[i]``."""
    parts: list[bytes] = field(default_factory=list)
    received: int = 0
    total: int = -1
    """Payload length, known once the last fragment (MF clear) arrived."""
    first_header: bytes = b""
    """The header of the offset-0 fragment, quoted by ICMP errors about this datagram."""


@dataclass(slots=True)
class Reassembled:
    header: bytes
    payload: bytes


class Reassembler:
    def __init__(self, config: StackConfig, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.datagrams: OrderedDict[Key, PartialDatagram] = OrderedDict()
        self.bytes_held = 0

    def add(self, pkt: IPv4Packet, header: bytes | memoryview, now: float) -> Reassembled | None:
        """Add one fragment; return the whole datagram when it is complete."""
        start = pkt.fragment_offset
        data = pkt.payload
        end = start + len(data)
        more = pkt.more_fragments
        if more and (len(data) == 0 or len(data) & 7):
            self.counters.drop("ipv4.frag_bad_length")  # RFC 791: all but the last carry 8-byte multiples
            return None
        if not data:
            # A last fragment with no data (MF clear, offset > 0) carries nothing to place and would
            # complete a datagram by its offset alone. Linux's ip_frag_queue takes ``end == offset`` as
            # invalid and kills the whole queue (discard_qp); so do we.
            key = (pkt.src, pkt.dst, pkt.protocol, pkt.ident)
            if key in self.datagrams:
                self._discard(key, "ipv4.empty_fragment")
            else:
                self.counters.drop("ipv4.empty_fragment")
            return None
        if end > MAX_DATAGRAM - pkt.header_len:
            self.counters.drop("ipv4.frag_too_big")
            return None
        key = (pkt.src, pkt.dst, pkt.protocol, pkt.ident)
        dg = self.datagrams.get(key)
        if dg is None:
            dg = self._new(key, now)
        if not more:
            if dg.total >= 0 and dg.total != end or end < self._highest_end(dg):
                self._discard(key, "ipv4.frag_inconsistent_end")
                return None
            dg.total = end
        elif dg.total >= 0 and end > dg.total:
            self._discard(key, "ipv4.frag_inconsistent_end")
            return None
        i = bisect.bisect_left(dg.starts, start)
        if i < len(dg.starts) and dg.starts[i] == start and len(dg.parts[i]) == len(data):
            self.counters.drop("ipv4.frag_duplicate")
            return None
        if (i > 0 and dg.starts[i - 1] + len(dg.parts[i - 1]) > start) or (i < len(dg.starts) and dg.starts[i] < end):
            self._discard(key, "ipv4.frag_overlap")
            return None
        if len(data) > self.config.reassembly_max_bytes:
            self._discard(key, "ipv4.frag_no_memory")
            return None
        while self.bytes_held + len(data) > self.config.reassembly_max_bytes:
            oldest = next(iter(self.datagrams))
            self._discard(oldest, "ipv4.frag_no_memory")
            if oldest == key:
                return None
        dg.starts.insert(i, start)
        dg.parts.insert(i, bytes(data))
        dg.received += len(data)
        self.bytes_held += len(data)
        if start == 0:
            dg.first_header = bytes(header)
        if dg.total >= 0 and dg.received == dg.total:
            del self.datagrams[key]
            self.bytes_held -= dg.received
            self.counters["ipv4.reassembled"] += 1
            payload = b"".join(dg.parts)
            return Reassembled(whole_header(dg.first_header, len(payload)), payload)
        return None

    def _new(self, key: Key, now: float) -> PartialDatagram:
        while len(self.datagrams) >= self.config.reassembly_max_datagrams:
            self._discard(next(iter(self.datagrams)), "ipv4.frag_table_full")
        dg = self.datagrams[key] = PartialDatagram(now + self.config.reassembly_timeout)
        return dg

    @staticmethod
    def _highest_end(dg: PartialDatagram) -> int:
        return dg.starts[-1] + len(dg.parts[-1]) if dg.starts else 0

    def _discard(self, key: Key, reason: str) -> None:
        dg = self.datagrams.pop(key)
        self.bytes_held -= dg.received
        self.counters.drop(reason)

    def next_deadline(self) -> float | None:
        # Datagrams are kept in arrival order and all share one timeout, so the first expires first.
        for dg in self.datagrams.values():
            return dg.expires
        return None

    def expire(self, now: float) -> list[Reassembled]:
        """Drop timed-out datagrams; return those whose first fragment arrived (RFC 792: they earn an
        ICMP time exceeded, code 1), with what arrived of their payload for the quote."""
        expired = []
        while self.datagrams:
            key, dg = next(iter(self.datagrams.items()))
            if dg.expires > now:
                break
            self._discard(key, "ipv4.frag_timeout")
            if dg.first_header:
                expired.append(Reassembled(dg.first_header, dg.parts[0]))
        return expired
