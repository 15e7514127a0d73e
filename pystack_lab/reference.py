"""The reference Internet checksum the tests judge pystack's against (RFC 1071 section 4.1).

Written the obvious way (a sum of 16-bit words, an odd byte padded with zero, the carries folded back
in) so that it shares nothing with pystack's big-integer remainder in ``pystack.wire.checksum``.
"""

from __future__ import annotations

import struct


def ref_ones_sum(data: bytes | bytearray, initial: int = 0) -> int:
    """The one's complement sum of ``data``'s 16-bit big-endian words plus ``initial``, folded to 16 bits."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ref_checksum(data: bytes | bytearray, initial: int = 0) -> int:
    """The checksum field for ``data`` whose own checksum field is zero."""
    return ~ref_ones_sum(data, initial) & 0xFFFF
