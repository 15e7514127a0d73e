"""Hypothesis strategies for frames: every header field drawn from its whole range, with a bias to the
edges (zero, one, the maximum, the value that makes a length exactly right), and checksums made
valid unless the draw says otherwise, so the search goes past the checksum checks.

Addresses are mostly the stack under test's (192.0.2.2, its MAC) so the frames are not simply
"not for us"; the rest of the time anything.
"""

from __future__ import annotations

import random
import struct

from hypothesis import strategies as st

from pystack_lab.reference import ref_checksum

from .corpus import A6, A_IP, A_LL, A_MAC, B6, B_IP, B_MAC
from .mutate import IPV4_OPTIONS, TCP_OPTIONS, fix_checksums
from .mutate6 import DESTINATIONS, ND_FIXED, OPTIONS6, SOURCES, nd_options

u8 = st.integers(0, 0xFF)
u16 = st.one_of(st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFF]), st.integers(0, 0xFFFF))
u32 = st.one_of(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]), st.integers(0, 0xFFFFFFFF))
ports = st.one_of(st.sampled_from([0, 7, 9, 67, 68, 80, 53, 65535]), st.integers(1, 0xFFFF))
our_ip = st.sampled_from([A_IP, 0xC00002FF, 0xFFFFFFFF, 0xE0000001]) | st.integers(0, 0xFFFFFFFF)
peer_ip = st.sampled_from([B_IP, 0, 0x7F000001, 0xC0000263]) | st.integers(0, 0xFFFFFFFF)
payloads = st.binary(max_size=300) | st.builds(bytes, st.integers(0, 3000))


@st.composite
def tcp_segments(draw: st.DrawFn, src: int, dst: int) -> bytes:
    flags = draw(st.sampled_from([0x02, 0x10, 0x12, 0x04, 0x14, 0x11, 0x01, 0x00, 0x29, 0x3F, 0x03, 0x06]) | u8)
    opts = b"".join(draw(st.lists(st.sampled_from(TCP_OPTIONS) | st.binary(min_size=1, max_size=12), max_size=6)))
    if draw(st.booleans()):
        opts += b"\0" * (-len(opts) % 4)
    opts = opts[:40]
    hlen = 20 + len(opts)
    offset = draw(st.sampled_from([hlen // 4, (hlen + 3) // 4]) | st.integers(0, 15))
    body = draw(payloads)
    head = struct.pack("!HHIIBBHHH", draw(ports), draw(ports), draw(u32), draw(u32), offset << 4, flags,
                       draw(u16), 0, draw(u16))
    seg = bytearray(head + opts + body)
    if draw(st.integers(0, 9)):  # mostly a right checksum
        pseudo = struct.pack("!IIBBH", src, dst, 0, 6, len(seg))
        struct.pack_into("!H", seg, 16, ref_checksum(pseudo + seg))
    return bytes(seg)


@st.composite
def udp_datagrams(draw: st.DrawFn, src: int, dst: int) -> bytes:
    body = draw(payloads)
    length = draw(st.just(8 + len(body)) | u16)
    seg = bytearray(struct.pack("!HHHH", draw(ports), draw(ports), length, 0) + body)
    if draw(st.integers(0, 9)):
        pseudo = struct.pack("!IIBBH", src, dst, 0, 17, len(seg))
        struct.pack_into("!H", seg, 6, ref_checksum(pseudo + seg) or 0xFFFF)
    return bytes(seg)


@st.composite
def icmp_messages(draw: st.DrawFn, quote: bytes = b"") -> bytes:
    mtype = draw(st.sampled_from([0, 3, 8, 11, 12, 4, 5, 13]) | u8)
    code = draw(st.sampled_from([0, 1, 2, 3, 4]) | u8)
    body = quote if quote and mtype in (3, 11, 12) and draw(st.booleans()) else draw(payloads)
    msg = bytearray(struct.pack("!BBHI", mtype, code, 0, draw(u32)) + body)
    if draw(st.integers(0, 9)):
        struct.pack_into("!H", msg, 2, ref_checksum(msg))
    return bytes(msg)


@st.composite
def ipv4_datagrams(draw: st.DrawFn) -> bytes:
    src, dst = draw(peer_ip), draw(our_ip)
    proto = draw(st.sampled_from([1, 6, 17]) | u8)
    if proto == 6:
        payload = draw(tcp_segments(src, dst))
    elif proto == 17:
        payload = draw(udp_datagrams(src, dst))
    elif proto == 1:
        inner_src, inner_dst = dst, src  # an error about something "we" sent
        inner = draw(tcp_segments(inner_src, inner_dst) | udp_datagrams(inner_src, inner_dst))
        quote = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(inner), 1, 0, 64, draw(st.sampled_from([6, 17])), 0,
                            inner_src, inner_dst) + inner[:draw(st.sampled_from([8, 20, 60]) | st.integers(0, 80))]
        payload = draw(icmp_messages(quote))
    else:
        payload = draw(payloads)
    opts = b"".join(draw(st.lists(st.sampled_from(IPV4_OPTIONS), max_size=3)))
    opts = opts[:40]
    opts += b"\0" * (-len(opts) % 4)
    ihl = draw(st.just((20 + len(opts)) // 4) | st.integers(0, 15))
    total = draw(st.just(20 + len(opts) + len(payload)) | u16)
    flags_offset = draw(st.just(0) | st.sampled_from([0x2000, 0x4000, 0x8000, 0x2001, 0x00B9, 0x1FFF]) | u16)
    version = draw(st.just(4) | st.integers(0, 15))
    head = struct.pack("!BBHHHBBHII", version << 4 | ihl, draw(u8), total, draw(u16), flags_offset, draw(u8),
                       proto, 0, src, dst)
    dgram = bytearray(head + opts)
    if draw(st.integers(0, 9)):
        struct.pack_into("!H", dgram, 10, ref_checksum(dgram))
    return bytes(dgram + payload)


@st.composite
def arp_packets(draw: st.DrawFn) -> bytes:
    htype = draw(st.just(1) | u16)
    ptype = draw(st.just(0x0800) | u16)
    hlen = draw(st.just(6) | u8)
    plen = draw(st.just(4) | u8)
    op = draw(st.sampled_from([1, 2]) | u16)
    sha = draw(st.sampled_from([B_MAC, A_MAC, b"\xff" * 6, bytes(6)]) | st.binary(min_size=6, max_size=6))
    spa = draw(peer_ip | st.just(A_IP))
    tha = draw(st.sampled_from([bytes(6), A_MAC]) | st.binary(min_size=6, max_size=6))
    tpa = draw(our_ip)
    body = struct.pack("!HHBBH6sI6sI", htype, ptype, hlen, plen, op, sha, spa, tha, tpa)
    cut = draw(st.just(len(body)) | st.integers(0, len(body)))
    return body[:cut] + draw(st.binary(max_size=20))


@st.composite
def ethernet_frames(draw: st.DrawFn) -> bytes:
    """A whole frame: Ethernet header (mostly to us, from the peer) and an IPv4, ARP or random payload."""
    dst = draw(st.sampled_from([A_MAC, b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x01"]) | st.binary(min_size=6, max_size=6))
    src = draw(st.just(B_MAC) | st.binary(min_size=6, max_size=6))
    kind = draw(st.sampled_from(["ipv4", "ipv4", "ipv4", "arp", "other"]))
    if kind == "ipv4":
        ethertype, payload = 0x0800, draw(ipv4_datagrams())
    elif kind == "arp":
        ethertype, payload = 0x0806, draw(arp_packets())
    else:
        ethertype, payload = draw(st.sampled_from([0x86DD, 0x0000, 0x05FF, 0x0600, 0x8100]) | u16), draw(payloads)
    frame = dst + src + struct.pack("!H", ethertype) + payload
    if draw(st.integers(0, 19)) == 0:
        frame = frame[:draw(st.integers(0, len(frame)))]
    return frame


def fixed(frame: bytes) -> bytes:
    """``frame`` with its checksums recomputed (see :func:`fuzz.mutate.fix_checksums`)."""
    return bytes(fix_checksums(bytearray(frame)))


# --- IPv6 (RFC 8200, RFC 4443, RFC 4861, RFC 3810) ----------------------------------------------------


@st.composite
def extension_header(draw: st.DrawFn, nh: int) -> tuple[int, bytes]:
    """One extension header that names ``nh`` next: (its own Next Header value, its bytes)."""
    kind = draw(st.sampled_from([0, 60, 60, 43, 44, 51, 50, 135, 253]))
    if kind in (0, 60):
        body = b"".join(draw(st.lists(st.sampled_from(OPTIONS6) | st.binary(min_size=1, max_size=10), max_size=5)))
        if draw(st.booleans()):
            body += b"\0" * (-(2 + len(body)) % 8)
        length = draw(st.just(max(0, (2 + len(body) + 7) // 8 - 1)) | u8)
        return kind, bytes((nh, length)) + body
    if kind == 43:
        count = draw(st.integers(0, 4))
        return kind, bytes((nh, 2 * count, draw(st.sampled_from([0, 2, 3, 4]) | u8), draw(st.integers(0, 5) | u8))) \
            + bytes(4) + draw(st.binary(min_size=16 * count, max_size=16 * count))
    if kind == 44:
        off_m = draw(st.sampled_from([0, 1, 8, 9, 0xFFF8, 0xFFF9]) | u16)
        return kind, struct.pack("!BBHI", nh, draw(st.just(0) | u8), off_m, draw(st.sampled_from([1, 2]) | u32))
    if kind == 51:
        return kind, bytes((nh, draw(st.just(4) | u8))) + bytes(22)
    return kind, bytes((nh, 0)) + bytes(6)


@st.composite
def icmpv6_messages(draw: st.DrawFn) -> bytes:
    """ICMPv6 without its checksum (the frame's fix-up makes it): echo, errors quoting a packet of ours,
    MLD, and ND messages with their options."""
    mtype = draw(st.sampled_from([128, 129, 1, 2, 3, 4, 130, 143, 133, 134, 135, 136, 137]) | u8)
    code = draw(st.just(0) | u8)
    if mtype in ND_FIXED:
        fixed = draw(st.binary(min_size=ND_FIXED[mtype], max_size=ND_FIXED[mtype]))
        if mtype in (135, 136, 137) and draw(st.booleans()):
            fixed = fixed[:4] + draw(st.sampled_from([A6, B6, A_LL])).to_bytes(16, "big") + fixed[20:]
        rng = random.Random(draw(st.integers(0, 2**32)))
        return struct.pack("!BBH", mtype, code, 0) + fixed + nd_options(rng)
    if mtype in (1, 2, 3, 4):
        quoted = struct.pack("!IHBB16s16s", 0x60000000, 8, 17, 64, A6.to_bytes(16, "big"), B6.to_bytes(16, "big"))
        quoted += struct.pack("!HHHH", 7, draw(ports), 8, 0)
        return struct.pack("!BBHI", mtype, code, 0, draw(u32)) + quoted[:draw(st.integers(0, len(quoted)))]
    return struct.pack("!BBHI", mtype, code, 0, draw(u32)) + draw(payloads)


@st.composite
def ipv6_frames(draw: st.DrawFn) -> bytes:
    """A whole frame of IPv6: addresses mostly ours and the peer's (or the groups we joined), a chain of
    extension headers, ICMPv6, TCP, UDP or anything, checksums mostly right, hop limit mostly 255 or 64."""
    src = draw(st.sampled_from(SOURCES) | st.integers(0, 2**128 - 1))
    dst = draw(st.sampled_from(DESTINATIONS) | st.integers(0, 2**128 - 1))
    upper = draw(st.sampled_from([58, 58, 58, 6, 17, 59]) | u8)
    if upper == 58:
        payload = draw(icmpv6_messages())
    elif upper in (6, 17):
        header = 20 if upper == 6 else 8
        payload = draw(st.binary(min_size=header, max_size=header)) + draw(payloads)
        if upper == 6:
            payload = payload[:12] + bytes(((draw(st.just(5) | st.integers(0, 15))) << 4,)) + payload[13:]
    else:
        payload = draw(payloads)
    nh, headers = upper, b""
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3, 10]))):
        nh, header = draw(extension_header(nh))
        headers = header + headers
    body = headers + payload
    length = draw(st.just(len(body)) | u16)
    version = draw(st.just(6) | st.integers(0, 15))
    hop_limit = draw(st.sampled_from([255, 64, 1]) | u8)
    packet = struct.pack("!IHBB", version << 28 | draw(st.integers(0, 2**28 - 1)), length, nh, hop_limit) \
        + src.to_bytes(16, "big") + dst.to_bytes(16, "big") + body
    group_mac = b"\x33\x33" + dst.to_bytes(16, "big")[12:]
    mac = draw(st.sampled_from([A_MAC, group_mac, group_mac]) | st.binary(min_size=6, max_size=6))
    frame = mac + draw(st.just(B_MAC) | st.binary(min_size=6, max_size=6)) + b"\x86\xdd" + packet
    if draw(st.integers(0, 9)):
        frame = fixed(frame)
    if draw(st.integers(0, 19)) == 0:
        frame = frame[:draw(st.integers(0, len(frame)))]
    return frame
