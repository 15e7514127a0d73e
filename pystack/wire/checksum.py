"""The Internet checksum (RFC 1071), computed with big-integer arithmetic.

The one's complement sum of 16-bit big-endian words is congruent to the whole buffer read as one
big-endian integer modulo 0xFFFF (because 2**16 == 1 mod 0xFFFF). ``int.from_bytes`` and ``%`` run
in C, so this is much faster in CPython than a loop over words, and it needs no copy.
The remainder 0 is mapped back to 0xFFFF for non-zero input, so results equal RFC 1071's bit for bit.
"""

from __future__ import annotations

_from_bytes = int.from_bytes


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """16-bit one's complement sum of ``data`` (odd length padded with a zero byte) plus ``initial``."""
    value = _from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    value += initial
    folded = value % 0xFFFF
    return 0xFFFF if folded == 0 and value else folded


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The checksum field value for ``data`` whose checksum field is zero (RFC 1071)."""
    return (~ones_sum(data, initial)) & 0xFFFF


def is_valid(data: bytes | bytearray | memoryview, initial: int = 0) -> bool:
    """True when ``data`` (checksum field included) sums to zero, i.e. the checksum verifies."""
    return ones_sum(data, initial) == 0xFFFF


def pseudo_header_sum(src: int, dst: int, protocol: int, length: int) -> int:
    """Sum of the IPv4 pseudo-header (RFC 768, RFC 9293 section 3.1) with addresses as integers."""
    return (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + protocol + length
