"""ICMP (RFC 792, RFC 1122 3.2.2) for one interface: echo answered, errors sent about datagrams we received
and handed to the transport concerned when they come back about ours; and ping's fast path."""

from __future__ import annotations

import struct
from typing import Callable, Mapping

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.arp import Arp
from pystack.iface.ethernet import EthernetLink
from pystack.iface.ipv4 import Ipv4
from pystack.iface.ipv4_address import Ipv4Address, is_martian_source
from pystack.iface.transport import TransportLayer
from pystack.ip.ratelimit import IcmpRateLimiter
from pystack.reasons import Note, icmp_key
from pystack.wire import icmp as icmp_wire
from pystack.wire import ipv4 as ipv4_wire
from pystack.wire.checksum import fold, incremental_update
from pystack.wire.errors import WireError
from pystack.wire.ipv4 import IPv4Packet

EchoReplyHandler = Callable[[int, int, bytes, float], None]
"""``handler(source, rest, payload, now)`` for echo replies, set by a local ping client."""
EchoLane = Callable[[bytes | memoryview, float], "bytes | None"]
"""``answer_echo(frame, now)``: the reply to an echo request, or None (pystack.iface.icmpv6's for IPv6)."""

_ECHO_HEADERS = struct.Struct("!6s6sHBBHHHBBHIIBBH")
"""Ethernet, IPv4 (no options) and the first ICMP word, as one unpack for the echo fast path: one C call where
slicing field by field made a dozen objects."""
_ECHO_REPLY = struct.Struct("!6s10sHH4sH10sH")
"""An echo reply's headers from what changes per request (destination MAC, total length, ident, the two
checksums) and three fixed runs (our MAC to the type of service; flags to protocol; the addresses, type and
code), packed in one C call."""

_ECHO_REASON = "echo reply (RFC 792)"
_ERROR_REASONS = {
    (3, 0): "net unreachable: no route (RFC 1122 3.2.2.1)",
    (3, 1): "host unreachable (RFC 1122 3.2.2.1)",
    (3, 2): "protocol unreachable: no transport for this IP protocol (RFC 1122 3.2.2.1)",
    (3, 3): "port unreachable: no socket on this port (RFC 1122 4.1.3.1)",
    (3, 4): "fragmentation needed and DF set (RFC 1191)",
    (11, 0): "time to live exceeded in transit (RFC 792)",
    (11, 1): "fragment reassembly time exceeded (RFC 792, RFC 1122 3.3.2)",
    (12, 0): "parameter problem (RFC 792)",
}
"""Why an ICMP error of each (type, code) is sent, for a capture's comments."""


class Icmpv4:
    """ICMP of one interface, registered with IPv4 as protocol 1 and as its error reporter."""

    def __init__(self, config: StackConfig, counters: Counters, link: EthernetLink, arp: Arp, addr: Ipv4Address,
                 ipv4: Ipv4, transports: Mapping[int, TransportLayer], internal_error: Callable[[str], None]) -> None:
        self.config = config
        self.counters = counters
        self.link = link
        self.addr = addr
        self.ipv4 = ipv4
        self.transports = transports
        self.limiter = IcmpRateLimiter(config.icmp_ratelimit_interval, config.icmp_ratelimit_burst,
                                       config.icmp_global_rate, config.icmp_global_burst,
                                       config.icmp_ratelimit_destinations)
        self.echo_reply_handler: EchoReplyHandler | None = None
        self.why: Note | None = None
        """Told why each ICMP message is sent, while a capture listens (pystack.reasons)."""
        self._arp_entries = arp.cache.entries
        self._internal_error = internal_error
        self._echo_peer: tuple | None = None
        """What answer_echo remembers of the last echo request it answered (see _echo_peer_for)."""
        self.answer_echo6: EchoLane = _no_echo6
        """IPv6's lane (Icmpv6.answer_echo), asked about the IPv6 frames answer_echo is given: the stack
        sets it when IPv6 comes up with the fast paths on."""
        ipv4.protocols[ipv4_wire.PROTO_ICMP] = self.receive
        ipv4.errors = self

    # ------------------------------------------------------------------ receive

    def receive(self, pkt: IPv4Packet, header: memoryview, payload: memoryview, now: float) -> None:
        msg = icmp_wire.parse(payload)
        mtype = msg.type
        if mtype == icmp_wire.TYPE_ECHO_REQUEST:
            if pkt.dst != self.addr.address and self.config.icmp_echo_ignore_broadcasts:
                self.counters.drop("icmp.broadcast_echo_ignored")
                return
            if self.why is not None:
                self.why(icmp_key(self.addr.address or 0, pkt.src, icmp_wire.TYPE_ECHO_REPLY, 0), _ECHO_REASON)
            try:
                self.ipv4.send(pkt.src, ipv4_wire.PROTO_ICMP, icmp_wire.echo_reply_from_request(payload), now,
                               tos=pkt.tos)
            except OSError:
                self.counters.drop("icmp.echo_unroutable")  # e.g. an off-link source and no gateway
                return
            self.counters["icmp.echo_replies_sent"] += 1
        elif mtype == icmp_wire.TYPE_ECHO_REPLY:
            self.counters["icmp.echo_replies_received"] += 1
            if self.echo_reply_handler is not None:
                self.echo_reply_handler(pkt.src, msg.rest, bytes(msg.body), now)
        elif mtype in icmp_wire.ERROR_TYPES:
            self._receive_error(msg, now)
        else:
            self.counters.drop("icmp.unsupported_type")

    def _receive_error(self, msg: icmp_wire.IcmpMessage, now: float) -> None:
        """Hand an ICMP error to the transport it concerns (RFC 1122 3.2.2.1, 4.1.3.3)."""
        quote = msg.body
        if len(quote) < ipv4_wire.MIN_HEADER_LEN + 8 or quote[0] >> 4 != 4:
            raise WireError("icmp.bad_quote")
        ihl = (quote[0] & 0x0F) * 4
        if ihl < ipv4_wire.MIN_HEADER_LEN or len(quote) < ihl + 8:
            raise WireError("icmp.bad_quote")
        quoted_src = int.from_bytes(quote[12:16], "big")
        if quoted_src != self.addr.address:
            raise WireError("icmp.quote_not_ours")
        self.counters["icmp.errors_received"] += 1
        layer = self.transports.get(quote[9])
        if layer is not None:
            mtu = msg.rest & 0xFFFF if msg.type == icmp_wire.TYPE_DEST_UNREACHABLE else 0
            layer.icmp_error(msg.type, msg.code, quoted_src, int.from_bytes(quote[16:20], "big"), quote[ihl:], now,
                             next_hop_mtu=mtu)

    def unreachable_locally(self, packet: bytes, now: float) -> None:
        """ARP gave up on a datagram we sent: tell the local sender, as the kernel does with EHOSTUNREACH."""
        self.counters.drop("arp.unresolved")
        if self.addr.address is None:
            return
        try:
            pkt = ipv4_wire.parse(packet)
        except WireError:
            return
        if pkt.fragment_offset or pkt.src != self.addr.address:
            return
        body = icmp_wire.error_body(packet[: pkt.header_len], pkt.payload, self.config.mtu)
        msg = icmp_wire.parse(icmp_wire.build(icmp_wire.TYPE_DEST_UNREACHABLE, icmp_wire.CODE_HOST_UNREACHABLE, 0,
                                              body))
        try:
            self._receive_error(msg, now)
        except WireError:
            pass

    # ------------------------------------------------------------------ send

    def send_error(self, pkt: IPv4Packet, header: bytes | memoryview, payload: bytes | memoryview,
                   mtype: int, code: int, now: float, rest: int = 0) -> None:
        """Send an ICMP error about a datagram we received, quoting as much of it as fits 576 bytes.

        RFC 1122 3.2.2: never about an ICMP error, a non-first fragment, or a source that is not a unique
        host; and rate-limited like the kernel.
        """
        if pkt.protocol == ipv4_wire.PROTO_ICMP and len(payload) and payload[0] not in (
                icmp_wire.TYPE_ECHO_REQUEST, icmp_wire.TYPE_ECHO_REPLY):
            return
        if pkt.src == 0 or pkt.fragment_offset:
            return
        if not self.limiter.allow(pkt.src, now):
            self.counters["icmp.errors_ratelimited"] += 1
            return
        self.counters["icmp.errors_sent"] += 1
        if self.why is not None:
            reason = _ERROR_REASONS.get((mtype, code), f"ICMP error type {mtype} code {code}")
            self.why(icmp_key(self.addr.address or 0, pkt.src, mtype, code), reason)
        body = icmp_wire.error_body(header, payload, self.config.mtu)
        try:
            self.ipv4.send(pkt.src, ipv4_wire.PROTO_ICMP, icmp_wire.build(mtype, code, rest, body), now)
        except OSError:
            self.counters.drop("icmp.error_unroutable")

    # ------------------------------------------------------------------ the echo fast path

    def answer_echo(self, frame: bytes | memoryview, now: float) -> bytes | None:
        """Ping's fast path: the reply to a plain echo request from an on-link neighbour, or None.

        None means "not that case": the frame must then go to ``Stack.receive_frame``, which answers,
        routes or drops it. The poll loop calls this first with each wake-up's first frame and writes the
        reply at once, before the batch bookkeeping; ``receive_frame`` calls it too. When it answers, it
        counts the frame in and the reply out.

        Ping's round trip is mostly the time from a sleeping process's wake-up to its write, and with 2 ms
        between pings every line on the way runs on a cold cache and adds to it (see docs/performance.md,
        "Where a ping's time goes"), so this is builtins only, and a request whose addresses and fixed header
        fields are those of the last one answered (the same ping, :meth:`_echo_peer_for`) is not checked field
        by field again. It takes only the common case, checked as fully as the layered path checks it: unicast
        to our MAC from a unicast on-link source, IPv4 with no options, not a fragment, the reserved flag
        clear, both checksums right (RFC 1071, summed as big integers as pystack.wire.checksum does), lengths
        consistent, a reply that fits the MTU, and a fresh ARP entry for the source. The reply is the layered
        path's byte for byte (tests compare them).
        """
        try:
            if len(frame) < 42 or frame[13] or frame[23] != 1 or frame[34] != 8:
                # Not an IPv4 echo request (receive_frame asks again), but maybe ping -6's. The EtherType's
                # low byte (0 for IPv4, 0xDD for IPv6, 6 for ARP) turns other families away first: an IPv6
                # source's second byte is often 1, ICMP's number at IPv4's protocol offset.
                return (self.answer_echo6(frame, now) if len(frame) > 61 and frame[54] == 128 and frame[12] == 0x86
                        else None)
            peer = self._echo_peer
            if peer is None or frame[26:36] != peer[0] or frame[:16] != peer[1] or frame[20:24] != peer[2]:
                peer = self._echo_peer_for(frame)
                if peer is None:
                    return self.answer_echo6(frame, now) if frame[12] == 0x86 else None
            src, mtu, h_base, reply_mid, reply_flags, reply_addrs = peer[3:]
            total = (frame[16] << 8) | frame[17]
            if total < 28 or total + 14 > len(frame) or total > mtu:  # a reply to fragment: layered
                return None
            entry = self._arp_entries.get(src)
            if entry is None or now >= entry.expires:
                return None  # unknown or stale: the layered path asks ARP
            end = 14 + total
            # Both sums are non-zero (0x45 and type 8 lead them), so each verifies iff it is 0 mod 0xFFFF.
            body = int.from_bytes(frame[34:end], "big")
            if total & 1:
                body <<= 8
            if int.from_bytes(frame[14:34], "big") % 0xFFFF or body % 0xFFFF:
                return None  # the layered path counts which checksum was wrong
            # The type word goes 0x0800 -> 0; a result of 0 is left to the layered path (RFC 1624).
            csum = incremental_update((frame[36] << 8) | frame[37], 0x0800, 0)
            if not csum:
                return None
            ident = self.ipv4.next_ident()
            h = ~fold(h_base + total + ident) & 0xFFFF  # RFC 791: the fixed fields' sum is in h_base
            counters = self.counters
            counters["frames_in"] += 1
            counters["frames_out"] += 1
            counters["icmp.echo_replies_sent"] += 1
            if self.why is not None:
                self.why(icmp_key(self.addr.address or 0, src, icmp_wire.TYPE_ECHO_REPLY, 0), _ECHO_REASON)
            return _ECHO_REPLY.pack(entry.mac, reply_mid, total, ident, reply_flags, h, reply_addrs,
                                    csum) + frame[38:end]
        except Exception:  # a bug must not stop the loop: counted, and the layered path gets the frame
            self._internal_error("echo")
            return None

    def _echo_peer_for(self, frame: bytes | memoryview) -> tuple | None:
        """Check the fields of an echo request that stay the same from one request of a ping to the next
        (MACs, IPv4 header but for length, ident and checksum, addresses, ICMP type and code); if they are
        the fast path's case, remember them with what the reply needs (``_echo_peer``) and return that.

        What it checks depends on our address and netmask too, so a new address (or none) forgets it
        (:meth:`forget_echo_peer`); the ARP entry, the lengths and the checksums are checked on every
        request."""
        (dst_mac, src_mac, ethertype, vihl, tos, _total, _ident, flags_offset, _ttl, _proto, _hsum, src, dst,
         icmp_type, code, _csum) = _ECHO_HEADERS.unpack_from(frame)
        addr = self.addr
        us = addr.address
        mac = self.link.mac
        if (dst_mac != mac or src_mac[0] & 1 or ethertype != 0x0800 or vihl != 0x45
                or flags_offset & 0xBFFF or icmp_type != 8 or code or us is None or dst != us):
            return None  # options, reserved flag, MF, offset, another type or host: the layered path
        if (src ^ us) & addr.netmask or src == addr.broadcast or src == us or src == 0 or is_martian_source(src):
            return None  # off-link (the layered path routes via the gateway), or not a unicast neighbour
        ttl = self.config.default_ttl
        # Echo replies go without DF, as Linux's (flags 0); the header checksum's fixed part is summed here.
        h_base = 0x4500 + tos + (ttl << 8) + 1 + (us >> 16) + (us & 0xFFFF) + (src >> 16) + (src & 0xFFFF)
        peer = (bytes(frame[26:36]), bytes(frame[:16]), bytes(frame[20:24]), src, self.config.mtu, h_base,
                mac + bytes((0x08, 0x00, 0x45, tos)), bytes((0, 0, ttl, 1)),
                (us << 48 | src << 16).to_bytes(10, "big"))
        self._echo_peer = peer
        return peer

    def forget_echo_peer(self) -> None:
        self._echo_peer = None


def _no_echo6(frame: bytes | memoryview, now: float) -> None:
    """``answer_echo6`` while IPv6 is down or the fast paths are off: the layered path answers."""
    return None
