"""ICMPv6 (RFC 4443) for one interface: echo answered (to the all-nodes group too, from our unicast
address, as Linux does by default), errors sent about packets we received, rate-limited, and those that
come back about ours handed to the transport they concern; ND and MLD messages go to their owners
(pystack.iface.ndisc, pystack.iface.mld)."""

from __future__ import annotations

import struct
from typing import Callable, Mapping, Protocol

from pystack.config import StackConfig
from pystack.counters import Counters
from pystack.iface.ipv6 import Ipv6
from pystack.iface.ndisc import Ndisc
from pystack.ip.icmp_errno import icmpv6_errno
from pystack.ip.ratelimit import IcmpRateLimiter
from pystack.wire.checksum import incremental_update
from pystack.wire import icmpv6 as icmpv6_wire
from pystack.wire import ipv6 as ipv6_wire
from pystack.wire.errors import WireError
from pystack.wire.ipv6 import HeaderChain, Ipv6Packet

EchoReplyHandler6 = Callable[[int, int, bytes, float], None]
"""``handler(source, rest, payload, now)`` for echo replies, set by a local ping client."""

_ECHO_REPLY6_HEAD = struct.Struct("!6s6s2sIHBB")
"""An echo reply's Ethernet header and IPv6 header up to its addresses (the request's, swapped, follow)..."""
_ECHO_REPLY6_TYPE = struct.Struct("!BBH")
"""...then ICMPv6 type, code and checksum (the request's identifier, sequence and data follow as they came)."""
_ETHERTYPE_IPV6 = b"\x86\xdd"

_ND_TYPES = frozenset({icmpv6_wire.TYPE_ROUTER_SOLICITATION, icmpv6_wire.TYPE_ROUTER_ADVERTISEMENT,
                       icmpv6_wire.TYPE_NEIGHBOUR_SOLICITATION, icmpv6_wire.TYPE_NEIGHBOUR_ADVERTISEMENT,
                       icmpv6_wire.TYPE_REDIRECT})
_MLD_REPORTS = frozenset({icmpv6_wire.TYPE_MLDV1_DONE, icmpv6_wire.TYPE_MLD_REPORT})
"""MLDv1 Done, MLDv2 report: other hosts' business (RFC 3810 6: a host ignores them; an MLDv1 Report
suppresses ours, pystack.iface.mld)."""


AS_ICMPV4 = {(1, 0): (3, 0), (1, 1): (3, 13), (1, 2): (3, 1), (1, 3): (3, 1), (1, 4): (3, 3), (1, 5): (3, 13),
             (1, 6): (3, 13), (3, 0): (11, 0), (3, 1): (11, 1)}
"""ICMPv6 errors (type, code) as the ICMP ones the transports know (RFC 4443 3 beside RFC 792): they are
told in IPv4's words, so one TCP and one UDP serve both families, and with ICMPv6's own errno
(pystack.ip.icmp_errno, as Linux's icmpv6_err_convert: administratively prohibited is EACCES, which no
IPv4 code gives). A code not listed still reaches the transport, in its type's words of
_AS_ICMPV4_BY_TYPE (RFC 4443 3.1: the upper layer MUST be told of an unreachable)."""
_AS_ICMPV4_BY_TYPE = {1: (3, 13), 3: (11, 0), 4: (12, 0)}
IPV6_EXTRA_HEADER = 20
"""Bytes an IPv6 header takes beyond an IPv4 one: the transports over IPv6 count their MTU that much
smaller, so their segment sizes come out right (an MSS of MTU - 60)."""


class ErrorTaker6(Protocol):
    """A transport over IPv6 as ICMPv6 sees it: told of the errors about what it sent."""

    def icmp_error(self, icmp_type: int, icmp_code: int, local_ip: int, remote_ip: int,
                   quoted: bytes | memoryview, now: float, next_hop_mtu: int = 0, err: int = 0) -> None: ...


class Icmpv6:
    """ICMPv6 of one interface, attached to IPv6 as Next Header 58 and as its error reporter."""

    def __init__(self, config: StackConfig, counters: Counters, ipv6: Ipv6, nd: Ndisc,
                 transports: Mapping[int, ErrorTaker6]) -> None:
        self.config = config
        self.counters = counters
        self.ipv6 = ipv6
        self.nd = nd
        self.transports = transports
        self.limiter = IcmpRateLimiter(config.icmp_ratelimit_interval, config.icmp_ratelimit_burst,
                                       config.icmp_global_rate, config.icmp_global_burst,
                                       config.icmp_ratelimit_destinations)
        """RFC 4443 2.4 (f): errors are rate-limited, per destination and in all, as Linux's icmpv6_xrlim."""
        self.echo_reply_handler: EchoReplyHandler6 | None = None
        self._echo_peer: tuple | None = None
        """What answer_echo_packet remembers of the last echo request's addresses (see _echo_peer_for)."""
        ipv6.attach(ipv6_wire.NH_ICMPV6, self.receive)
        ipv6.errors = self

    # ------------------------------------------------------------------ receive

    def receive(self, pkt: Ipv6Packet, chain: HeaderChain, now: float) -> None:
        data = pkt.datagram[chain.offset:]
        msg = icmpv6_wire.parse(data, pkt.src, pkt.dst)
        mtype = msg.type
        if mtype in _ND_TYPES:
            self.nd.receive(pkt, msg, self.ipv6.fragmented, now)
        elif mtype == icmpv6_wire.TYPE_MLD_QUERY:
            self.nd.mld.on_query(icmpv6_wire.parse_mld_query(
                msg, src=pkt.src, hop_limit=pkt.hop_limit, router_alert=chain.router_alert == ipv6_wire.ROUTER_ALERT_MLD),
                now)
        elif mtype == icmpv6_wire.TYPE_MLDV1_REPORT:
            self.nd.mld.on_v1_report(icmpv6_wire.parse_mldv1_report(
                msg, src=pkt.src, hop_limit=pkt.hop_limit, router_alert=chain.router_alert == ipv6_wire.ROUTER_ALERT_MLD))
        elif mtype in _MLD_REPORTS:
            self.counters["mld.reports_heard"] += 1
        elif pkt.src == ipv6_wire.UNSPECIFIED:
            raise WireError("icmpv6.unspecified_source")  # only DAD and MLD may come from :: (RFC 4291 2.5.2)
        elif mtype == icmpv6_wire.TYPE_ECHO_REQUEST:
            self._echo(pkt, data, msg, now)
        elif mtype == icmpv6_wire.TYPE_ECHO_REPLY:
            self.counters["icmpv6.echo_replies_received"] += 1
            if self.echo_reply_handler is not None:
                self.echo_reply_handler(pkt.src, msg.rest, bytes(msg.body), now)
        elif mtype < 128:
            self._receive_error(msg, now)
        else:
            raise WireError("icmpv6.unsupported_type")  # an unknown informational message (RFC 4443 2.4 (b))

    def _echo(self, pkt: Ipv6Packet, data: memoryview, msg: icmpv6_wire.Icmpv6Message, now: float) -> None:
        """RFC 4443 4.2: the reply carries the request's identifier, sequence and data; one sent to a
        multicast group is answered from a unicast address of ours (Linux's echo_ignore_multicast 0)."""
        if ipv6_wire.is_multicast(pkt.dst):
            src = self.ipv6.source_for(pkt.src)
            if src is None:
                raise WireError("icmpv6.echo_no_source")
            reply = icmpv6_wire.build(icmpv6_wire.TYPE_ECHO_REPLY, msg.code, msg.rest, msg.body, src, pkt.src)
        else:
            src = pkt.dst
            reply = icmpv6_wire.echo_reply_from_request(data)
        try:
            self.ipv6.send(pkt.src, ipv6_wire.NH_ICMPV6, reply, now, src=src, traffic_class=pkt.traffic_class)
        except OSError:
            self.counters.drop("icmpv6.echo_unroutable")
            return
        self.counters["icmpv6.echo_replies_sent"] += 1

    def _receive_error(self, msg: icmpv6_wire.Icmpv6Message, now: float) -> None:
        """Hand an error about a packet we sent to the transport it concerns (RFC 4443 2.4 (a), 3)."""
        self._to_transport(msg.type, msg.code, msg.rest, msg.body, now)
        self.counters["icmpv6.errors_received"] += 1

    def _to_transport(self, mtype: int, code: int, rest: int, quoted: bytes | memoryview, now: float) -> None:
        quote = icmpv6_wire.parse_quote(quoted)
        if not self.ipv6.is_ours(quote.src):
            raise WireError("icmpv6.quote_not_ours")
        if mtype == icmpv6_wire.TYPE_PACKET_TOO_BIG:
            self.ipv6.learn_path_mtu(quote.dst, rest, now)  # for every packet to it, not only the transport's
        layer = self.transports.get(quote.protocol)
        if layer is None:
            return
        if mtype == icmpv6_wire.TYPE_PACKET_TOO_BIG:
            mtu = self.ipv6.mtu_for(quote.dst, now)  # what learn_path_mtu kept (never below 1280)
            layer.icmp_error(3, 4, quote.src, quote.dst, quote.upper, now, next_hop_mtu=mtu - IPV6_EXTRA_HEADER)
            return
        as_v4 = AS_ICMPV4.get((mtype, code)) or _AS_ICMPV4_BY_TYPE.get(mtype)
        if as_v4 is not None:
            layer.icmp_error(as_v4[0], as_v4[1], quote.src, quote.dst, quote.upper, now,
                             err=icmpv6_errno(mtype, code))

    def unreachable_locally(self, packet: bytes, now: float) -> None:
        """Neighbour discovery gave up on a packet we sent: tell its transport, as the kernel's
        EHOSTUNREACH (RFC 4861 7.2.2: address unreachable)."""
        self.counters.drop("ndisc.unresolved")
        try:
            self._to_transport(icmpv6_wire.TYPE_DEST_UNREACHABLE, icmpv6_wire.CODE_ADDRESS_UNREACHABLE, 0, packet, now)
        except WireError:
            pass

    # ------------------------------------------------------------------ send

    def send_error(self, pkt: Ipv6Packet, mtype: int, code: int, rest: int, now: float, *,
                   multicast_ok: bool = False) -> None:
        """An error about ``pkt``, which we received, within RFC 4443 2.4 (e)'s rules and (f)'s rate."""
        invoking = None
        if pkt.next_header == ipv6_wire.NH_ICMPV6 and len(pkt.payload):
            invoking = pkt.payload[0]
        if not icmpv6_wire.error_allowed(mtype, code, pkt.src, pkt.dst, multicast_ok=multicast_ok,
                                         link_multicast=not self.ipv6.link_unicast, invoking_icmp_type=invoking):
            self.counters["icmpv6.errors_not_allowed"] += 1
            return
        if not self.limiter.allow(pkt.src, now):
            self.counters["icmpv6.errors_ratelimited"] += 1
            return
        src = pkt.dst if self.ipv6.is_ours(pkt.dst) else self.ipv6.source_for(pkt.src)
        if src is None:
            self.counters.drop("icmpv6.error_no_source")
            return
        message = icmpv6_wire.build_error(mtype, code, rest, pkt.datagram, src, pkt.src)
        try:
            self.ipv6.send(pkt.src, ipv6_wire.NH_ICMPV6, message, now, src=src)
        except OSError:
            self.counters.drop("icmpv6.error_unroutable")
            return
        self.counters["icmpv6.errors_sent"] += 1

    # ------------------------------------------------------------------ the echo fast path

    def answer_echo(self, frame: bytes | memoryview, now: float) -> bytes | None:
        """Ping -6's lane (pystack.iface.icmp.Icmpv4.answer_echo hands it IPv6 frames): the reply to a
        plain echo request in a frame sent to our MAC from a unicast one, or None for "give the frame to
        receive_frame". When it answers it counts the frame in, as IPv4's lane does; a bug raises (its
        caller counts it)."""
        if (len(frame) < 62 or frame[54] != 128 or frame[20] != 58 or frame[12:14] != _ETHERTYPE_IPV6
                or frame[:6] != self.ipv6.link.mac or frame[6] & 1):
            return None  # not an echo request right after the IPv6 header, or not in a frame to our MAC
        reply = self.answer_echo_packet(frame[14:], now)  # bytes: a copy of the packet, quicker to read
        if reply is not None:
            self.counters["frames_in"] += 1
        return reply

    def answer_echo_packet(self, p: bytes | memoryview, now: float) -> bytes | None:
        """The reply frame to ``p``, an IPv6 packet that came in a frame to our MAC from a unicast one, if it
        is a plain echo request to an address of ours; else None, and the layered path takes the packet
        (and counts what it drops). It counts the reply out.

        The common case only, checked as fully as the layered path checks it: version 6, no extension
        header, the lengths consistent, a source neither multicast, unspecified, loopback nor ours, a
        destination we have and may use (RFC 4862: not tentative), the ICMPv6 checksum over the RFC 8200
        8.1 pseudo-header right (RFC 1071 as one big-integer sum, as pystack.wire.checksum does), a reply that
        fits the path MTU, and a next hop whose neighbour entry has a MAC (moved as sending moves it: RFC
        4861 7.3.3). What depends on the addresses alone is checked once per pair of them and remembered
        (:meth:`_echo_peer_for`) with the way to the source (pystack.iface.ipv6.Ipv6.way) while neighbour
        discovery's change count stays the same, as IPv4's lane remembers its last peer. The reply is the
        layered path's byte for byte (tests compare them): the request's traffic class, our hop limit, the
        checksum updated for the new type (RFC 1624).
        """
        n = len(p)
        if n < 48 or p[6] != 58 or p[40] != 128 or p[0] >> 4 != 6:
            return None
        plen = (p[4] << 8) | p[5]
        end = 40 + plen
        if plen < 8 or end > n:
            return None
        peer = self._echo_peer
        if peer is None or p[8:40] != peer[0] or peer[1] != self.nd.changes:
            peer = self._echo_peer_for(p)
            if peer is None:
                return None
        # The pseudo-header and the message, summed as integers: congruent to their 16-bit words' sum mod
        # 0xFFFF, never zero (Next Header 58 is in it), so the checksum verifies iff the sum is 0 mod 0xFFFF.
        body = int.from_bytes(p[40:end], "big")
        if plen & 1:
            body <<= 8
        if (body + peer[2] + plen) % 0xFFFF:
            return None  # the layered path counts it
        way = self.ipv6.way(peer[3], now)
        if way is None or end > way.mtu:
            return None  # a neighbour to resolve, or a reply to fragment: the layered path's
        code = p[41]
        csum = incremental_update((p[42] << 8) | p[43], icmpv6_wire.TYPE_ECHO_REQUEST << 8 | code,
                                  icmpv6_wire.TYPE_ECHO_REPLY << 8 | code)
        traffic_class = (p[0] & 0x0F) << 4 | p[1] >> 4
        counters = self.counters
        counters["frames_out"] += 1
        counters["icmpv6.echo_replies_sent"] += 1
        return b"".join((_ECHO_REPLY6_HEAD.pack(way.mac, self.ipv6.link.mac, _ETHERTYPE_IPV6,
                                                6 << 28 | traffic_class << 20, plen, 58, way.hop_limit),
                         peer[4], _ECHO_REPLY6_TYPE.pack(icmpv6_wire.TYPE_ECHO_REPLY, code, csum), p[44:end]))

    def _echo_peer_for(self, p: bytes | memoryview) -> tuple | None:
        """Check what an echo request's addresses decide (a source neither multicast, unspecified,
        loopback nor ours; a destination of ours that we may use) and, if the lane may answer, remember it
        as ``_echo_peer``: (the addresses' bytes, the change count it holds for, their share of the checksum
        sum, the source, the reply's addresses); an address event changes the count (pystack.iface.ndisc)."""
        src = int.from_bytes(p[8:24], "big")
        dst = int.from_bytes(p[24:40], "big")
        if src >> 120 == 0xFF or src <= 1 or dst == 1:
            return None  # multicast, unspecified or loopback: the layered path drops it
        table = self.nd.addresses.table
        ours = table.get(dst)
        if ours is None or not ours.usable or ((mine := table.get(src)) is not None and mine.usable):
            return None  # not to an address we use (a group's echo included), or from ourselves (loopback)
        peer = self._echo_peer = (bytes(p[8:40]), self.nd.changes, src + dst + 58, src,
                                  bytes(p[24:40]) + bytes(p[8:24]))
        return peer
