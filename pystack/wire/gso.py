"""Generic segmentation offload frames: one TCP "super-frame" (over IPv4 or IPv6) standing for many
MTU-sized segments.

With offload on, TCP hands the link segments of up to 64 KiB and the kernel cuts them into ``gso_size``
pieces (as a NIC's TSO would). :class:`GsoFrame` is such a frame: ordinary ``bytes`` (so every
consumer of frames works unchanged) carrying its ``gso_size``. :func:`segment` does the cutting in
software, exactly as the kernel does, for links and captures that need real wire frames.
"""

from __future__ import annotations

import struct

from pystack.wire.checksum import internet_checksum, pseudo_header_sum

_ETH = 14
_IPV6_HEADER = 40


class GsoFrame(bytes):
    """An Ethernet+IPv4+TCP or Ethernet+IPv6+TCP frame (no IPv6 extension headers) whose TCP payload is to
    be cut into ``gso_size`` pieces."""

    gso_size: int

    def __new__(cls, data: bytes, gso_size: int) -> GsoFrame:
        obj = super().__new__(cls, data)
        obj.gso_size = gso_size
        return obj


def is_ipv6(frame: bytes | memoryview, link_len: int = _ETH) -> bool:
    """``link_len``: the bytes of link header before the IP header, 14 (Ethernet) or 0 (the IP medium's
    bare packets, pystack.medium), as in every function here."""
    if not link_len:
        return frame[0] >> 4 == 6
    return frame[12] == 0x86 and frame[13] == 0xDD


def header_lengths(frame: bytes | memoryview, link_len: int = _ETH) -> tuple[int, int]:
    """(IP header length, TCP header length) of an Ethernet+IPv4+TCP or Ethernet+IPv6+TCP frame."""
    ihl = _IPV6_HEADER if is_ipv6(frame, link_len) else (frame[link_len] & 0x0F) * 4
    thl = (frame[link_len + ihl + 12] >> 4) * 4
    return ihl, thl


def addresses(frame: bytes | memoryview, link_len: int = _ETH) -> tuple[int, int]:
    """(source, destination) of the frame's IPv4 or IPv6 header, as integers."""
    at, size = (link_len + 8, 16) if is_ipv6(frame, link_len) else (link_len + 12, 4)
    return int.from_bytes(frame[at:at + size], "big"), int.from_bytes(frame[at + size:at + 2 * size], "big")


def segment(frame: bytes, gso_size: int, link_len: int = _ETH) -> list[bytes]:
    """Cut a TCP super-frame into wire segments, as the kernel's TSO/GSO does.

    Each piece gets the IPv4 total length, ident (incremented) and checksum (or the IPv6 payload length),
    the sequence number moved on, FIN and PSH only on the last piece, CWR only on the first, and its own
    TCP checksum (the IPv4 pseudo-header sum with 128-bit addresses is IPv6's, mod 0xFFFF).
    """
    ihl, thl = header_lengths(frame, link_len)
    hdr_end = link_len + ihl + thl
    payload = memoryview(frame)[hdr_end:]
    if len(payload) <= gso_size:
        return [bytes(frame)]
    eth = frame[:link_len]
    ip = bytearray(frame[link_len:link_len + ihl])
    tcp = bytearray(frame[link_len + ihl:hdr_end])
    v6 = is_ipv6(frame, link_len)
    ident = 0 if v6 else struct.unpack_from("!H", ip, 4)[0]
    seq = struct.unpack_from("!I", tcp, 4)[0]
    flags = tcp[13]
    src, dst = addresses(frame, link_len)
    out = []
    count = (len(payload) + gso_size - 1) // gso_size
    for i in range(count):
        piece = payload[i * gso_size:(i + 1) * gso_size]
        last = i == count - 1
        if v6:
            struct.pack_into("!H", ip, 4, thl + len(piece))
        else:
            struct.pack_into("!HH", ip, 2, ihl + thl + len(piece), (ident + i) & 0xFFFF)
            struct.pack_into("!H", ip, 10, 0)
            struct.pack_into("!H", ip, 10, internet_checksum(ip))
        struct.pack_into("!I", tcp, 4, (seq + i * gso_size) & 0xFFFFFFFF)
        tcp[13] = flags if last else flags & ~0x09  # FIN (0x01) and PSH (0x08) only at the end
        if i:
            tcp[13] &= ~0x80  # CWR only on the first
        struct.pack_into("!H", tcp, 16, 0)
        seg = bytes(tcp) + piece
        struct.pack_into("!H", tcp, 16, internet_checksum(seg, pseudo_header_sum(src, dst, 6, len(seg))))
        out.append(eth + bytes(ip) + bytes(tcp) + piece)
    return out
