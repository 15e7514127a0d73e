"""Ethernet II frames (IEEE 802.3 with an EtherType, as every IP host sends them)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from pystack.wire.errors import WireError

HEADER_LEN = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6

_HEADER = struct.Struct("!6s6sH")


class EthernetFrame(NamedTuple):
    dst: bytes
    src: bytes
    ethertype: int
    payload: memoryview


def parse(frame: bytes | memoryview) -> EthernetFrame:
    """Split a frame into header fields and payload (a zero-copy view). The FCS is not present on a TAP."""
    return EthernetFrame(*parse_fields(frame))


def parse_fields(frame: bytes | memoryview) -> tuple[bytes, bytes, int, memoryview]:
    """:func:`parse` as a plain tuple (dst, src, ethertype, payload): the receive path's per-frame form."""
    if len(frame) < HEADER_LEN:
        raise WireError("ethernet.truncated")
    dst, src, ethertype = _HEADER.unpack_from(frame)
    if ethertype < 0x0600:
        # An 802.3 length field, not an EtherType: LLC/SNAP frames, which IP hosts do not use.
        raise WireError("ethernet.not_ethernet_ii")
    return dst, src, ethertype, memoryview(frame)[HEADER_LEN:]


def build(dst: bytes, src: bytes, ethertype: int, payload: bytes | memoryview = b"") -> bytes:
    return _HEADER.pack(dst, src, ethertype) + payload


def header(dst: bytes, src: bytes, ethertype: int) -> bytes:
    """Just the 14-byte header, for callers that join it with a payload themselves."""
    return _HEADER.pack(dst, src, ethertype)


def is_multicast(mac: bytes) -> bool:
    """True for group addresses (broadcast included): the I/G bit of the first octet."""
    return bool(mac[0] & 1)


def mac_to_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_from_str(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)
