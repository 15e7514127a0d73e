"""The bulk send path of one TCP connection: Ethernet, IPv4 (or IPv6: :class:`TcpPath6`) and TCP headers in
one struct pack.

A burst of segments from one connection (one ``_output`` pass) shares its next hop's MAC, its addresses
and ports, its TTL and TOS, and (within the pass) its ACK, window and options. The IP layer resolves the
route and the neighbour once per burst and hands TCP a :class:`TcpPath`; each segment then costs one
checksum of its payload and one pack of the 54 header bytes, instead of a TCP build, an IP build and an
Ethernet header each with its own calls and copies. Frames are the same bytes the layered path makes
(a unit test compares them), so nothing on the wire tells the two apart.
"""

from __future__ import annotations

import struct
from typing import Callable

from pystack.counters import Counters
from pystack.wire.checksum import fold, ones_sum

_FRAME_HEADER = struct.Struct("!6s6sH" "BBHHHBBHII" "HHIIHHHH")
"""Ethernet (dst, src, type), option-less IPv4, and the fixed TCP header: 54 bytes."""
_ETHERTYPE_IPV4 = 0x0800
_PROTO_TCP = 6
_FLAG_DF = 0x4000
_TCP_HEADER_LEN = 20
_IP_HEADER_LEN = 20


class TcpPath:
    """Frames for one connection's segments, valid for one burst (the neighbour is looked up per burst,
    so a MAC that changes or expires is seen at the next one)."""

    __slots__ = ("_out", "_counters", "_next_ident", "_dst_mac", "_src_mac", "_tos", "_ttl", "_src", "_dst", "_sport",
                 "_dport", "_ip_sum", "_tcp_sum", "sent")

    def __init__(self, out: list[bytes], counters: Counters, next_ident: Callable[[], int], dst_mac: bytes,
                 src_mac: bytes, src: int, dst: int, sport: int, dport: int, ttl: int, tos: int = 0) -> None:
        self._out = out
        self._counters = counters
        self._next_ident = next_ident
        self._dst_mac = dst_mac
        self._src_mac = src_mac
        self._tos = tos
        self._ttl = ttl
        self._src = src
        self._dst = dst
        self._sport = sport
        self._dport = dport
        addresses = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        # RFC 791 header checksum: every word but total length and identification is fixed here.
        self._ip_sum = 0x4500 + tos + _FLAG_DF + (ttl << 8) + _PROTO_TCP + addresses
        # RFC 9293 3.1: the pseudo-header (less the TCP length) and the ports are fixed too.
        self._tcp_sum = addresses + _PROTO_TCP + sport + dport
        self.sent = 0
        """Frames appended so far."""

    def send(self, seq: int, ack: int, flags: int, window: int, options: bytes,
             payload: bytes | bytearray | memoryview) -> None:
        """Append one frame carrying a TCP segment; ``options`` are padded to 4 bytes (build_options)."""
        olen = len(options)
        hlen = _TCP_HEADER_LEN + olen
        tcp_len = hlen + len(payload)
        off_flags = (hlen << 10) | flags  # data offset in 32-bit words, in the top 4 bits
        total = self._tcp_sum + tcp_len + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF) \
            + off_flags + window
        if olen:
            total += ones_sum(options)  # whole 16-bit words: summed apart, the payload is not copied
        tcp_csum = ~ones_sum(payload, total) & 0xFFFF
        ident = self._next_ident()
        ip_len = _IP_HEADER_LEN + tcp_len
        ip_csum = ~fold(self._ip_sum + ip_len + ident) & 0xFFFF
        header = _FRAME_HEADER.pack(self._dst_mac, self._src_mac, _ETHERTYPE_IPV4, 0x45, self._tos, ip_len, ident,
                                    _FLAG_DF, self._ttl, _PROTO_TCP, ip_csum, self._src, self._dst,
                                    self._sport, self._dport, seq, ack, off_flags, window, tcp_csum, 0)
        self._out.append(b"".join((header, options, payload)) if olen else header + payload)
        self.sent += 1

    def finish(self) -> int:
        """End of the burst: count the frames once (not per frame); returns how many were sent."""
        self._counters["frames_out"] += self.sent
        return self.sent


_FRAME_HEADER6 = struct.Struct("!14s" "IHBB32s" "HHIIHHHH")
"""Ethernet (one run of dst, src and type), the IPv6 header (RFC 8200 3) with both addresses as one run, and
the fixed TCP header: 74 bytes."""
_ETHERTYPE_IPV6 = b"\x86\xdd"


class TcpPath6(TcpPath):
    """:class:`TcpPath` over IPv6: Ethernet, IPv6 and TCP headers in one pack. IPv6 has no header checksum
    and no identification, so a segment costs its TCP checksum (over the IPv6 pseudo-header, RFC 8200
    8.1) and the pack."""

    __slots__ = ("_link_head", "_vtcfl", "_hop_limit", "_addresses")

    def __init__(self, out: list[bytes], counters: Counters, dst_mac: bytes, src_mac: bytes, src: int, dst: int,
                 sport: int, dport: int, hop_limit: int, traffic_class: int = 0) -> None:
        self._out = out
        self._counters = counters
        self._sport = sport
        self._dport = dport
        self._link_head = dst_mac + src_mac + _ETHERTYPE_IPV6
        self._vtcfl = 6 << 28 | traffic_class << 20  # flow label 0, as the layered path sends
        self._hop_limit = hop_limit
        self._addresses = src.to_bytes(16, "big") + dst.to_bytes(16, "big")
        # An integer is congruent to the sum of its 16-bit words modulo 0xFFFF (pystack.wire.checksum): the
        # pseudo-header's addresses and Next Header, and the ports, summed once for the burst.
        self._tcp_sum = (src + dst) % 0xFFFF + _PROTO_TCP + sport + dport
        self.sent = 0

    def send(self, seq: int, ack: int, flags: int, window: int, options: bytes,
             payload: bytes | bytearray | memoryview) -> None:
        olen = len(options)
        hlen = _TCP_HEADER_LEN + olen
        tcp_len = hlen + len(payload)
        off_flags = (hlen << 10) | flags
        total = self._tcp_sum + tcp_len + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF) \
            + off_flags + window
        if olen:
            total += ones_sum(options)
        tcp_csum = ~ones_sum(payload, total) & 0xFFFF
        header = _FRAME_HEADER6.pack(self._link_head, self._vtcfl, tcp_len, _PROTO_TCP, self._hop_limit,
                                     self._addresses, self._sport, self._dport, seq, ack, off_flags, window,
                                     tcp_csum, 0)
        self._out.append(b"".join((header, options, payload)) if olen else header + payload)
        self.sent += 1
