"""ICMPv4 messages (RFC 792): echo, destination unreachable, time exceeded."""

from __future__ import annotations

import struct
from typing import NamedTuple

from pystack.wire.checksum import incremental_update, internet_checksum, is_valid
from pystack.wire.errors import WireError

HEADER_LEN = 8
TYPE_ECHO_REPLY = 0
TYPE_DEST_UNREACHABLE = 3
TYPE_ECHO_REQUEST = 8
TYPE_TIME_EXCEEDED = 11
TYPE_PARAMETER_PROBLEM = 12

CODE_NET_UNREACHABLE = 0
CODE_HOST_UNREACHABLE = 1
CODE_PROTOCOL_UNREACHABLE = 2
CODE_PORT_UNREACHABLE = 3
CODE_FRAGMENTATION_NEEDED = 4

ERROR_TYPES = frozenset({TYPE_DEST_UNREACHABLE, TYPE_TIME_EXCEEDED, TYPE_PARAMETER_PROBLEM})

_HEADER = struct.Struct("!BBHI")


class IcmpMessage(NamedTuple):
    type: int
    code: int
    rest: int
    """The 4 bytes after the checksum: identifier+sequence for echo, unused/MTU for errors."""
    body: memoryview


def parse(data: bytes | memoryview) -> IcmpMessage:
    if len(data) < HEADER_LEN:
        raise WireError("icmp.truncated")
    if not is_valid(data):
        raise WireError("icmp.bad_checksum")
    mtype, code, _csum, rest = _HEADER.unpack_from(data)
    return IcmpMessage(mtype, code, rest, memoryview(data)[HEADER_LEN:])


def build(mtype: int, code: int, rest: int, body: bytes | memoryview = b"") -> bytes:
    raw = _HEADER.pack(mtype, code, 0, rest) + body
    csum = internet_checksum(raw)
    return raw[:2] + csum.to_bytes(2, "big") + raw[4:]


def echo_reply_from_request(request: bytes | memoryview) -> bytes:
    """Turn a verified echo request (whole ICMP message) into its reply by changing type and checksum.

    Only the type byte changes (8 -> 0), so the checksum is updated incrementally (RFC 1624 eq. 3).
    """
    code = request[1]
    checksum = incremental_update((request[2] << 8) | request[3], 0x0800 | code, code)
    if checksum == 0:
        # +0 is right unless every other word is zero, where only 0xFFFF verifies: recompute (1 in 65536).
        return build(TYPE_ECHO_REPLY, code, int.from_bytes(request[4:8], "big"), request[8:])
    return b"\x00" + bytes(request[1:2]) + checksum.to_bytes(2, "big") + bytes(request[4:])


ERROR_DATAGRAM_LEN = 576
"""The size an ICMP error is held to, its quote filling what is left (RFC 1812 4.3.2.3; Linux's
``__icmp_send`` too): every IPv4 host takes 576-byte datagrams (RFC 791), and a longer quote lets the
sender's error queue give back the original payload."""


def error_body(header: bytes | memoryview, payload: bytes | memoryview, mtu: int = ERROR_DATAGRAM_LEN) -> bytes:
    """What an ICMP error quotes: the offending IP header and as much of its payload as keeps the error
    within 576 bytes and ``mtu`` (at least the 8 bytes RFC 792 and RFC 1122 3.2.2 ask for)."""
    room = min(mtu, ERROR_DATAGRAM_LEN) - 20 - HEADER_LEN - len(header)
    return bytes(header) + bytes(payload[: max(room, 8)])
