"""UDP datagrams (RFC 768) with the IPv4 pseudo-header checksum."""

from __future__ import annotations

import struct
from typing import NamedTuple

from pystack.wire.checksum import internet_checksum, ones_sum, pseudo_header_sum
from pystack.wire.errors import WireError

HEADER_LEN = 8
PROTO_UDP = 17

_HEADER = struct.Struct("!HHHH")


class UdpDatagram(NamedTuple):
    src_port: int
    dst_port: int
    payload: memoryview


def parse(data: bytes | memoryview, src: int, dst: int, verify_checksum: bool = True) -> UdpDatagram:
    """Validate length and checksum (a zero checksum means none was sent, RFC 768)."""
    if len(data) < HEADER_LEN:
        raise WireError("udp.truncated")
    sport, dport, length, csum = _HEADER.unpack_from(data)
    if length < HEADER_LEN or length > len(data):
        raise WireError("udp.bad_length")
    view = memoryview(data)[:length]
    if csum and verify_checksum and ones_sum(view, pseudo_header_sum(src, dst, PROTO_UDP, length)) != 0xFFFF:
        raise WireError("udp.bad_checksum")
    if dport == 0:
        raise WireError("udp.port_zero")
    return UdpDatagram(sport, dport, view[HEADER_LEN:])


def build(src: int, dst: int, src_port: int, dst_port: int, payload: bytes | memoryview) -> bytes:
    length = HEADER_LEN + len(payload)
    raw = _HEADER.pack(src_port, dst_port, length, 0) + payload
    csum = internet_checksum(raw, pseudo_header_sum(src, dst, PROTO_UDP, length)) or 0xFFFF  # RFC 768
    return raw[:6] + csum.to_bytes(2, "big") + raw[8:]
