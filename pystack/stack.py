"""The sans-I/O core: one interface's Ethernet, ARP, IPv4, ICMP and UDP (and TCP when attached).

It never touches a file descriptor or reads a clock. The caller feeds frames and the time::

    stack.receive_frame(frame, now)      # a frame read from the link
    stack.handle_timer(now)              # when now >= stack.get_timer()
    for frame in stack.frames_to_send(): # then write these to the link
        ...

Malformed input never raises out of here: it is dropped and counted in ``stack.counters``.
"""

from __future__ import annotations

import errno
import logging
import random
import struct
from typing import Callable, Protocol

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.ip.arp_cache import ArpCache
from pystack.ip.ratelimit import IcmpRateLimiter
from pystack.ip.reassembly import Reassembler
from pystack.ip.tcp_path import TcpPath
from pystack.tcp.layer import TcpLayer
from pystack.udp.layer import UdpLayer
from pystack.wire import WireError
from pystack.wire import arp as arp_wire
from pystack.wire import ethernet
from pystack.wire import icmp as icmp_wire
from pystack.wire import ipv4
from pystack.wire.checksum import fold, incremental_update
from pystack.wire.gso import GsoFrame, segment
from pystack.wire.virtio import PartialChecksumFrame

log = logging.getLogger("pystack")

LIMITED_BROADCAST = 0xFFFFFFFF
_ZERO_MAC = b"\x00" * 6
_ETH_IPV4 = ethernet.ETHERTYPE_IPV4
_ETH_ARP = ethernet.ETHERTYPE_ARP
_ETH_IPV6 = ethernet.ETHERTYPE_IPV6
_ECHO_HEADERS = struct.Struct("!6s6sHBBHHHBBHIIBBH")
"""Ethernet, IPv4 (no options) and the first ICMP word, as one unpack for the echo fast path: one C call where
slicing field by field made a dozen objects."""
_ECHO_REPLY = struct.Struct("!6s10sHH4sH10sH")
"""An echo reply's headers from what changes per request (destination MAC, total length, ident, the two
checksums) and three fixed runs (our MAC to the type of service; flags to protocol; the addresses, type and
code), packed in one C call."""


class TransportLayer(Protocol):
    """What the stack needs of a transport it hands datagrams to (TCP is attached this way)."""

    def receive(self, src: int, dst: int, segment: memoryview, now: float,
                checksum_trusted: bool = False) -> bool | None:
        """One datagram's payload; False when no socket has its port (answered by port unreachable)."""
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...

    def icmp_error(self, icmp_type: int, icmp_code: int, local_ip: int, remote_ip: int,
                   quoted: bytes | memoryview, now: float, next_hop_mtu: int = 0) -> None:
        """An ICMP error about a datagram we sent; ``quoted`` starts at the transport header."""


class TimerSource(Protocol):
    """Something with its own deadlines that the stack's timer should cover (the DHCP client)."""

    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class Stack:
    """One Ethernet interface with one IPv4 address (or none yet, for DHCP)."""

    def __init__(self, mac: bytes, config: StackConfig | None = None, counters: Counters | None = None,
                 rng: random.Random | None = None) -> None:
        self.mac = mac
        self.rng = rng if rng is not None else random.Random()
        """Every random choice of the stack (IPv4 idents, ephemeral ports) comes from here: a seeded one
        makes a run repeatable."""
        self.config = config or StackConfig()
        self.counters = counters or Counters()
        self.address: int | None = None
        self.netmask = 0
        self.gateway: int | None = None
        self._broadcast: int | None = None
        self.multicast_macs: set[bytes] = set()
        self._out: list[bytes] = []
        self.arp = ArpCache(self.config, self.counters)
        self.reassembler = Reassembler(self.config, self.counters)
        cfg = self.config
        self.icmp_limiter = IcmpRateLimiter(cfg.icmp_ratelimit_interval, cfg.icmp_ratelimit_burst,
                                            cfg.icmp_global_rate, cfg.icmp_global_burst)
        self.udp = UdpLayer(cfg, self.counters, self._emit_udp, self.source_for, self.rng)
        self.tcp = TcpLayer(cfg.tcp, self.counters, self._emit_tcp, mtu=cfg.mtu, rng=self.rng)
        self.tcp.segment_path = self._tcp_path
        self.transports: dict[int, TransportLayer] = {}
        """IP protocols above ours by number (6 for TCP, 17 for UDP)."""
        self._takes_broadcast: set[int] = set()
        """Protocols whose layer takes datagrams sent to a broadcast or multicast address."""
        self.attach_transport(ipv4.PROTO_TCP, self.tcp)
        self.attach_transport(ipv4.PROTO_UDP, self.udp, broadcast=True)
        self.echo_reply_handler: Callable[[int, int, bytes, float], None] | None = None
        """Called with (source, rest, payload, now) for echo replies, by a local ping client."""
        self.arp_observers: list[Callable[[arp_wire.ArpPacket], None]] = []
        """Called with every valid ARP packet received (the DHCP client's RFC 5227 probe watches them)."""
        self.timer_sources: list[TimerSource] = []
        """Extra deadlines merged into :meth:`get_timer` and served by :meth:`handle_timer`."""
        self.now = 0.0
        """The time of the frame or timer being handled, for callbacks that need a clock."""
        self._ident = self.rng.randrange(0x10000)
        self._echo_peer: tuple | None = None
        """What answer_echo remembers of the last echo request it answered (see _echo_peer_for)."""
        self._announce: list[float] = []
        self._internal_errors = 0
        self._link_unicast = True
        """False while handling an IPv4 datagram that came in a link-layer broadcast or multicast frame."""
        self._checksum_trusted = False
        """True while handling a frame whose transport checksum the kernel left partial (see
        pystack.wire.virtio.PartialChecksumFrame): it was never on a wire, so it is not verified."""

    # ------------------------------------------------------------------ configuration

    def configure(self, address: int, prefix_len: int, gateway: int | None, now: float) -> None:
        """Take an address; schedule the RFC 5227 section 2.3 announcements."""
        self.address = address
        self.netmask = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF if prefix_len else 0
        self.gateway = gateway
        self._broadcast = None if self.netmask == 0xFFFFFFFF else (address & self.netmask) | (~self.netmask & 0xFFFFFFFF)
        cfg = self.config
        self._announce = [now + i * cfg.arp_announce_interval for i in range(cfg.arp_announcements)]
        self._echo_peer = None

    def deconfigure(self) -> None:
        self.address = None
        self.netmask = 0
        self.gateway = None
        self._broadcast = None
        self._announce = []
        self._echo_peer = None

    @property
    def broadcast(self) -> int | None:
        """The directed broadcast address of our subnet (None without an address, or for a /32)."""
        return self._broadcast

    def attach_transport(self, protocol: int, layer: TransportLayer, broadcast: bool = False) -> None:
        """Hand IP datagrams of ``protocol`` to ``layer``. ``broadcast``: it takes datagrams sent to a
        broadcast or multicast address too (UDP does; TCP is unicast only, RFC 1122 4.2.3.10)."""
        self.transports[protocol] = layer
        if broadcast:
            self._takes_broadcast.add(protocol)
        else:
            self._takes_broadcast.discard(protocol)

    def _emit_udp(self, src: int, dst: int, segment: bytes, now: float, dont_fragment: bool) -> None:
        """UDP's way out: raises OSError (ENETUNREACH, EMSGSIZE) to the sender, as sendto does."""
        self.send_ip(dst, ipv4.PROTO_UDP, segment, now, src=src, dont_fragment=dont_fragment)

    def _emit_tcp(self, src: int, dst: int, segment: bytes, gso_size: int = 0) -> None:
        """TCP's way out. Routing errors are counted, not raised: TCP retransmits on its own timers."""
        try:
            if gso_size:
                self._send_gso(dst, segment, self.tcp.now, src, gso_size)
            elif len(segment) + ipv4.MIN_HEADER_LEN <= self.config.mtu and dst != self.address:
                self._send_datagram(src, dst, ipv4.PROTO_TCP, segment, self.tcp.now, self.config.default_ttl,
                                    0, ipv4.FLAG_DF)
            else:
                self.send_ip(dst, ipv4.PROTO_TCP, segment, self.tcp.now, src=src, dont_fragment=True)
        except OSError:
            self.counters.drop("tcp.unroutable")

    def begin_batch(self) -> None:
        """Frames read together follow: TCP may answer them with one ACK at :meth:`end_batch`."""
        self.tcp.begin_batch()

    def end_batch(self, now: float) -> None:
        self.tcp.end_batch(now)

    def enable_segmentation_offload(self, max_segment: int = 65535 - 20 - 60) -> None:
        """The link cuts TCP segments for us (TSO): let TCP build segments of up to ``max_segment``
        payload bytes, sent as GsoFrames instead of MTU-sized frames."""
        self.tcp.gso_max = max_segment

    # ------------------------------------------------------------------ the sans-I/O interface

    def has_output(self) -> bool:
        """True when :meth:`frames_to_send` has something (a cheap check for the loop's fast path)."""
        return bool(self._out)

    def frames_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        """The earliest deadline of every timer (called once per loop pass: kept free of allocations)."""
        best = self.arp.next_deadline()
        d = self.reassembler.next_deadline()
        if d is not None and (best is None or d < best):
            best = d
        if self._announce:
            d = self._announce[0]
            if best is None or d < best:
                best = d
        for source in self.transports.values():
            d = source.get_timer()
            if d is not None and (best is None or d < best):
                best = d
        for timer in self.timer_sources:
            d = timer.get_timer()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def handle_timer(self, now: float) -> None:
        self.now = now
        try:
            self._handle_timer(now)
        except Exception:  # a bug must not stop the interface; count and log it
            self._internal_error("timer")

    def receive_frame(self, frame: bytes | memoryview, now: float) -> None:
        self.now = now
        self._checksum_trusted = type(frame) is PartialChecksumFrame
        try:
            proto = frame[23] if len(frame) > 23 else -1
            if proto == 1:
                reply = self.answer_echo(frame, now)  # counts the frame when it answers
                if reply is not None:
                    self._out.append(reply)
                    return
            self.counters["frames_in"] += 1
            if proto == 6 and self._receive_tcp_direct(frame, now):
                return
            self._receive_frame(frame, now)
        except WireError as exc:
            self.counters.drop(exc.reason)
        except Exception:
            self._internal_error("receive")

    def _receive_tcp_direct(self, frame: bytes | memoryview, now: float) -> bool:
        """TCP's way in for the plain case: a unicast IPv4 datagram to us, no options, not a fragment,
        its header checksum right, handed to TCP without the Ethernet and IPv4 parse objects.

        Every segment of a transfer and each of the five or so of a short connection takes this path,
        so it is checked with builtins only, as fully as _receive_frame and ipv4.parse check it (frame
        to our MAC from a unicast source, version 4 with a 20-byte header, total length within the
        frame, RFC 791 checksum, reserved flag clear, source not martian). Anything else returns False
        and the layered path takes the frame, counting what it drops. A test feeds the same frames to
        both paths and compares what comes out.
        """
        us = self.address
        if (frame[12:14] != b"\x08\x00" or frame[14] != 0x45 or frame[0:6] != self.mac or frame[6] & 1
                or frame[20] & 0xBF or frame[21] or us is None):  # options, reserved flag, MF, offset
            return False
        total = (frame[16] << 8) | frame[17]
        if total < 40 or total + 14 > len(frame) or int.from_bytes(frame[30:34], "big") != us:
            return False
        src = int.from_bytes(frame[26:30], "big")
        if src == LIMITED_BROADCAST or (src >> 28) == 0xE or (src >> 24) == 127:
            return False
        # A header with 0x45 first never sums to zero, so it verifies iff its sum is 0 mod 0xFFFF.
        if int.from_bytes(frame[14:34], "big") % 0xFFFF or self.transports.get(6) is not self.tcp:
            return False
        self.tcp.receive(src, us, memoryview(frame)[34:14 + total], now, self._checksum_trusted)
        return True

    def answer_echo(self, frame: bytes | memoryview, now: float) -> bytes | None:
        """Ping's fast path: the reply to a plain echo request from an on-link neighbour, or None.

        None means "not that case": the frame must then go to :meth:`receive_frame`, which answers,
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
            if len(frame) < 42 or frame[23] != 1 or frame[34] != 8:
                return None  # not ICMP, or not a request: no need to look further (receive_frame asks again)
            peer = self._echo_peer
            if peer is None or frame[26:36] != peer[0] or frame[:16] != peer[1] or frame[20:24] != peer[2]:
                peer = self._echo_peer_for(frame)
                if peer is None:
                    return None
            src, mtu, h_base, reply_mid, reply_flags, reply_addrs = peer[3:]
            total = (frame[16] << 8) | frame[17]
            if total < 28 or total + 14 > len(frame) or total > mtu:  # a reply to fragment: layered
                return None
            entry = self.arp.entries.get(src)
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
            self.now = now
            self._ident = ident = (self._ident + 1) & 0xFFFF
            h = ~fold(h_base + total + ident) & 0xFFFF  # RFC 791: the fixed fields' sum is in h_base
            counters = self.counters
            counters["frames_in"] += 1
            counters["frames_out"] += 1
            counters["icmp.echo_replies_sent"] += 1
            return _ECHO_REPLY.pack(entry.mac, reply_mid, total, ident, reply_flags, h, reply_addrs,
                                    csum) + frame[38:end]
        except Exception:  # a bug must not stop the loop: counted, and the layered path gets the frame
            self._internal_error("echo")
            return None

    def _echo_peer_for(self, frame: bytes | memoryview) -> tuple | None:
        """Check the fields of an echo request that stay the same from one request of a ping to the next
        (MACs, IPv4 header but for length, ident and checksum, addresses, ICMP type and code); if they are
        the fast path's case, remember them with what the reply needs (``_echo_peer``) and return that.

        What it checks depends on our address and netmask too, so :meth:`configure` and
        :meth:`deconfigure` forget it; the ARP entry, the lengths and the checksums are checked on every
        request."""
        (dst_mac, src_mac, ethertype, vihl, tos, _total, _ident, flags_offset, _ttl, _proto, _hsum, src, dst,
         icmp_type, code, _csum) = _ECHO_HEADERS.unpack_from(frame)
        us = self.address
        if (dst_mac != self.mac or src_mac[0] & 1 or ethertype != 0x0800 or vihl != 0x45
                or flags_offset & 0xBFFF or icmp_type != 8 or code or us is None or dst != us):
            return None  # options, reserved flag, MF, offset, another type or host: the layered path
        if ((src ^ us) & self.netmask or src == self._broadcast or src == us or src == 0
                or src == LIMITED_BROADCAST or (src >> 28) == 0xE or (src >> 24) == 127):
            return None  # off-link (the layered path routes via the gateway), or not a unicast neighbour
        ttl = self.config.default_ttl
        # Echo replies go without DF, as Linux's (flags 0); the header checksum's fixed part is summed here.
        h_base = 0x4500 + tos + (ttl << 8) + 1 + (us >> 16) + (us & 0xFFFF) + (src >> 16) + (src & 0xFFFF)
        peer = (bytes(frame[26:36]), bytes(frame[:16]), bytes(frame[20:24]), src, self.config.mtu, h_base,
                self.mac + bytes((0x08, 0x00, 0x45, tos)), bytes((0, 0, ttl, 1)),
                (us << 48 | src << 16).to_bytes(10, "big"))
        self._echo_peer = peer
        return peer

    def _internal_error(self, where: str) -> None:
        self.counters.drop("internal_error")
        self._internal_errors += 1
        if self._internal_errors <= 10:
            log.exception("internal error in %s (please report it)", where)

    # ------------------------------------------------------------------ receive path

    def _receive_frame(self, frame: bytes | memoryview, now: float) -> None:
        dst, src, ethertype, payload = ethernet.parse_fields(frame)
        if ethertype == _ETH_IPV6:
            raise WireError("ethernet.ipv6_unsupported")
        if dst != self.mac and dst != ethernet.BROADCAST and dst not in self.multicast_macs:
            raise WireError("ethernet.not_for_us")
        if src[0] & 1:
            raise WireError("ethernet.multicast_source")
        if ethertype == _ETH_IPV4:
            self._link_unicast = dst == self.mac
            self._receive_ipv4(payload, now)
        elif ethertype == _ETH_ARP:
            self._receive_arp(arp_wire.parse(payload), now)
        else:
            raise WireError("ethernet.unsupported_ethertype")

    def _receive_arp(self, pkt: arp_wire.ArpPacket, now: float) -> None:
        for observer in self.arp_observers:
            observer(pkt)
        us = self.address
        if pkt.sender_ip == us and us is not None:
            self.counters.drop("arp.address_conflict")  # someone else claims our address
            return
        if pkt.sender_mac[0] & 1:
            raise WireError("arp.bad_sender_mac")
        sip = pkt.sender_ip
        if sip == LIMITED_BROADCAST or (sip >> 28) == 0xE or (sip >> 24) == 127 or (
                sip == self._broadcast and us is not None):
            raise WireError("arp.martian_sender")  # as IPv4 refuses these sources (Linux: arp_process)
        for_us = us is not None and pkt.target_ip == us
        # RFC 826 "merge": refresh a known sender; add it when the packet is addressed to us.
        if pkt.sender_ip:
            for packet in self.arp.update(pkt.sender_ip, pkt.sender_mac, now, create=for_us):
                self._emit(pkt.sender_mac, _ETH_IPV4, packet)
        if pkt.op == arp_wire.OP_REQUEST:
            if for_us and us is not None:
                self.counters["arp.replies_sent"] += 1
                reply = arp_wire.build(arp_wire.OP_REPLY, self.mac, us, pkt.sender_mac, pkt.sender_ip)
                self._emit(pkt.sender_mac, _ETH_ARP, reply)
            else:
                self.counters["arp.requests_ignored"] += 1
        elif not for_us:
            self.counters["arp.replies_ignored"] += 1  # a reply for another host (or gratuitous)

    def _receive_ipv4(self, data: memoryview, now: float) -> None:
        pkt = ipv4.parse(data)
        dst = pkt.dst
        us = self.address
        if dst != us:
            if dst == LIMITED_BROADCAST or (dst == self._broadcast and us is not None):
                pass
            elif (dst >> 28) == 0xE and self.multicast_macs:
                pass
            else:
                raise WireError("ipv4.not_for_us")  # a host does not forward (RFC 1122 3.3.1)
        src = pkt.src
        if src == LIMITED_BROADCAST or (src >> 28) == 0xE or (src >> 24) == 127:
            raise WireError("ipv4.martian_source")
        if pkt.flags_offset & 0x3FFF:  # MF or a fragment offset
            whole = self.reassembler.add(pkt, data[: pkt.header_len], now)
            if whole is None:
                return
            self._deliver(pkt, memoryview(whole.header), memoryview(whole.payload), now)
        elif (pkt.protocol == ipv4.PROTO_TCP and dst == us and self._link_unicast
              and self.transports[ipv4.PROTO_TCP] is self.tcp):
            self.tcp.receive(src, dst, pkt.payload, now, self._checksum_trusted)  # the common case, directly
        else:
            self._deliver(pkt, data[: pkt.header_len], pkt.payload, now)

    def _deliver(self, pkt: ipv4.IPv4Packet, header: memoryview, payload: memoryview, now: float) -> None:
        proto = pkt.protocol
        if proto == ipv4.PROTO_ICMP:
            self._receive_icmp(pkt, payload, now)
            return
        layer = self.transports.get(proto)
        if layer is None:
            self.counters.drop("ipv4.unknown_protocol")
            self._send_icmp_error(pkt, header, payload, icmp_wire.TYPE_DEST_UNREACHABLE,
                                  icmp_wire.CODE_PROTOCOL_UNREACHABLE, now)
            return
        ours = pkt.dst == self.address
        if not (ours and self._link_unicast) and proto not in self._takes_broadcast:
            # TCP is unicast only: RFC 1122 4.2.3.10 (and never answer from a broadcast, 3.2.1.3);
            # in a link-layer broadcast too, as Linux's tcp_v4_rcv (PACKET_HOST only).
            self.counters.drop("ipv4.transport_not_unicast")
            return
        if layer.receive(pkt.src, pkt.dst, payload, now, self._checksum_trusted) is False and ours:
            # No socket on that port; never answer broadcasts with errors (RFC 1122 3.2.2).
            self._send_icmp_error(pkt, header, payload, icmp_wire.TYPE_DEST_UNREACHABLE,
                                  icmp_wire.CODE_PORT_UNREACHABLE, now)

    def _receive_icmp(self, pkt: ipv4.IPv4Packet, payload: memoryview, now: float) -> None:
        msg = icmp_wire.parse(payload)
        mtype = msg.type
        if mtype == icmp_wire.TYPE_ECHO_REQUEST:
            if pkt.dst != self.address and self.config.icmp_echo_ignore_broadcasts:
                self.counters.drop("icmp.broadcast_echo_ignored")
                return
            try:
                self.send_ip(pkt.src, ipv4.PROTO_ICMP, icmp_wire.echo_reply_from_request(payload), now, tos=pkt.tos)
            except OSError:
                self.counters.drop("icmp.echo_unroutable")  # e.g. an off-link source and no gateway
                return
            self.counters["icmp.echo_replies_sent"] += 1
        elif mtype == icmp_wire.TYPE_ECHO_REPLY:
            self.counters["icmp.echo_replies_received"] += 1
            if self.echo_reply_handler is not None:
                self.echo_reply_handler(pkt.src, msg.rest, bytes(msg.body), now)
        elif mtype in icmp_wire.ERROR_TYPES:
            self._receive_icmp_error(msg, now)
        else:
            self.counters.drop("icmp.unsupported_type")

    def _receive_icmp_error(self, msg: icmp_wire.IcmpMessage, now: float) -> None:
        """Hand an ICMP error to the socket it concerns (RFC 1122 3.2.2.1, 4.1.3.3)."""
        quote = msg.body
        if len(quote) < ipv4.MIN_HEADER_LEN + 8 or quote[0] >> 4 != 4:
            raise WireError("icmp.bad_quote")
        ihl = (quote[0] & 0x0F) * 4
        if ihl < ipv4.MIN_HEADER_LEN or len(quote) < ihl + 8:
            raise WireError("icmp.bad_quote")
        proto = quote[9]
        quoted_src = int.from_bytes(quote[12:16], "big")
        quoted_dst = int.from_bytes(quote[16:20], "big")
        if quoted_src != self.address:
            raise WireError("icmp.quote_not_ours")
        self.counters["icmp.errors_received"] += 1
        layer = self.transports.get(proto)
        if layer is not None:
            mtu = msg.rest & 0xFFFF if msg.type == icmp_wire.TYPE_DEST_UNREACHABLE else 0
            layer.icmp_error(msg.type, msg.code, quoted_src, quoted_dst, quote[ihl:], now, next_hop_mtu=mtu)

    # ------------------------------------------------------------------ send path

    def source_for(self, dst: int) -> int | None:
        return self.address

    def next_ident(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    def send_ip(self, dst: int, protocol: int, payload: bytes | memoryview, now: float, *,
                src: int | None = None, ttl: int | None = None, tos: int = 0, dont_fragment: bool = False,
                gso_size: int = 0) -> None:
        """Route, fragment to the MTU and send (or queue behind ARP) one datagram.

        ``gso_size``: ``payload`` is a TCP segment larger than the MTU allows, to be cut by the link
        into segments of that many payload bytes (segmentation offload) instead of fragmented.
        Raises OSError (ENETUNREACH, EMSGSIZE) as the kernel's sendto would.
        """
        if gso_size:
            self._send_gso(dst, payload, now, src if src is not None else (self.address or 0), gso_size)
            return
        if src is None:
            src = self.address if self.address is not None else 0
        if ipv4.MIN_HEADER_LEN + len(payload) > ipv4.MAX_DATAGRAM:
            raise OSError(errno.EMSGSIZE, "message too long")
        if dst == self.address and dst is not None:
            self._loopback(src, dst, protocol, payload, now)
            return
        ttl = ttl or self.config.default_ttl
        if ipv4.MIN_HEADER_LEN + len(payload) <= self.config.mtu:
            self._send_datagram(src, dst, protocol, payload, now, ttl, tos, ipv4.FLAG_DF if dont_fragment else 0)
            return
        next_hop, mac = self._route(dst)
        try:
            packets = ipv4.fragment(src, dst, protocol, payload, self.config.mtu, ident=self.next_ident(),
                                    ttl=ttl, tos=tos, dont_fragment=dont_fragment)
        except ValueError as exc:
            raise OSError(errno.EMSGSIZE, str(exc)) from None
        mac = self._neighbour_mac(next_hop, mac, now)
        if mac is None:
            for packet in packets:
                if self.arp.enqueue(next_hop, packet, now):
                    self._send_arp_request(next_hop, None)
            return
        out = self._out
        head = ethernet.header(mac, self.mac, _ETH_IPV4)
        for packet in packets:
            out.append(head + packet)
        self.counters["frames_out"] += len(packets)

    def _send_datagram(self, src: int, dst: int, protocol: int, payload: bytes | memoryview, now: float,
                       ttl: int, tos: int, flags_offset: int) -> None:
        """One datagram that fits the MTU, on the way every TCP segment and echo reply takes: the
        Ethernet and IPv4 headers are packed in one piece (raises OSError ENETUNREACH like send_ip)."""
        next_hop, mac = self._route(dst)
        mac = self._neighbour_mac(next_hop, mac, now)
        if mac is None:
            packet = ipv4.build(src, dst, protocol, payload, ident=self.next_ident(), ttl=ttl, tos=tos,
                                flags_offset=flags_offset)
            if self.arp.enqueue(next_hop, packet, now):
                self._send_arp_request(next_hop, None)
            return
        self._ident = ident = (self._ident + 1) & 0xFFFF
        self._out.append(ipv4.frame_header(mac, self.mac, tos, len(payload), ident, flags_offset, ttl, protocol,
                                           src, dst) + payload)
        self.counters["frames_out"] += 1

    def _tcp_path(self, src: int, dst: int, sport: int, dport: int, now: float) -> TcpPath | None:
        """A one-pack path for a burst of TCP segments to ``dst`` (pystack.ip.tcp_path), or None when each
        segment must take the layered way: to our own address, no route, or a neighbour ARP has not
        resolved (the layered path queues behind ARP and counts what it cannot route)."""
        if dst == self.address:
            return None
        try:
            next_hop, mac = self._route(dst)
        except OSError:
            return None
        mac = self._neighbour_mac(next_hop, mac, now)
        if mac is None:
            return None
        return TcpPath(self._out, self.counters, self.next_ident, mac, self.mac, src, dst, sport, dport,
                       self.config.default_ttl)

    def _send_gso(self, dst: int, segment_bytes: bytes | memoryview, now: float, src: int, gso_size: int) -> None:
        next_hop, mac = self._route(dst)
        mac = self._neighbour_mac(next_hop, mac, now)
        self._ident = ident = (self._ident + 1) & 0xFFFF
        head = ipv4.frame_header(mac or _ZERO_MAC, self.mac, 0, len(segment_bytes), ident, ipv4.FLAG_DF,
                                 self.config.default_ttl, ipv4.PROTO_TCP, src, dst)
        if mac is None:
            # Rare: the neighbour is not resolved. Queue real wire segments; the queue keeps plain frames.
            for piece in segment(head + segment_bytes, gso_size):
                if self.arp.enqueue(next_hop, piece[14:], now):
                    self._send_arp_request(next_hop, None)
            return
        self._out.append(GsoFrame(head + segment_bytes, gso_size))
        self.counters["frames_out"] += 1
        self.counters["gso_frames_out"] += 1

    def _neighbour_mac(self, next_hop: int, mac: bytes | None, now: float) -> bytes | None:
        """The MAC to send to ``next_hop``: the one routing gave (broadcast, multicast), else ARP's, or None
        while ARP has not resolved it (the caller queues). A stale entry is still used and polled by
        unicast (RFC 1122 2.3.2.1)."""
        if mac is None:
            mac, ask = self.arp.lookup(next_hop, now)
            if ask and mac is not None:
                self._send_arp_request(next_hop, mac)
        return mac

    def _route(self, dst: int) -> tuple[int, bytes | None]:
        """(next hop, MAC if known without ARP). RFC 1122 3.3.1: on-link or via the default gateway."""
        if dst == LIMITED_BROADCAST or dst == self._broadcast:
            return dst, ethernet.BROADCAST
        if (dst >> 28) == 0xE:
            # RFC 1112 6.4: 01:00:5e + low 23 bits of the group.
            return dst, b"\x01\x00\x5e" + (dst & 0x7FFFFF).to_bytes(3, "big")
        if self.address is not None and (dst & self.netmask) == (self.address & self.netmask):
            return dst, None
        if self.gateway is not None:
            return self.gateway, None
        raise OSError(errno.ENETUNREACH, "network is unreachable")

    def _loopback(self, src: int, dst: int, protocol: int, payload: bytes | memoryview, now: float) -> None:
        """Datagrams to our own address never reach the wire (RFC 1122 3.3.4: like the kernel's lo)."""
        packet = ipv4.build(src, dst, protocol, payload, ident=self.next_ident(), ttl=self.config.default_ttl)
        self.counters["ipv4.loopback"] += 1
        try:
            self._link_unicast = True
            self._receive_ipv4(memoryview(packet), now)
        except WireError as exc:
            self.counters.drop(exc.reason)

    def _emit(self, dst_mac: bytes, ethertype: int, payload: bytes) -> None:
        self._out.append(ethernet.header(dst_mac, self.mac, ethertype) + payload)
        self.counters["frames_out"] += 1

    def send_frame(self, frame: bytes) -> None:
        """Put a whole Ethernet frame on the link (the DHCP client's ARP probes)."""
        self._out.append(frame)
        self.counters["frames_out"] += 1

    def _send_arp_request(self, target_ip: int, known_mac: bytes | None) -> None:
        """Broadcast a request, or unicast it to refresh a stale entry (RFC 1122 2.3.2.1)."""
        self.counters["arp.requests_sent"] += 1
        request = arp_wire.build(arp_wire.OP_REQUEST, self.mac, self.address or 0, _ZERO_MAC, target_ip)
        self._emit(known_mac or ethernet.BROADCAST, _ETH_ARP, request)

    def _send_icmp_error(self, pkt: ipv4.IPv4Packet, header: memoryview | bytes, payload: memoryview | bytes,
                         mtype: int, code: int, now: float, rest: int = 0) -> None:
        """Send an ICMP error about a datagram we received, quoting its header and 8 bytes of payload.

        RFC 1122 3.2.2: never about an ICMP error, a non-first fragment, or a source that is not a unique
        host; and rate-limited like the kernel.
        """
        if pkt.protocol == ipv4.PROTO_ICMP and len(payload) and payload[0] not in (
                icmp_wire.TYPE_ECHO_REQUEST, icmp_wire.TYPE_ECHO_REPLY):
            return
        if pkt.src == 0 or pkt.fragment_offset:
            return
        if not self.icmp_limiter.allow(pkt.src, now):
            self.counters["icmp.errors_ratelimited"] += 1
            return
        self.counters["icmp.errors_sent"] += 1
        body = bytes(header) + bytes(payload[:8])
        try:
            self.send_ip(pkt.src, ipv4.PROTO_ICMP, icmp_wire.build(mtype, code, rest, body), now)
        except OSError:
            self.counters.drop("icmp.error_unroutable")

    # ------------------------------------------------------------------ timers

    def _handle_timer(self, now: float) -> None:
        while self._announce and self._announce[0] <= now:
            self._announce.pop(0)
            if self.address is not None:
                # RFC 5227 2.3: an ARP request with sender and target IP both ours.
                self.counters["arp.announcements_sent"] += 1
                self._emit(ethernet.BROADCAST, _ETH_ARP, arp_wire.build(
                    arp_wire.OP_REQUEST, self.mac, self.address, _ZERO_MAC, self.address))
        retry, failed = self.arp.handle_timer(now)
        for ip in retry:
            self._send_arp_request(ip, None)
        for _ip, packets in failed:
            for packet in packets:
                self._unreachable_locally(packet, now)
        for expired in self.reassembler.expire(now):
            self._reassembly_time_exceeded(expired.header, expired.payload, now)
        for source in (*self.transports.values(), *self.timer_sources):
            deadline = source.get_timer()
            if deadline is not None and deadline <= now:
                source.handle_timer(now)

    def _unreachable_locally(self, packet: bytes, now: float) -> None:
        """ARP gave up on a packet we sent: tell the local sender, as the kernel does with EHOSTUNREACH."""
        self.counters.drop("arp.unresolved")
        if self.address is None:
            return
        try:
            pkt = ipv4.parse(packet)
        except WireError:
            return
        if pkt.fragment_offset or pkt.src != self.address:
            return
        body = packet[: pkt.header_len + 8]
        msg = icmp_wire.parse(icmp_wire.build(icmp_wire.TYPE_DEST_UNREACHABLE, icmp_wire.CODE_HOST_UNREACHABLE, 0, body))
        try:
            self._receive_icmp_error(msg, now)
        except WireError:
            pass

    def _reassembly_time_exceeded(self, header: bytes, first_payload: bytes, now: float) -> None:
        """RFC 792: time exceeded, code 1 (fragment reassembly time exceeded), quoting the first fragment."""
        pkt = ipv4.parse_header_fields(header)
        pkt.flags_offset = 0
        self._send_icmp_error(pkt, header, first_payload, icmp_wire.TYPE_TIME_EXCEEDED, 1, now)

