"""Mutations of valid Ethernet frames, and the checksum fix-up that carries them past the checksums.

A mutated frame with a broken checksum only ever tests the checksum check. So most mutations here
are followed by :func:`fix_checksums`, which recomputes the IPv4 header checksum and the ICMP, UDP
or TCP checksum (over the pseudo-header) of whatever the frame now says -- over IPv6, the ICMPv6, UDP or
TCP checksum after the extension headers -- so the damage reaches the length checks, option parsers,
reassembly and the TCP state machine behind them. The IPv6 mutations are in :mod:`fuzz.mutate6`.

Written from the RFCs (791, 768, 792, 9293, 1071, 8200, 4443) without pystack's wire code: the fuzzer
judges the parsers, so it must not share their mistakes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

from pystack_lab.reference import ref_checksum, ref_ones_sum

ETH_LEN = 14
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
IPV6_EXTENSIONS = {0: "hop-by-hop", 43: "routing", 44: "fragment", 51: "AH", 60: "destination options"}
"""The extension headers walked to find an IPv6 packet's upper layer (RFC 8200 4, RFC 4302 2.2)."""
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
GIANT_LIMIT = 200_000
"""Largest frame the fuzzer makes (a TAP read buffer is at most 64 KiB; this is beyond any)."""


def ip_layout(frame: bytes | bytearray) -> tuple[int, int, int] | None:
    """(IP header length, end of the datagram within the frame, protocol) for an IPv4 frame whose
    header fits, else None. The end is bounded by the frame, whatever total length claims."""
    if len(frame) < ETH_LEN + 20 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[ETH_LEN] & 0x0F) * 4
    if ihl < 20 or ETH_LEN + ihl > len(frame):
        return None
    total = struct.unpack_from("!H", frame, ETH_LEN + 2)[0]
    end = min(ETH_LEN + max(total, ihl), len(frame))
    return ihl, end, frame[ETH_LEN + 9]


def ipv6_layout(frame: bytes | bytearray) -> tuple[int, int, int, bool] | None:
    """(offset of the upper-layer header in the frame, end of the packet within the frame, Next Header of
    the upper layer, whether the packet is a fragment) for an IPv6 frame whose fixed header fits, else
    None. The walk stops at the first header that does not fit or is not an extension header; the end is
    bounded by the frame, whatever Payload Length claims."""
    if len(frame) < ETH_LEN + 40 or frame[12:14] != b"\x86\xdd":
        return None
    end = min(ETH_LEN + 40 + struct.unpack_from("!H", frame, ETH_LEN + 4)[0], len(frame))
    nh, at, fragment = frame[ETH_LEN + 6], ETH_LEN + 40, False
    for _ in range(64):
        if nh not in IPV6_EXTENSIONS or at + 8 > end:
            break
        if nh == 44:
            fragment = fragment or bool(struct.unpack_from("!H", frame, at + 2)[0] & 0xFFF9)
            size = 8
        else:
            size = (frame[at + 1] + 2) * 4 if nh == 51 else (frame[at + 1] + 1) * 8
        nh, at = frame[at], at + size
    return at, end, nh, fragment


def _fix_checksums6(frame: bytearray) -> bytearray:
    """The ICMPv6, UDP or TCP checksum of an IPv6 frame over RFC 8200 8.1's pseudo-header, unless the
    packet is a fragment (its checksum covers the whole packet)."""
    layout = ipv6_layout(frame)
    if layout is None or layout[3]:
        return frame
    start, end, nh, _fragment = layout
    where = {58: 2, PROTO_UDP: 6, PROTO_TCP: 16}.get(nh)
    if where is None or end - start < where + 2:
        return frame
    struct.pack_into("!H", frame, start + where, 0)
    seg = frame[start:end]
    pseudo = ref_ones_sum(frame[ETH_LEN + 8:ETH_LEN + 40] + struct.pack("!IxxxB", len(seg), nh))
    value = ref_checksum(seg, pseudo)
    if nh == PROTO_UDP and value == 0:
        value = 0xFFFF  # RFC 8200 8.1: a computed zero is sent as all ones (zero is not allowed over IPv6)
    struct.pack_into("!H", frame, start + where, value)
    return frame


def fix_checksums(frame: bytearray) -> bytearray:
    """Recompute the IPv4 header checksum and, for an unfragmented (or first-fragment) ICMP, UDP or
    TCP payload, the transport checksum over what the frame holds; over IPv6, the upper layer's checksum
    of an unfragmented packet. Anything else is left alone."""
    if frame[12:14] == b"\x86\xdd":
        return _fix_checksums6(frame)
    layout = ip_layout(frame)
    if layout is None:
        return frame
    ihl, end, proto = layout
    struct.pack_into("!H", frame, ETH_LEN + 10, 0)
    struct.pack_into("!H", frame, ETH_LEN + 10, ref_checksum(frame[ETH_LEN:ETH_LEN + ihl]))
    flags_offset = struct.unpack_from("!H", frame, ETH_LEN + 6)[0]
    if flags_offset & 0x3FFF:
        return frame  # a fragment: its transport checksum covers the whole datagram
    start = ETH_LEN + ihl
    seg = frame[start:end]
    pseudo = ref_ones_sum(frame[ETH_LEN + 12:ETH_LEN + 20] + struct.pack("!BBH", 0, proto, len(seg)))
    where = {PROTO_ICMP: 2, PROTO_UDP: 6, PROTO_TCP: 16}.get(proto)
    if where is None or len(seg) < where + 2:
        return frame
    struct.pack_into("!H", frame, start + where, 0)
    seg = frame[start:end]
    if proto == PROTO_ICMP:
        value = ref_checksum(seg)
    else:
        value = ref_checksum(seg, pseudo)
        if proto == PROTO_UDP and value == 0:
            value = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    struct.pack_into("!H", frame, start + where, value)
    return frame


# --- the mutations: each takes (rng, frame, corpus) and returns new frame bytes ----------------------


def truncate(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    return frame[:rng.randrange(len(frame) + 1)]


def zero_length(_rng: random.Random, _frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    return bytearray()


def bit_flips(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    """A few random bits flipped, checksums left as they were (what a bad wire does)."""
    for _ in range(rng.randint(1, 8)):
        if not frame:
            break
        bit = rng.randrange(len(frame) * 8)
        frame[bit // 8] ^= 0x80 >> (bit % 8)
    return frame


def header_bit_flips(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    """Bits flipped in the first 80 bytes (the headers), then checksums fixed: wrong *values*."""
    limit = min(len(frame), 80)
    for _ in range(rng.randint(1, 4)):
        if limit <= ETH_LEN:
            break
        bit = rng.randrange(ETH_LEN * 8, limit * 8)
        frame[bit // 8] ^= 0x80 >> (bit % 8)
    return fix_checksums(frame)


def random_bytes(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    for _ in range(rng.randint(1, 6)):
        if len(frame) <= ETH_LEN:
            break
        frame[rng.randrange(ETH_LEN, len(frame))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return fix_checksums(frame)


def bogus_total_length(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    if ip_layout(frame) is None:
        return truncate(rng, frame, _corpus)
    size = len(frame) - ETH_LEN
    value = rng.choice((0, 1, 19, 20, 21, size - 1, size + 1, 0xFFFF, rng.randrange(0x10000)))
    struct.pack_into("!H", frame, ETH_LEN + 2, max(0, min(value, 0xFFFF)))
    return fix_checksums(frame)


def bogus_header_length(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    if ip_layout(frame) is None:
        return truncate(rng, frame, _corpus)
    frame[ETH_LEN] = 0x40 | rng.randrange(16)
    return fix_checksums(frame)


IPV4_OPTIONS: tuple[bytes, ...] = (
    b"\x01", b"\x00", b"\x01\x01\x01\x00",
    b"\x07\x07\x04" + bytes(4),  # record route, room for one address
    b"\x07\x27\x04" + bytes(36),  # record route, the largest
    b"\x44\x0c\x05\x00" + bytes(8),  # timestamp
    b"\x83\x07\x04\xc0\x00\x02\x01",  # loose source route via 192.0.2.1
    b"\x89\x07\x04\xc0\x00\x02\x63",  # strict source route
    b"\x94\x04\x00\x00",  # router alert
    b"\x07\x00", b"\x07\x01", b"\x07\xff", b"\x44\x02", b"\x83\x03\x04",  # impossible lengths
    b"\x82\x0b" + bytes(9),  # security (RFC 1108)
)


def ipv4_options(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    """Insert IPv4 options (valid, unknown and with impossible lengths); IHL and total length follow."""
    layout = ip_layout(frame)
    if layout is None:
        return truncate(rng, frame, _corpus)
    ihl, end, _proto = layout
    opts = b"".join(rng.choice(IPV4_OPTIONS) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.3:
        opts = rng.randbytes(rng.randint(1, 40))
    opts = opts[:40 - (ihl - 20)]
    opts += b"\0" * (-len(opts) % 4)
    new_ihl = ihl + len(opts)
    if new_ihl > 60:
        return frame
    start = ETH_LEN + ihl
    frame[start:start] = opts
    frame[ETH_LEN] = 0x40 | new_ihl // 4
    total = struct.unpack_from("!H", frame, ETH_LEN + 2)[0]
    struct.pack_into("!H", frame, ETH_LEN + 2, min(total + len(opts), 0xFFFF))
    return fix_checksums(frame)


TCP_OPTIONS: tuple[bytes, ...] = (
    b"\x02\x04\x05\xb4", b"\x02\x04\x00\x00", b"\x02\x04\xff\xff", b"\x02\x03\x05", b"\x02\x05\x05\xb4\x00",
    b"\x03\x03\x0e", b"\x03\x03\xff", b"\x03\x02", b"\x03\x04\x07\x00",
    b"\x04\x02", b"\x04\x03\x00", b"\x04\x00",
    b"\x08\x0a" + bytes(8), b"\x08\x0a" + b"\xff" * 8, b"\x08\x09" + bytes(7), b"\x08\x0b" + bytes(9),
    b"\x05\x0a" + bytes(8), b"\x05\x12" + bytes(16), b"\x05\x22" + bytes(32), b"\x05\x02", b"\x05\x09" + bytes(7),
    b"\x05\x0b" + bytes(9), b"\x05\xff",
    b"\x01", b"\x00", b"\x1e\x02", b"\xfe\x04\xf9\x89", b"\x22\x12" + bytes(16),  # MPTCP, experimental, TFO
    b"\x02", b"\x08", b"\x05", b"\x1d\x00", b"\x1d\x01", b"\x1d\x28",  # a kind with no room for a length
)


def tcp_options(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    """Replace a TCP header's options with a random list, often one that overruns the header (the
    data offset may claim fewer bytes than the options need, or more than the segment holds)."""
    layout = ip_layout(frame)
    if layout is None or layout[2] != PROTO_TCP:
        return ipv4_options(rng, frame, _corpus)
    ihl, end, _proto = layout
    start = ETH_LEN + ihl
    if end - start < 20:
        return truncate(rng, frame, _corpus)
    old = (frame[start + 12] >> 4) * 4
    opts = b"".join(rng.choice(TCP_OPTIONS) for _ in range(rng.randint(1, 6)))
    if rng.random() < 0.2:
        opts = rng.randbytes(rng.randint(1, 44))
    if rng.random() < 0.5:
        opts += b"\0" * (-len(opts) % 4)
    opts = opts[:44]
    frame[start + 20:start + max(old, 20)] = opts
    hlen = 20 + len(opts)
    offset = rng.choice((hlen // 4, (hlen + 3) // 4, rng.randrange(16)))
    frame[start + 12] = (min(offset, 15) << 4) | (frame[start + 12] & 0x0F)
    total = struct.unpack_from("!H", frame, ETH_LEN + 2)[0] + len(opts) - max(old - 20, 0)
    struct.pack_into("!H", frame, ETH_LEN + 2, max(0, min(total, 0xFFFF)))
    return fix_checksums(frame)


def bogus_udp_length(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    layout = ip_layout(frame)
    if layout is None or layout[2] != PROTO_UDP or layout[1] - ETH_LEN - layout[0] < 8:
        return bogus_total_length(rng, frame, _corpus)
    start = ETH_LEN + layout[0]
    struct.pack_into("!H", frame, start + 4, rng.choice((0, 7, 8, 9, 0xFFFF, rng.randrange(0x10000))))
    return fix_checksums(frame)


def fragment_fields(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    """Random MF/DF/offset (sometimes the reserved bit): bogus fragments of real datagrams."""
    if ip_layout(frame) is None:
        return truncate(rng, frame, _corpus)
    flags = rng.choice((0, 0x2000, 0x4000, 0x6000, 0x8000))
    offset = rng.choice((0, 1, 2, 185, 0x1FFF, rng.randrange(0x2000)))
    struct.pack_into("!H", frame, ETH_LEN + 6, flags | offset)
    return fix_checksums(frame)


def icmp_fields(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    """Another ICMP type and code, often an error that quotes the rest as if it were a header."""
    layout = ip_layout(frame)
    if layout is None or layout[2] != PROTO_ICMP or layout[1] - ETH_LEN - layout[0] < 4:
        return header_bit_flips(rng, frame, _corpus)
    start = ETH_LEN + layout[0]
    frame[start] = rng.choice((0, 3, 4, 5, 8, 11, 12, 13, 17, rng.randrange(256)))
    frame[start + 1] = rng.choice((0, 1, 2, 3, 4, 13, rng.randrange(256)))
    return fix_checksums(frame)


def arp_fields(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    if frame[12:14] != b"\x08\x06" or len(frame) < ETH_LEN + 8:
        return random_bytes(rng, frame, _corpus)
    where = rng.randrange(ETH_LEN, min(len(frame), ETH_LEN + 28))
    frame[where] = rng.choice((0, 1, 2, 0xFF, rng.randrange(256)))
    return frame


def splice(rng: random.Random, frame: bytearray, corpus: Sequence[bytes]) -> bytearray:
    """The head of this frame and the tail of another, lengths fixed up as they come."""
    other = rng.choice(corpus)
    cut = rng.randrange(len(frame) + 1)
    return fix_checksums(frame[:cut] + other[rng.randrange(len(other) + 1):])


def giant(rng: random.Random, frame: bytearray, _corpus: Sequence[bytes]) -> bytearray:
    """A frame far beyond the MTU: padding after the datagram, or a datagram that claims 64 KiB."""
    size = rng.choice((1515, 9000, 65535, 65536 + 14, GIANT_LIMIT))
    frame += rng.randbytes(max(0, size - len(frame))) if rng.random() < 0.5 else bytes(max(0, size - len(frame)))
    if ip_layout(frame) is not None and rng.random() < 0.5:
        struct.pack_into("!H", frame, ETH_LEN + 2, min(len(frame) - ETH_LEN, 0xFFFF))
        struct.pack_into("!H", frame, ETH_LEN + 6, 0)
    elif ipv6_layout(frame) is not None and rng.random() < 0.5:
        struct.pack_into("!H", frame, ETH_LEN + 4, min(len(frame) - ETH_LEN - 40, 0xFFFF))
    return fix_checksums(frame)


Mutation = Callable[[random.Random, bytearray, Sequence[bytes]], bytearray]
MUTATIONS: dict[str, Mutation] = {
    "truncate": truncate, "zero_length": zero_length, "bit_flips": bit_flips,
    "header_bit_flips": header_bit_flips, "random_bytes": random_bytes,
    "bogus_total_length": bogus_total_length, "bogus_header_length": bogus_header_length,
    "ipv4_options": ipv4_options, "tcp_options": tcp_options, "bogus_udp_length": bogus_udp_length,
    "fragment_fields": fragment_fields, "icmp_fields": icmp_fields, "arp_fields": arp_fields,
    "splice": splice, "giant": giant,
}
WEIGHTS = {"zero_length": 1, "giant": 2}  # the rest weigh 10


def mutate(rng: random.Random, frame: bytes, corpus: Sequence[bytes], rounds: int | None = None,
           table: dict[str, Mutation] | None = None) -> tuple[bytes, list[str]]:
    """One to three mutations of ``frame`` drawn from ``table`` (:data:`MUTATIONS` unless given); returns
    the result and the names applied (for messages)."""
    table = MUTATIONS if table is None else table
    names = list(table)
    weights = [WEIGHTS.get(n, 10) for n in names]
    out = bytearray(frame)
    applied = []
    for _ in range(rounds or rng.choice((1, 1, 1, 2, 3))):
        name = rng.choices(names, weights)[0]
        out = table[name](rng, out, corpus)
        applied.append(name)
    return bytes(out[:GIANT_LIMIT]), applied


def forge_tcp(dst_mac: bytes, src_mac: bytes, src_ip: int, dst_ip: int, sport: int, dport: int, seq: int,
              ack: int, flags: int, window: int = 65535, payload: bytes = b"", options: bytes = b"",
              ident: int = 0) -> bytes:
    """A well-formed Ethernet+IPv4+TCP frame with right checksums: what an off-path attacker sends."""
    tcp = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                                (20 + len(options)) // 4 << 4, flags, window, 0, 0) + options + payload)
    pseudo = struct.pack("!IIBBH", src_ip, dst_ip, 0, PROTO_TCP, len(tcp))
    struct.pack_into("!H", tcp, 16, ref_checksum(pseudo + tcp))
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), ident, 0x4000, 64, PROTO_TCP, 0, src_ip, dst_ip))
    struct.pack_into("!H", ip, 10, ref_checksum(ip))
    return dst_mac + src_mac + b"\x08\x00" + bytes(ip) + bytes(tcp)
