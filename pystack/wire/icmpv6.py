"""ICMPv6 (RFC 4443) with neighbour discovery (RFC 4861) and MLD (RFC 3810, MLDv1 of RFC 2710): parse and build.

:func:`parse` checks the length and the checksum over the IPv6 pseudo-header; the typed parsers then
check what each message's RFC requires of it, the ND ones with RFC 4861's validation rules (sections
6.1, 7.1 and 8.1: among them the hop limit of 255 that proves the sender is on the link) and RFC 6980's
refusal of fragmented ND, the MLD ones with RFC 3810's (hop limit 1, Router Alert, link-local source).
Every message built here carries its checksum, so builders take the IPv6 source and destination.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pystack.wire import ipv6
from pystack.wire.checksum import incremental_update, internet_checksum, ones_sum, pseudo_header_sum6
from pystack.wire.errors import WireError

HEADER_LEN = 8
"""Type, code, checksum and the 4 bytes every message has after them (Linux's struct icmp6hdr)."""

TYPE_DEST_UNREACHABLE = 1
TYPE_PACKET_TOO_BIG = 2
TYPE_TIME_EXCEEDED = 3
TYPE_PARAMETER_PROBLEM = 4
TYPE_ECHO_REQUEST = 128
TYPE_ECHO_REPLY = 129
TYPE_MLD_QUERY = 130
TYPE_MLDV1_REPORT = 131  # RFC 2710 section 3
TYPE_MLDV1_DONE = 132
TYPE_ROUTER_SOLICITATION = 133
TYPE_ROUTER_ADVERTISEMENT = 134
TYPE_NEIGHBOUR_SOLICITATION = 135
TYPE_NEIGHBOUR_ADVERTISEMENT = 136
TYPE_REDIRECT = 137
TYPE_MLD_REPORT = 143  # MLDv2 (RFC 3810 section 5.2)

# Destination Unreachable codes (RFC 4443 section 3.1).
CODE_NO_ROUTE = 0
CODE_ADMIN_PROHIBITED = 1
CODE_BEYOND_SCOPE = 2
CODE_ADDRESS_UNREACHABLE = 3
CODE_PORT_UNREACHABLE = 4
# Time Exceeded codes (section 3.3).
CODE_HOP_LIMIT = 0
CODE_REASSEMBLY_TIMEOUT = 1

ERROR_QUOTE_MAX = ipv6.MIN_MTU - ipv6.HEADER_LEN - HEADER_LEN
"""An error quotes as much of the invoking packet as fits in a 1280-byte packet (RFC 4443 2.4 (c))."""

ND_HOP_LIMIT = 255
MLD_HOP_LIMIT = 1

_HEADER = struct.Struct("!BBHI")
_FROM = int.from_bytes


class Icmpv6Message(NamedTuple):
    type: int
    code: int
    rest: int
    """The 4 bytes after the checksum: identifier and sequence for echo, MTU or pointer for errors, flags
    for ND, Max Response Code for an MLD query."""
    body: memoryview


def parse(data: bytes | bytearray | memoryview, src: int, dst: int) -> Icmpv6Message:
    if len(data) < HEADER_LEN:
        raise WireError("icmpv6.truncated")
    if ones_sum(data, pseudo_header_sum6(src, dst, ipv6.NH_ICMPV6, len(data))) != 0xFFFF:
        raise WireError("icmpv6.bad_checksum")
    mtype, code, _csum, rest = _HEADER.unpack_from(data)
    return Icmpv6Message(mtype, code, rest, memoryview(data)[HEADER_LEN:])


def build(mtype: int, code: int, rest: int, body: bytes | memoryview, src: int, dst: int) -> bytes:
    raw = _HEADER.pack(mtype, code, 0, rest) + body
    csum = internet_checksum(raw, pseudo_header_sum6(src, dst, ipv6.NH_ICMPV6, len(raw)))
    return raw[:2] + csum.to_bytes(2, "big") + raw[4:]


def echo_reply_from_request(request: bytes | memoryview) -> bytes:
    """The reply to a verified echo request (whole ICMPv6 message), answered from the address it was
    sent to: only the type changes (128 -> 129), and the pseudo-header sums the same with source and
    destination swapped, so the checksum is updated (RFC 1624) instead of summed again. The pseudo-header
    always holds Next Header 58, so the covered data is never all zero and a result of 0 stands."""
    code = request[1]
    csum = incremental_update(_FROM(request[2:4], "big"), TYPE_ECHO_REQUEST << 8 | code, TYPE_ECHO_REPLY << 8 | code)
    return bytes((TYPE_ECHO_REPLY, code)) + csum.to_bytes(2, "big") + bytes(request[4:])


# --- errors (RFC 4443 sections 2.4 and 3) ----------------------------------------------------------------


def build_error(mtype: int, code: int, rest: int, invoking: bytes | memoryview, src: int, dst: int) -> bytes:
    """An error message quoting the invoking packet, cut so the error fits in 1280 bytes (2.4 (c)).
    ``rest`` is the MTU for Packet Too Big, the pointer for Parameter Problem, else 0."""
    return build(mtype, code, rest, invoking[:ERROR_QUOTE_MAX], src, dst)


def error_allowed(mtype: int, code: int, src: int, dst: int, *, multicast_ok: bool = False,
                  link_multicast: bool = False, invoking_icmp_type: int | None = None) -> bool:
    """Whether RFC 4443 section 2.4 (e) lets an error answer a packet from ``src`` to ``dst``.

    Never for an ICMPv6 error or a redirect (e.1, e.2); never to a source that is not one node (e.6);
    for a packet sent to a multicast address or as link-layer multicast (e.3, e.4) only Packet Too Big
    and the Parameter Problem of an unknown option whose type asks for it (``multicast_ok``).
    Rate limiting (e.7, section 2.4 (f)) is the caller's.
    """
    if invoking_icmp_type is not None and (invoking_icmp_type < 128 or invoking_icmp_type == TYPE_REDIRECT):
        return False
    if src == ipv6.UNSPECIFIED or ipv6.is_multicast(src):
        return False
    if ipv6.is_multicast(dst) or link_multicast:
        return mtype == TYPE_PACKET_TOO_BIG or (
            mtype == TYPE_PARAMETER_PROBLEM and code == ipv6.PP_UNKNOWN_OPTION and multicast_ok)
    return True


class Quote(NamedTuple):
    """What an error quotes, read far enough to find the socket it concerns."""

    src: int
    dst: int
    protocol: int
    """The upper layer of the quoted packet, or ``NH_FRAGMENT`` when it is a later fragment."""
    upper: memoryview
    """The quoted upper-layer bytes (often cut short)."""


def parse_quote(body: bytes | memoryview) -> Quote:
    """The invoking packet in an error's body: its addresses and upper layer, skipping extension headers
    without judging them (it is a packet we sent, cut at an arbitrary length)."""
    if len(body) < ipv6.HEADER_LEN or body[0] >> 4 != 6:
        raise WireError("icmpv6.bad_quote")
    view = memoryview(body)
    nh = view[6]
    at = ipv6.HEADER_LEN
    for _ in range(9):  # eight extension headers at most, as ipv6.walk's default
        if nh == ipv6.NH_FRAGMENT:
            if at + 8 > len(view):
                raise WireError("icmpv6.bad_quote")
            if _FROM(view[at + 2:at + 4], "big") & 0xFFF8:
                return Quote(_FROM(view[8:24], "big"), _FROM(view[24:40], "big"), ipv6.NH_FRAGMENT, view[at + 8:at + 8])
            nh, at = view[at], at + 8
        elif nh in (ipv6.NH_HOP_BY_HOP, ipv6.NH_ROUTING, ipv6.NH_DEST_OPTS):
            if at + 2 > len(view):
                raise WireError("icmpv6.bad_quote")
            nh, at = view[at], at + (view[at + 1] + 1) * 8
        else:
            break
    else:
        raise WireError("icmpv6.bad_quote")
    if at > len(view):
        raise WireError("icmpv6.bad_quote")
    return Quote(_FROM(view[8:24], "big"), _FROM(view[24:40], "big"), nh, view[at:])


# --- neighbour discovery options (RFC 4861 section 4.6, RFC 8106, RFC 3971 5.3.2) -----------------------

OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
OPT_PREFIX_INFO = 3
OPT_REDIRECTED_HEADER = 4
OPT_MTU = 5
OPT_NONCE = 14
OPT_RDNSS = 25

INFINITE_LIFETIME = 0xFFFFFFFF
"""All one bits in a lifetime means forever (RFC 4861 section 4.6.2, RFC 8106 section 5.1)."""


class PrefixInfo(NamedTuple):
    prefix: int
    """With the bits past ``prefix_len`` cleared (RFC 4861 4.6.2: the receiver ignores them)."""
    prefix_len: int
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    """Seconds (``INFINITE_LIFETIME`` for ever), as are the preferred lifetime and RDNSS lifetimes."""
    preferred_lifetime: int


class Rdnss(NamedTuple):
    lifetime: int
    servers: tuple[int, ...]


@dataclass(slots=True)
class NdOptions:
    source_lladdr: bytes | None = None
    target_lladdr: bytes | None = None
    mtu: int | None = None
    nonce: bytes | None = None
    redirected: bytes | None = None
    prefixes: list[PrefixInfo] = field(default_factory=list)
    rdnss: list[Rdnss] = field(default_factory=list)
    invalid: int = 0
    """Known options skipped for a wrong length or for repeating one that may appear once (as Linux's
    ndisc_parse_options keeps the first); options of unknown type are skipped silently (RFC 4861 4.6)."""


_SINGLE = {OPT_SOURCE_LLADDR: "source_lladdr", OPT_TARGET_LLADDR: "target_lladdr", OPT_MTU: "mtu",
           OPT_NONCE: "nonce", OPT_REDIRECTED_HEADER: "redirected"}


def parse_options(data: bytes | memoryview) -> NdOptions:
    """The options of an ND message. An option of length zero or one that runs past the message makes
    the whole message invalid (RFC 4861 4.6: it is discarded)."""
    opts = NdOptions()
    view = memoryview(data)
    i = 0
    while i < len(view):
        if i + 2 > len(view) or view[i + 1] == 0:
            raise WireError("ndisc.bad_option_length")
        otype, size = view[i], view[i + 1] * 8
        if i + size > len(view):
            raise WireError("ndisc.bad_option_length")
        body = view[i + 2:i + size]
        i += size
        if otype in _SINGLE:
            value = _single_option(otype, body)
            if value is None or getattr(opts, _SINGLE[otype]) is not None:
                opts.invalid += 1
            else:
                setattr(opts, _SINGLE[otype], value)
        elif otype == OPT_PREFIX_INFO:
            if size != 32 or body[0] > 128:
                opts.invalid += 1
                continue
            plen, flags, valid, preferred = struct.unpack_from("!BBII", body)
            prefix = _FROM(body[14:30], "big") & ~((1 << (128 - plen)) - 1)
            opts.prefixes.append(PrefixInfo(prefix, plen, bool(flags & 0x80), bool(flags & 0x40), valid, preferred))
        elif otype == OPT_RDNSS:
            if size < 24 or size % 16 != 8:  # RFC 8106 section 5.1: length 3 + 2n (one server at least)
                opts.invalid += 1
                continue
            servers = tuple(_FROM(body[j:j + 16], "big") for j in range(6, len(body), 16))
            opts.rdnss.append(Rdnss(_FROM(body[2:6], "big"), servers))
    return opts


def _single_option(otype: int, body: memoryview) -> bytes | int | None:
    if otype in (OPT_SOURCE_LLADDR, OPT_TARGET_LLADDR):
        return bytes(body) if len(body) == 6 else None  # Ethernet (RFC 2464 section 8): length 1
    if otype == OPT_MTU:
        return _FROM(body[2:6], "big") if len(body) == 6 else None
    if otype == OPT_REDIRECTED_HEADER:
        return bytes(body[6:])
    return bytes(body)  # nonce: whatever length the sender chose (RFC 3971 5.3.2)


def lladdr_option(otype: int, mac: bytes) -> bytes:
    return bytes((otype, 1)) + mac


def prefix_option(info: PrefixInfo) -> bytes:
    flags = 0x80 * info.on_link | 0x40 * info.autonomous
    return struct.pack("!BBBBIII16s", OPT_PREFIX_INFO, 4, info.prefix_len, flags, info.valid_lifetime,
                       info.preferred_lifetime, 0, info.prefix.to_bytes(16, "big"))


def mtu_option(mtu: int) -> bytes:
    return struct.pack("!BBHI", OPT_MTU, 1, 0, mtu)


def rdnss_option(lifetime: int, servers: Sequence[int]) -> bytes:
    if not servers:
        raise ValueError("an RDNSS option names at least one server")
    return struct.pack("!BBHI", OPT_RDNSS, 1 + 2 * len(servers), 0, lifetime) + b"".join(
        s.to_bytes(16, "big") for s in servers)


def nonce_option(nonce: bytes) -> bytes:
    if (len(nonce) + 2) % 8:
        raise ValueError("a nonce option must come to a multiple of 8 bytes (6 nonce bytes for RFC 7527)")
    return bytes((OPT_NONCE, (len(nonce) + 2) // 8)) + nonce


def _redirected_header_option(packet: bytes | memoryview, room: int) -> bytes:
    data = bytes(packet[:(room - 8) & ~7])
    data += bytes(-len(data) % 8)
    return bytes((OPT_REDIRECTED_HEADER, 1 + len(data) // 8)) + bytes(6) + data


# --- neighbour discovery messages (RFC 4861 section 4) ------------------------------------------------

PREFERENCE_LOW = -1
PREFERENCE_MEDIUM = 0
PREFERENCE_HIGH = 1
_PREFERENCE = {0: PREFERENCE_MEDIUM, 1: PREFERENCE_HIGH, 2: PREFERENCE_MEDIUM, 3: PREFERENCE_LOW}
"""RFC 4191 section 2.2: the reserved value 10 is taken as medium."""


class RouterSolicitation(NamedTuple):
    options: NdOptions


class RouterAdvertisement(NamedTuple):
    cur_hop_limit: int
    managed: bool
    other: bool
    preference: int
    router_lifetime: int
    """Seconds; 0 means the sender is not a default router (RFC 4861 4.2)."""
    reachable_time: int
    """Milliseconds, 0 for unspecified; so is the retransmission timer."""
    retrans_timer: int
    options: NdOptions


class NeighbourSolicitation(NamedTuple):
    target: int
    options: NdOptions


class NeighbourAdvertisement(NamedTuple):
    target: int
    router: bool
    solicited: bool
    override: bool
    options: NdOptions


class Redirect(NamedTuple):
    target: int
    destination: int
    options: NdOptions


def _nd_checks(msg: Icmpv6Message, hop_limit: int, min_len: int, fragmented: bool) -> None:
    """The rules every ND message shares (RFC 4861 6.1 and 7.1, RFC 6980 section 5)."""
    if hop_limit != ND_HOP_LIMIT:
        raise WireError("ndisc.bad_hop_limit")
    if fragmented:
        raise WireError("ndisc.fragmented")
    if msg.code != 0:
        raise WireError("ndisc.bad_code")
    if HEADER_LEN + len(msg.body) < min_len:
        raise WireError("ndisc.truncated")


def parse_rs(msg: Icmpv6Message, *, src: int, hop_limit: int, fragmented: bool = False) -> RouterSolicitation:
    """RFC 4861 section 6.1.1 (hosts then ignore it, 6.2.6; parsed for completeness and tests)."""
    _nd_checks(msg, hop_limit, 8, fragmented)
    opts = parse_options(msg.body)
    if src == ipv6.UNSPECIFIED and opts.source_lladdr is not None:
        raise WireError("ndisc.unspecified_with_lladdr")
    return RouterSolicitation(opts)


def parse_ra(msg: Icmpv6Message, *, src: int, hop_limit: int, fragmented: bool = False) -> RouterAdvertisement:
    """RFC 4861 section 6.1.2."""
    _nd_checks(msg, hop_limit, 16, fragmented)
    if not ipv6.is_link_local(src):
        raise WireError("ndisc.source_not_link_local")
    flags = (msg.rest >> 16) & 0xFF
    return RouterAdvertisement(
        msg.rest >> 24, bool(flags & 0x80), bool(flags & 0x40), _PREFERENCE[(flags >> 3) & 3], msg.rest & 0xFFFF,
        _FROM(msg.body[0:4], "big"), _FROM(msg.body[4:8], "big"), parse_options(msg.body[8:]))


def parse_ns(msg: Icmpv6Message, *, src: int, dst: int, hop_limit: int,
             fragmented: bool = False) -> NeighbourSolicitation:
    """RFC 4861 section 7.1.1."""
    _nd_checks(msg, hop_limit, 24, fragmented)
    target = _FROM(msg.body[0:16], "big")
    if ipv6.is_multicast(target):
        raise WireError("ndisc.multicast_target")
    opts = parse_options(msg.body[16:])
    if src == ipv6.UNSPECIFIED:
        if dst >> 24 != ipv6.solicited_node(0) >> 24:
            raise WireError("ndisc.dad_not_to_solicited_node")
        if opts.source_lladdr is not None:
            raise WireError("ndisc.unspecified_with_lladdr")
    return NeighbourSolicitation(target, opts)


def parse_na(msg: Icmpv6Message, *, dst: int, hop_limit: int, fragmented: bool = False) -> NeighbourAdvertisement:
    """RFC 4861 section 7.1.2."""
    _nd_checks(msg, hop_limit, 24, fragmented)
    target = _FROM(msg.body[0:16], "big")
    if ipv6.is_multicast(target):
        raise WireError("ndisc.multicast_target")
    solicited = bool(msg.rest & 0x40000000)
    if solicited and ipv6.is_multicast(dst):
        raise WireError("ndisc.solicited_to_multicast")
    return NeighbourAdvertisement(target, bool(msg.rest & 0x80000000), solicited, bool(msg.rest & 0x20000000),
                                  parse_options(msg.body[16:]))


def parse_redirect(msg: Icmpv6Message, *, src: int, hop_limit: int, fragmented: bool = False) -> Redirect:
    """RFC 4861 section 8.1; that ``src`` is the first-hop router for the destination is the caller's check."""
    _nd_checks(msg, hop_limit, 40, fragmented)
    if not ipv6.is_link_local(src):
        raise WireError("ndisc.source_not_link_local")
    target = _FROM(msg.body[0:16], "big")
    destination = _FROM(msg.body[16:32], "big")
    if ipv6.is_multicast(destination):
        raise WireError("ndisc.multicast_destination")
    if not ipv6.is_link_local(target) and target != destination:
        raise WireError("ndisc.bad_redirect_target")
    return Redirect(target, destination, parse_options(msg.body[32:]))


def build_rs(src: int, dst: int = ipv6.ALL_ROUTERS, *, source_lladdr: bytes | None = None) -> bytes:
    """A router solicitation; from the unspecified address it must carry no link-layer address (4.1)."""
    opts = lladdr_option(OPT_SOURCE_LLADDR, source_lladdr) if source_lladdr else b""
    return build(TYPE_ROUTER_SOLICITATION, 0, 0, opts, src, dst)


def build_ra(src: int, dst: int = ipv6.ALL_NODES, *, cur_hop_limit: int = 64, managed: bool = False,
             other: bool = False, preference: int = PREFERENCE_MEDIUM, router_lifetime: int = 1800,
             reachable_time: int = 0, retrans_timer: int = 0, options: bytes = b"") -> bytes:
    prf = {PREFERENCE_MEDIUM: 0, PREFERENCE_HIGH: 1, PREFERENCE_LOW: 3}[preference]
    flags = 0x80 * managed | 0x40 * other | prf << 3
    return build(TYPE_ROUTER_ADVERTISEMENT, 0, cur_hop_limit << 24 | flags << 16 | router_lifetime,
                 struct.pack("!II", reachable_time, retrans_timer) + options, src, dst)


def build_ns(src: int, dst: int, target: int, *, source_lladdr: bytes | None = None,
             nonce: bytes | None = None) -> bytes:
    """A neighbour solicitation: to the solicited-node group to resolve, unicast to probe (RFC 4861 7.2.2,
    7.3.3); for DAD from the unspecified address, with a nonce (RFC 4862 5.4.2, RFC 7527)."""
    opts = lladdr_option(OPT_SOURCE_LLADDR, source_lladdr) if source_lladdr else b""
    if nonce is not None:
        opts += nonce_option(nonce)
    return build(TYPE_NEIGHBOUR_SOLICITATION, 0, 0, target.to_bytes(16, "big") + opts, src, dst)


def build_na(src: int, dst: int, target: int, *, router: bool = False, solicited: bool = False,
             override: bool = True, target_lladdr: bytes | None = None) -> bytes:
    flags = 0x80000000 * router | 0x40000000 * solicited | 0x20000000 * override
    opts = lladdr_option(OPT_TARGET_LLADDR, target_lladdr) if target_lladdr else b""
    return build(TYPE_NEIGHBOUR_ADVERTISEMENT, 0, flags, target.to_bytes(16, "big") + opts, src, dst)


def build_redirect(src: int, dst: int, target: int, destination: int, *, target_lladdr: bytes | None = None,
                   redirected: bytes | memoryview | None = None) -> bytes:
    """A redirect (RFC 4861 4.5), quoting as much of the ``redirected`` packet as keeps it within
    1280 bytes (4.6.3)."""
    opts = lladdr_option(OPT_TARGET_LLADDR, target_lladdr) if target_lladdr else b""
    if redirected is not None:
        opts += _redirected_header_option(redirected, ipv6.MIN_MTU - ipv6.HEADER_LEN - 40 - len(opts))
    return build(TYPE_REDIRECT, 0, 0, target.to_bytes(16, "big") + destination.to_bytes(16, "big") + opts, src, dst)


# --- MLDv2 (RFC 3810) -------------------------------------------------------------------------------

MODE_IS_INCLUDE = 1
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4
ALLOW_NEW_SOURCES = 5
BLOCK_OLD_SOURCES = 6


class MldQuery(NamedTuple):
    version: int
    """1 for a 24-byte MLDv1 query, 2 for MLDv2 (RFC 3810 section 8.1)."""
    max_response_delay: int
    """Milliseconds, decoded from the Max Response Code (5.1.3)."""
    group: int
    """0 for a general query, else the group asked about (5.1.5)."""
    suppress: bool
    robustness: int
    query_interval: int
    """Seconds, decoded from the QQIC (5.1.9)."""
    sources: tuple[int, ...]


class MulticastRecord(NamedTuple):
    record_type: int
    group: int
    sources: tuple[int, ...] = ()
    aux: bytes = b""


def decode_exponential(code: int, mant_bits: int) -> int:
    """RFC 3810 5.1.3 and 5.1.9: below 2**(mant_bits+3) the value itself; above, 1|exp(3)|mant, read as
    (mant | 1 << mant_bits) << (exp + 3)."""
    if code < 1 << (mant_bits + 3):
        return code
    mant = code & ((1 << mant_bits) - 1)
    exp = (code >> mant_bits) & 7
    return (mant | 1 << mant_bits) << (exp + 3)


def encode_exponential(value: int, mant_bits: int) -> int:
    """The code for ``value`` (rounded down to what the code can say; the largest code past its range)."""
    if value < 1 << (mant_bits + 3):
        return value
    for exp in range(8):
        mant = value >> (exp + 3)
        if mant < 1 << (mant_bits + 1):
            return 1 << (mant_bits + 3) | exp << mant_bits | (mant & ((1 << mant_bits) - 1))
    return (1 << (mant_bits + 4)) - 1


def _mld_checks(src: int, hop_limit: int, router_alert: bool) -> None:
    if hop_limit != MLD_HOP_LIMIT:
        raise WireError("mld.bad_hop_limit")
    if not router_alert:
        raise WireError("mld.no_router_alert")


def parse_mld_query(msg: Icmpv6Message, *, src: int, hop_limit: int, router_alert: bool) -> MldQuery:
    """An MLDv1 or MLDv2 query (RFC 3810 sections 5.1 and 8.1): from a link-local address (5.1.14),
    with hop limit 1 and a Router Alert; 25 to 27 bytes long is neither version and is dropped."""
    _mld_checks(src, hop_limit, router_alert)
    if not ipv6.is_link_local(src):
        raise WireError("mld.source_not_link_local")
    size = HEADER_LEN + len(msg.body)
    if size < 24 or 24 < size < 28:
        raise WireError("mld.bad_length")
    group = _FROM(msg.body[0:16], "big")
    if group and not ipv6.is_multicast(group):
        raise WireError("mld.bad_group")
    code = msg.rest >> 16
    if size == 24:
        return MldQuery(1, code, group, False, 2, 125, ())
    flags, qqic, count = struct.unpack_from("!BBH", msg.body, 16)
    if 20 + 16 * count > len(msg.body):
        raise WireError("mld.truncated")
    sources = tuple(_FROM(msg.body[j:j + 16], "big") for j in range(20, 20 + 16 * count, 16))
    return MldQuery(2, decode_exponential(code, 12), group, bool(flags & 8), flags & 7, decode_exponential(qqic, 4),
                    sources)


def parse_mld_report(msg: Icmpv6Message, *, src: int, hop_limit: int, router_alert: bool) -> list[MulticastRecord]:
    """An MLDv2 report (RFC 3810 section 5.2), from a link-local or the unspecified address (5.2.13)."""
    _mld_checks(src, hop_limit, router_alert)
    if src != ipv6.UNSPECIFIED and not ipv6.is_link_local(src):
        raise WireError("mld.source_not_link_local")
    body = msg.body
    records = []
    at = 0
    for _ in range(msg.rest & 0xFFFF):
        if at + 20 > len(body):
            raise WireError("mld.truncated")
        rtype, aux_words, count = struct.unpack_from("!BBH", body, at)
        group = _FROM(body[at + 4:at + 20], "big")
        end = at + 20 + 16 * count + 4 * aux_words
        if end > len(body):
            raise WireError("mld.truncated")
        if not ipv6.is_multicast(group):
            raise WireError("mld.bad_group")
        sources = tuple(_FROM(body[j:j + 16], "big") for j in range(at + 20, at + 20 + 16 * count, 16))
        records.append(MulticastRecord(rtype, group, sources, bytes(body[end - 4 * aux_words:end])))
        at = end
    return records


def build_mld_query(src: int, dst: int, *, max_response_delay: int, group: int = 0, sources: Sequence[int] = (),
                    suppress: bool = False, robustness: int = 2, query_interval: int = 125) -> bytes:
    """An MLDv2 query; ``max_response_delay`` in milliseconds, ``query_interval`` in seconds."""
    body = (group.to_bytes(16, "big") + struct.pack("!BBH", 8 * suppress | robustness & 7,
                                                     encode_exponential(query_interval, 4), len(sources))
            + b"".join(s.to_bytes(16, "big") for s in sources))
    return build(TYPE_MLD_QUERY, 0, encode_exponential(max_response_delay, 12) << 16, body, src, dst)


MLDV1_LEN = 24
"""An MLDv1 message: the ICMPv6 header with the Maximum Response Delay, then the group (RFC 2710 3)."""


def parse_mldv1_report(msg: Icmpv6Message, *, src: int, hop_limit: int, router_alert: bool) -> int:
    """The group of another host's MLDv1 Report (RFC 2710 3), which suppresses ours (RFC 2710 4); from a
    link-local or the unspecified address, as Linux's igmp6_event_report takes it."""
    _mld_checks(src, hop_limit, router_alert)
    if src != ipv6.UNSPECIFIED and not ipv6.is_link_local(src):
        raise WireError("mld.source_not_link_local")
    if HEADER_LEN + len(msg.body) < MLDV1_LEN:
        raise WireError("mld.truncated")
    group = _FROM(msg.body[0:16], "big")
    if not ipv6.is_multicast(group):
        raise WireError("mld.bad_group")
    return group


def build_mldv1(mtype: int, src: int, group: int) -> tuple[int, bytes]:
    """An MLDv1 Report (to the group itself) or Done (to all routers, ff02::2), RFC 2710 3 and 5: the
    destination and the 24-byte message, its Maximum Response Delay 0 as a host sends it."""
    dst = ipv6.ALL_ROUTERS if mtype == TYPE_MLDV1_DONE else group
    return dst, build(mtype, 0, 0, group.to_bytes(16, "big"), src, dst)


def build_mld_report(src: int, records: Sequence[MulticastRecord]) -> bytes:
    """An MLDv2 report, sent to all MLDv2-capable routers (ff02::16, RFC 3810 5.2.14)."""
    body = b"".join(
        struct.pack("!BBH", r.record_type, len(r.aux) // 4, len(r.sources)) + r.group.to_bytes(16, "big")
        + b"".join(s.to_bytes(16, "big") for s in r.sources) + r.aux for r in records)
    return build(TYPE_MLD_REPORT, 0, len(records), body, src, ipv6.ALL_MLDV2_ROUTERS)


def mld_packet(src: int, dst: int, message: bytes) -> bytes:
    """An MLD message in its IPv6 packet: hop limit 1 and a hop-by-hop Router Alert (RFC 3810 5)."""
    hbh = ipv6.options_header(ipv6.NH_ICMPV6, [(ipv6.OPT_ROUTER_ALERT, b"\x00\x00")])
    return ipv6.build(src, dst, ipv6.NH_HOP_BY_HOP, hbh + message, hop_limit=MLD_HOP_LIMIT)
