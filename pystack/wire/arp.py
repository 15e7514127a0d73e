"""ARP packets for IPv4 over Ethernet (RFC 826)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from pystack.wire.errors import WireError

PACKET_LEN = 28
OP_REQUEST = 1
OP_REPLY = 2
HTYPE_ETHERNET = 1
PTYPE_IPV4 = 0x0800

_PACKET = struct.Struct("!HHBBH6sI6sI")


class ArpPacket(NamedTuple):
    op: int
    sender_mac: bytes
    sender_ip: int
    target_mac: bytes
    target_ip: int


def parse(data: bytes | memoryview) -> ArpPacket:
    # Ethernet pads short frames to 60 bytes, so trailing bytes are allowed (RFC 826 has no length field).
    if len(data) < PACKET_LEN:
        raise WireError("arp.truncated")
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _PACKET.unpack_from(data)
    if htype != HTYPE_ETHERNET or ptype != PTYPE_IPV4 or hlen != 6 or plen != 4:
        raise WireError("arp.unsupported")
    if op not in (OP_REQUEST, OP_REPLY):
        raise WireError("arp.bad_op")
    return ArpPacket(op, sha, spa, tha, tpa)


def build(op: int, sender_mac: bytes, sender_ip: int, target_mac: bytes, target_ip: int) -> bytes:
    return _PACKET.pack(HTYPE_ETHERNET, PTYPE_IPV4, 6, 4, op, sender_mac, sender_ip, target_mac, target_ip)
