"""IPv4 headers (RFC 791): parse with validation, build, and split a datagram into fragments."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

from pystack.wire.checksum import fold, internet_checksum, is_valid
from pystack.wire.errors import WireError

MIN_HEADER_LEN = 20
MAX_DATAGRAM = 65535
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF

_HEADER = struct.Struct("!BBHHHBBHII")
_ETH_HEADER = struct.Struct("!6s6sHBBHHHBBHII")
_ETHERTYPE_IPV4 = 0x0800


@dataclass(slots=True)
class IPv4Packet:
    """A parsed datagram (or fragment). ``payload`` is a view limited to ``total_length``."""

    header_len: int
    tos: int
    total_length: int
    ident: int
    flags_offset: int
    ttl: int
    protocol: int
    src: int
    dst: int
    options: bytes
    payload: memoryview

    @property
    def more_fragments(self) -> bool:
        return bool(self.flags_offset & FLAG_MF)

    @property
    def dont_fragment(self) -> bool:
        return bool(self.flags_offset & FLAG_DF)

    @property
    def fragment_offset(self) -> int:
        """Offset of this fragment's payload in bytes (the field counts 8-byte units)."""
        return (self.flags_offset & OFFSET_MASK) << 3

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags_offset & (FLAG_MF | OFFSET_MASK))


def parse(data: bytes | memoryview) -> IPv4Packet:
    """Validate and split an IPv4 datagram. Trailing bytes past ``total_length`` (Ethernet padding) are cut."""
    if len(data) < MIN_HEADER_LEN:
        raise WireError("ipv4.truncated")
    vihl, tos, total, ident, flags_offset, ttl, proto, _csum, src, dst = _HEADER.unpack_from(data)
    if vihl >> 4 != 4:
        raise WireError("ipv4.bad_version")
    ihl = (vihl & 0x0F) * 4
    if ihl < MIN_HEADER_LEN:
        raise WireError("ipv4.bad_header_length")
    if total < ihl:
        raise WireError("ipv4.bad_total_length")
    if total > len(data):
        raise WireError("ipv4.truncated")
    view = memoryview(data)
    if not is_valid(view[:ihl]):
        raise WireError("ipv4.bad_checksum")
    if flags_offset & 0x8000:
        raise WireError("ipv4.reserved_flag")  # RFC 791: the reserved bit must be zero
    return IPv4Packet(
        ihl, tos, total, ident, flags_offset, ttl, proto, src, dst,
        bytes(view[MIN_HEADER_LEN:ihl]) if ihl > MIN_HEADER_LEN else b"", view[ihl:total],
    )


def parse_header_fields(header: bytes) -> IPv4Packet:
    """Fields of a header already validated once (a stored copy), without the length and checksum checks."""
    vihl, tos, total, ident, flags_offset, ttl, proto, _csum, src, dst = _HEADER.unpack_from(header)
    ihl = (vihl & 0x0F) * 4
    return IPv4Packet(ihl, tos, total, ident, flags_offset, ttl, proto, src, dst,
                      bytes(header[MIN_HEADER_LEN:ihl]), memoryview(b""))


def build_header(
    src: int, dst: int, protocol: int, payload_len: int, *, ident: int = 0, ttl: int = 64,
    tos: int = 0, flags_offset: int = 0, options: bytes = b"",
) -> bytes:
    """A header with its checksum filled in. ``options`` must be padded to a multiple of 4 bytes."""
    if len(options) % 4 or len(options) > 40:
        raise ValueError("IPv4 options must be padded to 4 bytes and at most 40 bytes")
    ihl = MIN_HEADER_LEN + len(options)
    total = ihl + payload_len
    if total > MAX_DATAGRAM:
        raise ValueError(f"IPv4 datagram of {total} bytes exceeds 65535")
    if not options:
        return _HEADER.pack(0x45, tos, total, ident, flags_offset, ttl, protocol,
                            header_checksum(tos, total, ident, flags_offset, ttl, protocol, src, dst), src, dst)
    raw = _HEADER.pack(0x40 | ihl >> 2, tos, total, ident, flags_offset, ttl, protocol, 0, src, dst) + options
    csum = internet_checksum(raw)
    return raw[:10] + csum.to_bytes(2, "big") + raw[12:]


def header_checksum(tos: int, total: int, ident: int, flags_offset: int, ttl: int, protocol: int,
                    src: int, dst: int) -> int:
    """The checksum of a 20-byte header (no options), summed from its fields as integers: the RFC 1071
    one's complement sum of its ten 16-bit words without packing them first."""
    return ~fold(0x4500 + tos + total + ident + flags_offset + (ttl << 8) + protocol
                 + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)) & 0xFFFF


def frame_header(dst_mac: bytes, src_mac: bytes, tos: int, payload_len: int, ident: int, flags_offset: int,
                 ttl: int, protocol: int, src: int, dst: int) -> bytes:
    """Ethernet and option-less IPv4 headers in one 34-byte piece: the send path's one pack per datagram."""
    total = MIN_HEADER_LEN + payload_len
    return _ETH_HEADER.pack(dst_mac, src_mac, _ETHERTYPE_IPV4, 0x45, tos, total, ident, flags_offset, ttl, protocol,
                            header_checksum(tos, total, ident, flags_offset, ttl, protocol, src, dst), src, dst)


def build(src: int, dst: int, protocol: int, payload: bytes | memoryview, **kw: Any) -> bytes:
    return build_header(src, dst, protocol, len(payload), **kw) + payload


def fragment(
    src: int, dst: int, protocol: int, payload: bytes | memoryview, mtu: int, *, ident: int,
    ttl: int = 64, tos: int = 0, dont_fragment: bool = False,
) -> list[bytes]:
    """Build one datagram, or several fragments when it does not fit ``mtu`` (RFC 791 section 3.2).

    Every fragment but the last carries a multiple of 8 payload bytes.
    """
    if MIN_HEADER_LEN + len(payload) <= mtu:
        flags = FLAG_DF if dont_fragment else 0
        return [build(src, dst, protocol, payload, ident=ident, ttl=ttl, tos=tos, flags_offset=flags)]
    if dont_fragment:
        raise ValueError("datagram exceeds the MTU and DF is set")
    if MIN_HEADER_LEN + len(payload) > MAX_DATAGRAM:
        raise ValueError(f"IPv4 datagram of {MIN_HEADER_LEN + len(payload)} bytes exceeds 65535")
    chunk = (mtu - MIN_HEADER_LEN) & ~7
    if chunk <= 0:
        raise ValueError(f"MTU {mtu} is too small to fragment into")
    view = memoryview(payload)
    out = []
    for off in range(0, len(view), chunk):
        part = view[off:off + chunk]
        more = FLAG_MF if off + chunk < len(view) else 0
        out.append(build(src, dst, protocol, part, ident=ident, ttl=ttl, tos=tos, flags_offset=more | off >> 3))
    return out


def addr_to_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def int_to_addr(value: int) -> str:
    return str(ipaddress.IPv4Address(value))
