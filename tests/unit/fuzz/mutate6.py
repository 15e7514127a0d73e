"""Mutations of valid IPv6 frames: what a hostile or broken neighbour sends (RFC 8200's extension headers
and fragments, RFC 4861's neighbour discovery, RFC 4443's ICMPv6), checksums fixed after each so the
damage reaches what lies behind them.

Like :mod:`fuzz.mutate`, written from the RFCs with struct, sharing nothing with pystack's wire code.
Each mutation takes (rng, frame, corpus) and returns the new frame; one that does not apply to the frame
(not IPv6, too short) does a generic mutation instead.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

from .corpus import A6, A_LL, A_MAC, B6, B_LL
from .mutate import (
    ETH_LEN, Mutation, bit_flips, fix_checksums, giant, header_bit_flips, ipv6_layout, random_bytes,
    splice, truncate, zero_length,
)

NH_HOP_BY_HOP, NH_ROUTING, NH_FRAGMENT, NH_ICMPV6, NH_NONE, NH_DEST_OPTS = 0, 43, 44, 58, 59, 60
ALL_NODES = 0xFF02 << 112 | 1
ALL_ROUTERS = 0xFF02 << 112 | 2
FRAGMENT_IDENTS = (0x1234, 0x1235, 0xFFFFFFFF)
"""A few identifications, so that fragments from different frames meet in one reassembly."""


def solicited_node(addr: int) -> int:
    return 0xFF02 << 112 | 0x1_FF00_0000 | addr & 0xFFFFFF


def _addr(value: int) -> bytes:
    return value.to_bytes(16, "big")


SOURCES = (B6, B_LL, 0, 1, ALL_NODES, A6, A_LL, 0xFE80 << 112, 0xFFFF_C000_0201, 0x2001_0DB8 << 96 | 0xBAD)
"""The peer (global, link-local), ::, ::1, a multicast address, our own addresses (spoofed), fe80::,
an IPv4-mapped address, a stranger."""
DESTINATIONS = (A6, A_LL, ALL_NODES, solicited_node(A6), ALL_ROUTERS, 0xFF01 << 112 | 1, 0xFF00 << 112 | 1,
                0xFF05 << 112 | 2, 1, 0, B6, 0x2001_0DB8 << 96 | 0xBAD)
"""Ours, all-nodes, our solicited-node group, all-routers (not joined), interface-local and reserved scope
(never on a link, RFC 4291 2.7), site-local all-routers, ::1, ::, the peer, a stranger."""

OPTIONS6: tuple[bytes, ...] = (
    b"\x00", b"\x00" * 7, b"\x00" * 9, b"\x01\x00", b"\x01\x04\x00\x00\x00\x00", b"\x01\x04\x00\x00\x01\x00",
    b"\x01\x08" + bytes(8),  # PadN: empty, right, with a non-zero byte (RFC 4942 2.1.9.5), longer than 7
    b"\x05\x02\x00\x00", b"\x05\x02\x00\x01", b"\x05\x03\x00\x00\x00", b"\x05\x00",  # router alert (RFC 2711)
    b"\xc2\x04\x00\x01\x00\x00",  # jumbo payload (RFC 2675), which a Payload Length other than 0 forbids
    b"\x1e\x02\xaa\xbb", b"\x5e\x02\xaa\xbb", b"\x9e\x02\xaa\xbb", b"\xde\x02\xaa\xbb",  # unknown: skip, drop, PP, PP
    b"\x1e\xff", b"\x1e\x10",  # a length past the header
)


def options_header(nh: int, rng: random.Random) -> bytes:
    """A hop-by-hop or destination options header of random options, padded (or not) to 8 bytes."""
    body = b"".join(rng.choice(OPTIONS6) for _ in range(rng.choice((0, 1, 1, 2, 3, 9, 12))))
    if rng.random() < 0.8:
        body += b"\x00" * (-(2 + len(body)) % 8)
    length = max(0, (2 + len(body) + 7) // 8 - 1)
    if rng.random() < 0.1:
        length = rng.randrange(256)  # claims more (or less) than it holds
    return bytes((nh, length)) + body


def routing_header(nh: int, rng: random.Random) -> bytes:
    """Type 0 (deprecated, RFC 5095), 2 (mobile IPv6), 3 (RPL), 4 (segment routing) or unknown, with
    Segments Left 0 (ignored) or more (answered with a parameter problem)."""
    rtype = rng.choice((0, 0, 2, 3, 4, 253, rng.randrange(256)))
    addresses = rng.choice((1, 1, 2, 8))
    left = rng.choice((0, 1, addresses, 255))
    data = bytes(4) + b"".join(_addr(rng.choice(SOURCES)) for _ in range(addresses))
    return bytes((nh, 2 * addresses, rtype, left)) + data


def fragment_header(nh: int, rng: random.Random) -> bytes:
    offset = rng.choice((0, 0, 8, 1232, 1448, 0xFFF8, rng.randrange(0x2000) * 8))
    more = rng.random() < 0.5
    reserved_bits = rng.choice((0, 0, 0, 6))  # the two reserved bits (RFC 8200 4.5)
    return struct.pack("!BBHI", nh, 0, offset | reserved_bits | more, rng.choice(FRAGMENT_IDENTS))


def other_header(nh: int, rng: random.Random) -> tuple[int, bytes]:
    """An extension header pystack does not process: AH, ESP, mobility, HIP, shim6, experimental."""
    kind = rng.choice((51, 50, 135, 139, 140, 253, 254))
    if kind == 51:
        return kind, bytes((nh, 4)) + bytes(22)  # AH: (4 + 2) * 4 bytes
    return kind, bytes((nh, 0)) + bytes(6)


def chain(first_nh: int, rng: random.Random, count: int, repeat: int | None = None) -> tuple[int, bytes]:
    """``count`` extension headers ending in ``first_nh``; with ``repeat`` every one is that kind (a chain
    that "loops": destination options after destination options). Returns (first Next Header, bytes)."""
    nh, out = first_nh, b""
    for _ in range(count):
        kind = repeat if repeat is not None else rng.choice(
            (NH_HOP_BY_HOP, NH_DEST_OPTS, NH_DEST_OPTS, NH_ROUTING, NH_FRAGMENT, -1))
        if kind in (NH_HOP_BY_HOP, NH_DEST_OPTS):
            out = options_header(nh, rng) + out
        elif kind == NH_ROUTING:
            out = routing_header(nh, rng) + out
        elif kind == NH_FRAGMENT:
            out = fragment_header(nh, rng) + out
        else:
            kind, header = other_header(nh, rng)
            out = header + out
        nh = kind
    return nh, out


def _set_payload_length(frame: bytearray) -> None:
    struct.pack_into("!H", frame, ETH_LEN + 4, max(0, min(len(frame) - ETH_LEN - 40, 0xFFFF)))


# --- the mutations --------------------------------------------------------------------------------------


def extension_headers(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """A chain of extension headers after the fixed header: short, long (past any bound a host sets,
    RFC 8504 5.3), or one kind over and over."""
    if ipv6_layout(frame) is None:
        return truncate(rng, frame, corpus)
    shape = rng.random()
    if shape < 0.6:
        first, headers = chain(frame[ETH_LEN + 6], rng, rng.randint(1, 4))
    elif shape < 0.8:
        first, headers = chain(frame[ETH_LEN + 6], rng, rng.randint(9, 40))
    else:
        first, headers = chain(frame[ETH_LEN + 6], rng, rng.randint(2, 30), rng.choice((NH_DEST_OPTS, NH_HOP_BY_HOP,
                                                                                        NH_ROUTING, NH_FRAGMENT)))
    frame[ETH_LEN + 40:ETH_LEN + 40] = headers
    frame[ETH_LEN + 6] = first
    _set_payload_length(frame)
    return fix_checksums(frame)


def fragments(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """The packet's upper layer as one fragment: at offset 0 or further, with M or without, whole, cut to
    a tiny piece, or to a length that is not a multiple of 8; the identification from a small set, so
    fragments of different frames overlap, or end where another said the packet ends."""
    layout = ipv6_layout(frame)
    if layout is None:
        return truncate(rng, frame, corpus)
    start, end, nh, _fragment = layout
    offset = rng.choice((0, 0, 8, 16, 24, 1232, 0xFFF8, rng.randrange(0x2000) * 8))
    more = rng.random() < 0.6
    data = bytes(frame[start:end])
    cut = rng.random()
    if cut < 0.3:
        data = data[:rng.choice((0, 1, 8, 16))]  # tiny, or nothing at all
    elif cut < 0.5:
        data = data[:max(0, len(data) - rng.randint(1, 7))]  # not a multiple of 8
    header = struct.pack("!BBHI", nh, 0, offset | more, rng.choice(FRAGMENT_IDENTS))
    at = start if rng.random() < 0.8 else ETH_LEN + 40  # after the other extension headers, or before them
    if at == ETH_LEN + 40:
        frame[ETH_LEN + 6], header = NH_FRAGMENT, bytes((frame[ETH_LEN + 6],)) + header[1:]
        frame[at:] = header + bytes(frame[at:start]) + data
    else:
        _point_at(frame, start, NH_FRAGMENT)
        frame[at:] = header + data
    _set_payload_length(frame)
    return frame


def _point_at(frame: bytearray, upper: int, nh: int) -> None:
    """Make the Next Header field that names the upper layer (which starts at ``upper``) name ``nh``: the
    chain is walked again from the fixed header, as :func:`fuzz.mutate.ipv6_layout` walked it."""
    field, current, at = ETH_LEN + 6, frame[ETH_LEN + 6], ETH_LEN + 40
    while at < upper:
        size = 8 if current == NH_FRAGMENT else (frame[at + 1] + 2) * 4 if current == 51 else (frame[at + 1] + 1) * 8
        field, current, at = at, frame[at], at + size
    frame[field] = nh


def payload_length(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """A Payload Length that is not the packet's: 0 (a jumbogram's, RFC 2675), short, past the frame."""
    if ipv6_layout(frame) is None:
        return truncate(rng, frame, corpus)
    size = len(frame) - ETH_LEN - 40
    value = rng.choice((0, 1, 7, 8, size - 1, size + 1, size + 8, 0xFFFF, rng.randrange(0x10000)))
    struct.pack_into("!H", frame, ETH_LEN + 4, max(0, min(value, 0xFFFF)))
    return frame


def hop_limit(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """Neighbour discovery is accepted only with 255 (RFC 4861 7.1), MLD only with 1 (RFC 3810 5)."""
    if ipv6_layout(frame) is None:
        return truncate(rng, frame, corpus)
    frame[ETH_LEN + 7] = rng.choice((0, 1, 2, 64, 128, 254, 255, rng.randrange(256)))
    return frame


def addresses(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """Another source and destination, the Ethernet destination mostly following (33:33 and the group's
    low 32 bits for a multicast one, RFC 2464 7)."""
    if ipv6_layout(frame) is None:
        return truncate(rng, frame, corpus)
    src = rng.choice(SOURCES) if rng.random() < 0.5 else int.from_bytes(frame[ETH_LEN + 8:ETH_LEN + 24], "big")
    dst = rng.choice(DESTINATIONS) if rng.random() < 0.7 else int.from_bytes(frame[ETH_LEN + 24:ETH_LEN + 40], "big")
    frame[ETH_LEN + 8:ETH_LEN + 40] = _addr(src) + _addr(dst)
    if rng.random() < 0.9:
        frame[0:6] = b"\x33\x33" + _addr(dst)[12:] if dst >> 120 == 0xFF else A_MAC
    return fix_checksums(frame)


ND_FIXED = {133: 4, 134: 12, 135: 20, 136: 20, 137: 36}
"""Bytes of each ND message after the ICMPv6 header's first 4 bytes and before its options (RFC 4861 4)."""


def nd_options(rng: random.Random) -> bytes:
    """A list of ND options (RFC 4861 4.6, RFC 8106), well-formed or not: lengths of zero, lengths past the
    message, link-layer addresses of the wrong size, prefixes of every length and lifetime, MTUs out of
    range, RDNSS of the wrong size, nonces, unknown types; sometimes an RA's worth of prefixes."""
    out = b""
    for _ in range(rng.choice((0, 1, 2, 3, 6))):
        kind = rng.randrange(12)
        if kind == 0:
            out += bytes((rng.choice((1, 2)), 1)) + rng.randbytes(6)
        elif kind == 1:
            out += bytes((rng.choice((1, 2)), 2)) + rng.randbytes(14)  # not Ethernet's length
        elif kind == 2:
            out += bytes((rng.randrange(1, 30), 0)) + bytes(6)  # length zero: the whole message is invalid
        elif kind == 3:
            out += bytes((rng.randrange(1, 30), rng.choice((2, 9, 255)))) + bytes(6)  # runs past the end
        elif kind in (4, 5, 6):
            plen = rng.choice((0, 1, 48, 64, 64, 64, 80, 127, 128, 129, 255))
            valid, preferred = rng.choice(((3600, 1800), (1800, 3600), (0, 0), (0xFFFFFFFF, 0xFFFFFFFF), (1, 1),
                                           (7200, 0), (rng.getrandbits(32), rng.getrandbits(32))))
            prefix = (0x2001_0DB8 << 96 | rng.getrandbits(32) << 64) if rng.random() < 0.9 else rng.getrandbits(128)
            length = 4 if rng.random() < 0.9 else rng.choice((3, 5))
            body = struct.pack("!BBIII16s", plen, rng.choice((0xC0, 0x80, 0x40, 0, 0xFF)), valid, preferred, 0,
                               _addr(prefix))
            out += bytes((3, length)) + (body + bytes(8))[:length * 8 - 2]
        elif kind == 7:
            out += struct.pack("!BBHI", 5, 1, 0, rng.choice((0, 68, 1279, 1280, 1500, 9000, 0xFFFFFFFF)))
        elif kind == 8:
            servers = rng.choice((0, 1, 2))
            out += struct.pack("!BBHI", 25, rng.choice((1 + 2 * servers, 2)), 0, rng.choice((0, 600, 0xFFFFFFFF))) \
                + b"".join(_addr(rng.choice(SOURCES)) for _ in range(servers))
        elif kind == 9:
            out += bytes((14, 1)) + rng.randbytes(6)  # a nonce (RFC 3971 5.3.2)
        elif kind == 10:
            out += bytes((rng.randrange(30, 256), 1)) + rng.randbytes(6)  # unknown: skipped
        else:  # a flood of prefixes in one advertisement
            out += b"".join(bytes((3, 4)) + struct.pack("!BBIII16s", 64, 0xC0, 3600, 1800, 0,
                                                        _addr(0x2001_0DB8 << 96 | rng.getrandbits(32) << 64))
                            for _ in range(rng.randint(10, 40)))
    return out


def neighbour_discovery(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """The upper layer replaced by an ND message (RS, RA, NS, NA or redirect) with random fields and
    options, mostly with the hop limit of 255 it needs to be looked at."""
    layout = ipv6_layout(frame)
    if layout is None:
        return truncate(rng, frame, corpus)
    start, _end, _nh, _fragment = layout
    mtype = rng.choice(tuple(ND_FIXED))
    fixed = bytearray(rng.randbytes(ND_FIXED[mtype]))
    if mtype in (135, 136, 137) and rng.random() < 0.7:
        fixed[4:20] = _addr(rng.choice((A6, A_LL, B6, B_LL, ALL_NODES)))  # the target
    code = 0 if rng.random() < 0.9 else rng.randrange(1, 256)
    message = struct.pack("!BBH", mtype, code, 0) + bytes(fixed) + nd_options(rng)
    _point_at(frame, start, NH_ICMPV6)
    frame[start:] = message
    if rng.random() < 0.85:
        frame[ETH_LEN + 7] = 255
    if mtype in (134, 137) and rng.random() < 0.8:  # routers speak from link-local addresses (RFC 4861 6.1.2)
        router = rng.choice((B_LL, 0xFE80 << 112 | 1, 0xFE80 << 112 | rng.getrandbits(64)))
        frame[ETH_LEN + 8:ETH_LEN + 24] = _addr(router)
    _set_payload_length(frame)
    return fix_checksums(frame)


def icmpv6_fields(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """Another ICMPv6 type and code: errors (which quote the rest as a packet of ours), echo, MLD, ND,
    unknown informational messages."""
    layout = ipv6_layout(frame)
    if layout is None or layout[2] != NH_ICMPV6 or layout[1] - layout[0] < 4:
        return header_bit_flips(rng, frame, corpus)
    start = layout[0]
    frame[start] = rng.choice((1, 2, 3, 4, 100, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 143, 200,
                               rng.randrange(256)))
    frame[start + 1] = rng.choice((0, 0, 0, 1, 2, 3, 4, 5, 6, rng.randrange(256)))
    return fix_checksums(frame)


MUTATIONS6: dict[str, Mutation] = {
    "truncate": truncate, "zero_length": zero_length, "bit_flips": bit_flips,
    "header_bit_flips": header_bit_flips, "random_bytes": random_bytes, "splice": splice, "giant": giant,
    "extension_headers": extension_headers, "fragments": fragments, "payload_length": payload_length,
    "hop_limit": hop_limit, "addresses": addresses, "neighbour_discovery": neighbour_discovery,
    "icmpv6_fields": icmpv6_fields,
}
"""The generic mutations and the IPv6 ones (``fuzz.mutate.mutate(..., table=MUTATIONS6)``)."""
