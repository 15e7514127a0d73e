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


def fold(total: int) -> int:
    """A sum of 16-bit words (below 2**32) folded into 16 bits by end-around carry (RFC 1071 4.1): the
    one home of the carry fold for checksums summed from fields as integers rather than from bytes."""
    total = (total & 0xFFFF) + (total >> 16)
    return (total & 0xFFFF) + (total >> 16)


def incremental_update(checksum: int, old_word: int, new_word: int) -> int:
    """The checksum field after one 16-bit word of the data changes, without summing the data again
    (RFC 1624 eq. 3, HC' = ~(~HC + ~m + m')). A result of 0 is wrong only for data that is now all zero
    (only 0xFFFF verifies then): callers recompute on 0."""
    return ~fold((~checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word) & 0xFFFF


def pseudo_header_sum(src: int, dst: int, protocol: int, length: int) -> int:
    """Sum of the IPv4 pseudo-header (RFC 768, RFC 9293 section 3.1) with addresses as integers."""
    return (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + protocol + length


def pseudo_header_sum6(src: int, dst: int, next_header: int, length: int) -> int:
    """The IPv6 pseudo-header (RFC 8200 section 8.1) summed and folded to 16 bits, with the addresses as
    128-bit integers: an integer is congruent to the sum of its 16-bit words modulo 0xFFFF (as in
    ``ones_sum``), so the 40 bytes are never laid out. Usable as ``initial`` like the IPv4 sum."""
    total = src + dst + length + next_header
    folded = total % 0xFFFF
    return 0xFFFF if folded == 0 and total else folded
