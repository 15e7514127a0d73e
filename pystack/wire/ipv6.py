"""IPv6 (RFC 8200): the fixed header and the extension headers, parsed, built, and walked.

:func:`parse` checks the fixed header; :func:`walk` then follows the chain of extension headers to the
upper layer, processing options as RFC 8200 section 4 says, with a bound on the headers and options it
will look at (RFC 8504 section 5.3). Input that RFC 8200 answers with an ICMPv6 Parameter Problem
raises :class:`ParameterProblem` (a :class:`WireError` carrying the code and pointer to answer with);
everything else that is wrong raises a plain :class:`WireError`, to be dropped and counted.

Addresses are 128-bit integers, as IPv4 addresses are 32-bit ones in :mod:`pystack.wire.ipv4`.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pystack.wire.errors import WireError

HEADER_LEN = 40
MIN_MTU = 1280
"""RFC 8200 section 5: every link carries 1280-byte packets; errors and fragments are sized by it."""
MAX_PAYLOAD = 65535

# Next Header values (IANA "Assigned Internet Protocol Numbers").
NH_HOP_BY_HOP = 0
NH_TCP = 6
NH_UDP = 17
NH_ROUTING = 43
NH_FRAGMENT = 44
NH_ESP = 50
NH_AH = 51
NH_ICMPV6 = 58
NH_NONE = 59
NH_DEST_OPTS = 60

UPPER_LAYERS = frozenset({NH_TCP, NH_UDP, NH_ICMPV6})
"""What pystack has a receiver for; any other Next Header earns a Parameter Problem code 1."""

# Parameter Problem codes (RFC 4443 section 3.4, RFC 7112 section 5).
PP_ERRONEOUS_FIELD = 0
PP_UNKNOWN_NEXT_HEADER = 1
PP_UNKNOWN_OPTION = 2
PP_INCOMPLETE_CHAIN = 3

OPT_PAD1 = 0
OPT_PADN = 1
OPT_ROUTER_ALERT = 5  # RFC 2711, in a hop-by-hop header only
ROUTER_ALERT_MLD = 0  # RFC 2711: the value that marks an MLD message

ALL_NODES = 0xFF02 << 112 | 1
ALL_ROUTERS = 0xFF02 << 112 | 2
ALL_MLDV2_ROUTERS = 0xFF02 << 112 | 0x16
UNSPECIFIED = 0
LOOPBACK = 1

_HEADER = struct.Struct("!IHBB16s16s")
_FRAGMENT = struct.Struct("!BBHI")
_FROM = int.from_bytes

# The least an upper-layer header needs in a first fragment for the chain to count as whole (RFC 7112
# section 5); the sizes Linux's ipv6frag_thdr_truncated uses (ICMPv6: its 8-byte header).
_UPPER_HEADER_LEN = {NH_TCP: 20, NH_UDP: 8, NH_ICMPV6: 8, NH_NONE: 0}


class ParameterProblem(WireError):
    """Malformed input that RFC 8200 answers with an ICMPv6 Parameter Problem (RFC 4443 section 3.4).

    ``pointer`` is the offset of the offending byte from the start of the IPv6 header. ``multicast_ok``
    marks the one case sent even when the packet went to a multicast address: an unknown option whose
    type's top bits are 10 (RFC 8200 section 4.2, RFC 4443 section 2.4 (e.3)).
    """

    def __init__(self, reason: str, code: int, pointer: int, multicast_ok: bool = False) -> None:
        super().__init__(reason)
        self.code = code
        self.pointer = pointer
        self.multicast_ok = multicast_ok


@dataclass(slots=True)
class Ipv6Packet:
    """A parsed packet. ``datagram`` is the header and payload as far as the Payload Length says
    (link padding cut off); ``payload`` is the part after the fixed header."""

    traffic_class: int
    flow_label: int
    next_header: int
    hop_limit: int
    src: int
    dst: int
    payload: memoryview
    datagram: memoryview


class FragmentHeader(NamedTuple):
    next_header: int
    offset: int
    """Offset of this fragment's data in bytes (the field counts 8-byte units)."""
    more: bool
    ident: int


@dataclass(slots=True)
class HeaderChain:
    """Where :func:`walk` ended: the upper layer, or a fragment header to hand to reassembly."""

    protocol: int
    """The upper-layer Next Header (or ``NH_FRAGMENT`` when ``fragment`` is set, ``NH_NONE`` for 59)."""
    offset: int
    """Where the upper-layer header (or the fragment's data) starts, from the start of the IPv6 header."""
    next_header_at: int
    """Offset of the Next Header byte that named ``protocol``: 6 when no extension header came first."""
    router_alert: int | None = None
    """The hop-by-hop Router Alert value (RFC 2711), which MLD messages must carry."""
    fragment: FragmentHeader | None = None
    """Set when this packet is a fragment to reassemble (never for an atomic fragment, RFC 6946)."""
    atomic_fragment: bool = False
    """The packet carried a fragment header of offset 0 without M, and was processed whole (RFC 6946)."""


def parse(data: bytes | bytearray | memoryview) -> Ipv6Packet:
    """Check the fixed header (RFC 8200 section 3) and the addresses that must never arrive on a link
    (RFC 4291 section 2.7: a multicast source, a multicast destination of reserved or interface-local
    scope; RFC 4291 section 2.5.3: the loopback address), as Linux's ipv6_rcv does."""
    if len(data) < HEADER_LEN:
        raise WireError("ipv6.truncated")
    vtcfl, plen, nh, hlim, src_b, dst_b = _HEADER.unpack_from(data)
    if vtcfl >> 28 != 6:
        raise WireError("ipv6.bad_version")
    if HEADER_LEN + plen > len(data):
        raise WireError("ipv6.truncated")
    src = _FROM(src_b, "big")
    dst = _FROM(dst_b, "big")
    if src >> 120 == 0xFF:
        raise WireError("ipv6.multicast_source")
    if src == LOOPBACK or dst == LOOPBACK:
        raise WireError("ipv6.loopback_address")
    if dst >> 120 == 0xFF and (dst >> 112) & 0xF in (0, 1):
        raise WireError("ipv6.bad_multicast_scope")
    view = memoryview(data)[:HEADER_LEN + plen]
    return Ipv6Packet((vtcfl >> 20) & 0xFF, vtcfl & 0xFFFFF, nh, hlim, src, dst, view[HEADER_LEN:], view)


def build_header(src: int, dst: int, next_header: int, payload_len: int, *, hop_limit: int = 64,
                 traffic_class: int = 0, flow_label: int = 0) -> bytes:
    if payload_len > MAX_PAYLOAD:
        raise ValueError(f"IPv6 payload of {payload_len} bytes exceeds 65535 (jumbograms are not supported)")
    return _HEADER.pack(6 << 28 | traffic_class << 20 | flow_label, payload_len, next_header, hop_limit,
                        src.to_bytes(16, "big"), dst.to_bytes(16, "big"))


def build(src: int, dst: int, next_header: int, payload: bytes | memoryview, *, hop_limit: int = 64,
          traffic_class: int = 0, flow_label: int = 0) -> bytes:
    return build_header(src, dst, next_header, len(payload), hop_limit=hop_limit, traffic_class=traffic_class,
                        flow_label=flow_label) + payload


def options_header(next_header: int, options: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """A hop-by-hop or destination options header (RFC 8200 section 4.3) holding ``options`` as
    (type, data), padded to a multiple of 8 bytes with Pad1 or PadN (section 4.2)."""
    body = b"".join(bytes((otype, len(data))) + data for otype, data in options)
    pad = -(2 + len(body)) % 8
    if pad == 1:
        body += b"\x00"
    elif pad:
        body += bytes((OPT_PADN, pad - 2)) + bytes(pad - 2)
    return bytes((next_header, (2 + len(body)) // 8 - 1)) + body


def routing_header(next_header: int, routing_type: int, segments_left: int, data: bytes = bytes(4)) -> bytes:
    """A routing header (RFC 8200 section 4.4); ``data`` (type-specific, from the 5th byte on) must
    make the header a multiple of 8 bytes."""
    if (4 + len(data)) % 8:
        raise ValueError("a routing header must be a multiple of 8 bytes")
    return bytes((next_header, (4 + len(data)) // 8 - 1, routing_type, segments_left)) + data


def fragment_header(next_header: int, offset: int, more: bool, ident: int) -> bytes:
    """A fragment header (RFC 8200 section 4.5); ``offset`` in bytes, a multiple of 8."""
    if offset & 7 or not 0 <= offset <= 0xFFF8:
        raise ValueError(f"fragment offset {offset} is not a multiple of 8 below 65536")
    return _FRAGMENT.pack(next_header, 0, offset | more, ident)


def fragment(src: int, dst: int, next_header: int, payload: bytes | memoryview, mtu: int, *, ident: int,
             hop_limit: int = 64, traffic_class: int = 0, flow_label: int = 0) -> list[bytes]:
    """One packet, or fragments when it does not fit ``mtu`` (RFC 8200 section 4.5). The whole payload is
    the fragmentable part (pystack sends no per-fragment extension headers); every fragment but the last
    carries a multiple of 8 bytes."""
    if HEADER_LEN + len(payload) <= mtu:
        return [build(src, dst, next_header, payload, hop_limit=hop_limit, traffic_class=traffic_class,
                      flow_label=flow_label)]
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"IPv6 payload of {len(payload)} bytes exceeds 65535 (jumbograms are not supported)")
    if mtu < MIN_MTU:
        raise ValueError(f"MTU {mtu} is below IPv6's minimum of {MIN_MTU}")
    chunk = (mtu - HEADER_LEN - 8) & ~7
    view = memoryview(payload)
    out = []
    for off in range(0, len(view), chunk):
        part = view[off:off + chunk]
        frag = fragment_header(next_header, off, off + chunk < len(view), ident)
        out.append(build_header(src, dst, NH_FRAGMENT, 8 + len(part), hop_limit=hop_limit,
                                traffic_class=traffic_class, flow_label=flow_label) + frag + part)
    return out


def join_fragments(first: bytes | memoryview, chain: HeaderChain, fragmentable: bytes) -> bytes:
    """The packet that fragments reassemble into (RFC 8200 section 4.5): the first fragment's headers
    before its fragment header, the Next Header that named the fragment header replaced by the fragment
    header's own, the Payload Length recomputed, then the fragmentable part."""
    assert chain.fragment is not None
    head = bytearray(first[:chain.offset - 8])
    head[chain.next_header_at] = chain.fragment.next_header
    length = len(head) - HEADER_LEN + len(fragmentable)
    if length > MAX_PAYLOAD:
        raise WireError("ipv6.frag_too_big")
    head[4:6] = length.to_bytes(2, "big")
    return bytes(head) + fragmentable


def walk(pkt: Ipv6Packet, *, upper_layers: frozenset[int] = UPPER_LAYERS, max_headers: int = 8,
         max_options: int = 8, reassembled: bool = False) -> HeaderChain:
    """Follow the extension headers to the upper layer (RFC 8200 section 4).

    Stops at a fragment header unless it is atomic (offset 0 and M clear: processed in place, RFC 6946);
    a first fragment must hold the whole chain through the upper-layer header (RFC 7112). At most
    ``max_headers`` extension headers and ``max_options`` options other than padding per header are
    looked at (RFC 8504 section 5.3; Linux's max_hbh_opts_number and max_dst_opts_number are 8).
    ``reassembled`` says the packet came out of reassembly, where another fragment header is refused.
    """
    data = pkt.datagram
    end = len(data)
    nh = pkt.next_header
    nh_at = 6
    at = HEADER_LEN
    headers = 0
    router_alert = None
    atomic = False
    multicast_dst = pkt.dst >> 120 == 0xFF
    while True:
        if nh in upper_layers or nh == NH_NONE:
            return HeaderChain(nh, at, nh_at, router_alert, None, atomic)
        if nh == NH_HOP_BY_HOP:
            if at != HEADER_LEN:  # RFC 8200 section 4.1: only right after the IPv6 header
                raise ParameterProblem("ipv6.hop_by_hop_not_first", PP_UNKNOWN_NEXT_HEADER, nh_at)
        elif nh not in (NH_DEST_OPTS, NH_ROUTING, NH_FRAGMENT):
            raise ParameterProblem("ipv6.unknown_next_header", PP_UNKNOWN_NEXT_HEADER, nh_at)
        headers += 1
        if headers > max_headers:
            raise WireError("ipv6.chain_too_long")
        if nh == NH_FRAGMENT:
            if at + 8 > end:
                raise WireError("ipv6.truncated_chain")
            if reassembled or atomic:
                # Linux refuses a fragment inside a fragment (IP6SKB_FRAGMENTED) with code 0 at the header.
                raise ParameterProblem("ipv6.nested_fragment", PP_ERRONEOUS_FIELD, at)
            frag = _fragment(data, at)
            if frag.offset == 0 and not frag.more:
                atomic = True
            else:
                _check_fragment(data, at, frag)
                return HeaderChain(NH_FRAGMENT, at + 8, nh_at, router_alert, frag)
            size = 8
        else:
            if at + 2 > end:
                raise WireError("ipv6.truncated_chain")
            size = (data[at + 1] + 1) * 8
            if at + size > end:
                raise WireError("ipv6.truncated_chain")
            if nh == NH_ROUTING:
                if data[at + 3]:  # Segments Left: pystack forwards nothing, so no routing type is known
                    reason = "ipv6.routing_type0" if data[at + 2] == 0 else "ipv6.routing_unsupported"
                    raise ParameterProblem(reason, PP_ERRONEOUS_FIELD, at + 2)  # RFC 5095, RFC 8200 4.4
            else:
                alert = _options(data, at, size, nh == NH_HOP_BY_HOP, multicast_dst, max_options)
                if alert is not None:
                    router_alert = alert
        nh_at = at
        nh = data[at]
        at += size


def _fragment(data: memoryview, at: int) -> FragmentHeader:
    nh, _reserved, off_m, ident = _FRAGMENT.unpack_from(data, at)
    return FragmentHeader(nh, off_m & 0xFFF8, bool(off_m & 1), ident)


def _check_fragment(data: memoryview, at: int, frag: FragmentHeader) -> None:
    """RFC 7112's check of a first fragment, then RFC 8200 section 4.5's of any fragment (Linux's order).
    A fragment without data is left to reassembly, which drops it silently as Linux does."""
    if frag.offset == 0:
        _check_first_fragment(data, at + 8, frag.next_header)
    length = len(data) - at - 8
    if frag.offset + length > MAX_PAYLOAD:
        raise ParameterProblem("ipv6.frag_too_big", PP_ERRONEOUS_FIELD, at + 2)  # pointer: Fragment Offset
    if frag.more and length & 7:
        raise ParameterProblem("ipv6.frag_bad_length", PP_ERRONEOUS_FIELD, 4)  # pointer: Payload Length


def _check_first_fragment(data: memoryview, pos: int, nh: int) -> None:
    """RFC 7112 section 5: the first fragment holds every header through the upper-layer one. The headers
    after the fragment header are only skipped here; they are processed after reassembly."""
    end = len(data)
    while nh in (NH_DEST_OPTS, NH_ROUTING, NH_HOP_BY_HOP, NH_FRAGMENT, NH_AH):
        if nh == NH_FRAGMENT:
            raise ParameterProblem("ipv6.nested_fragment", PP_ERRONEOUS_FIELD, pos)
        if pos + 2 > end:
            raise ParameterProblem("ipv6.frag_incomplete_chain", PP_INCOMPLETE_CHAIN, 0)
        size = (data[pos + 1] + 2) * 4 if nh == NH_AH else (data[pos + 1] + 1) * 8
        nh = data[pos]
        pos += size
    if pos + _UPPER_HEADER_LEN.get(nh, 1) > end:
        raise ParameterProblem("ipv6.frag_incomplete_chain", PP_INCOMPLETE_CHAIN, 0)


def _options(data: memoryview, at: int, size: int, hop_by_hop: bool, multicast_dst: bool,
             max_options: int) -> int | None:
    """Process one options header's TLVs (RFC 8200 section 4.2); return its Router Alert value, if any.

    As Linux's ip6_parse_tlv: more than 7 bytes of padding in a row, non-zero PadN bytes (RFC 4942
    section 2.1.9.5) and more than ``max_options`` other options drop the packet.
    """
    i = at + 2
    end = at + size
    padding = 0
    count = 0
    router_alert = None
    while i < end:
        otype = data[i]
        if otype == OPT_PAD1:
            padding += 1
            if padding > 7:
                raise WireError("ipv6.excess_padding")
            i += 1
            continue
        if i + 2 > end or i + 2 + data[i + 1] > end:
            raise WireError("ipv6.bad_option_length")
        olen = data[i + 1]
        if otype == OPT_PADN:
            padding += olen + 2
            if padding > 7:
                raise WireError("ipv6.excess_padding")
            if any(data[i + 2:i + 2 + olen]):
                raise WireError("ipv6.bad_padding")
        else:
            padding = 0
            count += 1
            if count > max_options:
                raise WireError("ipv6.too_many_options")
            if otype == OPT_ROUTER_ALERT and hop_by_hop:
                if olen != 2:
                    raise WireError("ipv6.bad_router_alert")
                router_alert = (data[i + 2] << 8) | data[i + 3]
            else:
                action = otype >> 6  # RFC 8200 section 4.2: what to do with an unrecognised option
                if action == 1:
                    raise WireError("ipv6.unknown_option")
                if action == 2:
                    raise ParameterProblem("ipv6.unknown_option", PP_UNKNOWN_OPTION, i, multicast_ok=True)
                if action == 3:
                    if multicast_dst:
                        raise WireError("ipv6.unknown_option")
                    raise ParameterProblem("ipv6.unknown_option", PP_UNKNOWN_OPTION, i)
        i += 2 + olen
    return router_alert


# --- addresses (RFC 4291) --------------------------------------------------------------------------


def is_multicast(addr: int) -> bool:
    return addr >> 120 == 0xFF


def is_link_local(addr: int) -> bool:
    """fe80::/10 (RFC 4291 section 2.5.6)."""
    return addr >> 118 == 0xFE80 >> 6


def solicited_node(addr: int) -> int:
    """The solicited-node multicast group of ``addr``: ff02::1:ff00:0/104 and its low 24 bits
    (RFC 4291 section 2.7.1)."""
    return 0xFF02 << 112 | 0x1FF << 24 | addr & 0xFFFFFF


def multicast_mac(group: int) -> bytes:
    """The Ethernet address a multicast group is sent to: 33:33 and the group's low 32 bits (RFC 2464
    section 7)."""
    return b"\x33\x33" + (group & 0xFFFFFFFF).to_bytes(4, "big")


def addr_to_int(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def int_to_addr(value: int) -> str:
    return str(ipaddress.IPv6Address(value))
