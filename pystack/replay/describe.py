"""A frame in one line, as tcpdump would print it, for a replay's report of where it diverged.

It reads the headers with struct alone (not pystack.wire's parsers, whose checks a frame being
investigated may fail) and names the field a byte offset falls in, so that "first difference at byte 38"
comes with "TCP sequence number".
"""

from __future__ import annotations

import ipaddress
import struct

_TCP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"), (0x40, "E"), (0x80, "W"))
_IPV4_FIELDS = ((0, "IPv4 version/IHL"), (1, "IPv4 TOS"), (2, "IPv4 total length"), (4, "IPv4 ident"),
                (6, "IPv4 flags/fragment offset"), (8, "IPv4 TTL"), (9, "IPv4 protocol"), (10, "IPv4 header checksum"),
                (12, "IPv4 source"), (16, "IPv4 destination"))
_TCP_FIELDS = ((0, "TCP source port"), (2, "TCP destination port"), (4, "TCP sequence number"),
               (8, "TCP acknowledgment number"), (12, "TCP data offset/flags"), (14, "TCP window"),
               (16, "TCP checksum"), (18, "TCP urgent pointer"))


def describe(frame: bytes | memoryview, ethernet: bool = True) -> str:
    """``frame`` in one line: addresses, ports, flags, sequence numbers, lengths. ``ethernet`` False: a bare
    IP packet (the IP medium, a TUN)."""
    frame = bytes(frame)
    if not ethernet:
        version = frame[0] >> 4 if frame else 0
        return _ip(frame, 0, 0x0800 if version == 4 else 0x86DD if version == 6 else 0)
    if len(frame) < 14:
        return f"a runt of {len(frame)} bytes"
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0806 and len(frame) >= 42:
        op = struct.unpack_from("!H", frame, 20)[0]
        sender, target = _v4(frame[28:32]), _v4(frame[38:42])
        if op == 1:
            return f"ARP request who-has {target} tell {sender}"
        if op == 2:
            return f"ARP reply {sender} is-at {frame[22:28].hex(':')}"
        return f"ARP op {op}"
    return _ip(frame, 14, ethertype)


def _ip(frame: bytes, l3: int, ethertype: int) -> str:
    if ethertype == 0x0800 and len(frame) >= l3 + 20:
        ihl = (frame[l3] & 0x0F) * 4
        total, ident = struct.unpack_from("!HH", frame, l3 + 2)
        src, dst = _v4(frame[l3 + 12:l3 + 16]), _v4(frame[l3 + 16:l3 + 20])
        return _transport(frame, l3 + ihl, l3 + total, frame[l3 + 9], src, dst, f"id {ident}")
    if ethertype == 0x86DD and len(frame) >= l3 + 40:
        plen = struct.unpack_from("!H", frame, l3 + 4)[0]
        src = str(ipaddress.IPv6Address(frame[l3 + 8:l3 + 24]))
        dst = str(ipaddress.IPv6Address(frame[l3 + 24:l3 + 40]))
        return _transport(frame, l3 + 40, l3 + 40 + plen, frame[l3 + 6], src, dst, "IPv6")
    return f"ethertype 0x{ethertype:04x}, {len(frame)} bytes" if l3 else f"{len(frame)} bytes, not IP"


def _v4(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def _transport(frame: bytes, l4: int, end: int, proto: int, src: str, dst: str, note: str) -> str:
    if proto == 6 and len(frame) >= l4 + 20:
        sport, dport, seq, ack, off_flags, win = struct.unpack_from("!HHIIHH", frame, l4)
        flags = "".join(name for bit, name in _TCP_FLAGS if off_flags & bit) or "none"
        data = max(0, min(end, len(frame)) - l4 - (off_flags >> 12) * 4)
        return f"{src}.{sport} > {dst}.{dport}: TCP [{flags}] seq {seq} ack {ack} win {win} length {data} ({note})"
    if proto == 17 and len(frame) >= l4 + 8:
        sport, dport, length = struct.unpack_from("!HHH", frame, l4)
        return f"{src}.{sport} > {dst}.{dport}: UDP length {length - 8} ({note})"
    if proto in (1, 58) and len(frame) >= l4 + 2:
        return f"{src} > {dst}: ICMP{'v6' if proto == 58 else ''} type {frame[l4]} code {frame[l4 + 1]} ({note})"
    return f"{src} > {dst}: protocol {proto} ({note})"


def first_difference(expected: bytes, got: bytes, ethernet: bool = True) -> str:
    """Where two frames first differ: the byte offset and, for IPv4, the header field there."""
    for i, (a, b) in enumerate(zip(expected, got)):
        if a != b:
            return f"first difference at byte {i}{_field(expected, i, 14 if ethernet else 0)}"
    if len(expected) != len(got):
        return f"the same first {min(len(expected), len(got))} bytes, then lengths {len(expected)} and {len(got)}"
    return "the same bytes"


def _field(frame: bytes, offset: int, l3: int) -> str:
    if offset < l3:
        return " (Ethernet header)"
    if len(frame) < l3 + 20 or frame[l3] >> 4 != 4 or (l3 and frame[12:14] != b"\x08\x00"):
        return ""
    ihl = (frame[l3] & 0x0F) * 4
    if offset < l3 + ihl:
        return f" ({_named(_IPV4_FIELDS, offset - l3)})"
    l4 = l3 + ihl
    if frame[l3 + 9] == 6 and len(frame) >= l4 + 20:
        header = (frame[l4 + 12] >> 4) * 4
        if offset < l4 + 20:
            return f" ({_named(_TCP_FIELDS, offset - l4)})"
        if offset < l4 + header:
            return " (TCP options)"
        return f" (TCP payload byte {offset - l4 - header})"
    return ""


def _named(fields: tuple[tuple[int, str], ...], offset: int) -> str:
    name = fields[0][1]
    for start, field in fields:
        if offset >= start:
            name = field
    return name
