"""Shared pieces of the wire tests: strategies and assertion helpers (the reference checksum is
pystack_lab.reference's)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from pystack.wire.errors import WireError
from pystack_lab.reference import ref_checksum

# Bounded so the whole folder stays fast; the deadline is off because timing is not what we test.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pseudo_header(src: int, dst: int, protocol: int, length: int) -> bytes:
    """The 12-byte IPv4 pseudo-header of RFC 768, as bytes."""
    return struct.pack("!IIxBH", src, dst, protocol, length)


def with_word(data: bytes, offset: int, value: int) -> bytes:
    """``data`` with the big-endian 16-bit word at ``offset`` replaced."""
    return data[:offset] + value.to_bytes(2, "big") + data[offset + 2:]


def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def refix_ipv4_checksum(packet: bytes) -> bytes:
    """Recompute the IPv4 header checksum (with the reference) after a test edited the header."""
    ihl = max((packet[0] & 0x0F) * 4, 20)
    ihl = min(ihl, len(packet))
    zeroed = with_word(packet, 10, 0)
    return with_word(zeroed, 10, ref_checksum(zeroed[:ihl]))


def rejects(parse: Callable[..., Any], data: bytes | memoryview, reasons: set[str], *args: Any) -> str:
    """Assert that ``parse`` raises WireError (and nothing else) with one of ``reasons``; return the reason."""
    with pytest.raises(WireError) as info:
        parse(data, *args)
    assert info.value.reason in reasons, f"reason {info.value.reason!r} not in {sorted(reasons)}"
    assert str(info.value) == info.value.reason
    return info.value.reason


def parses_or_rejects(parse: Callable[..., Any], data: bytes | memoryview, prefix: str, *args: Any) -> Any:
    """Any input either parses or raises WireError whose reason belongs to ``prefix``; nothing else escapes."""
    try:
        return parse(data, *args)
    except WireError as err:
        assert err.reason.startswith(prefix + "."), err.reason
        return None


ipv4_addrs = st.integers(min_value=0, max_value=0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6)
ports = st.integers(min_value=0, max_value=0xFFFF)
u8 = st.integers(min_value=0, max_value=0xFF)
u16 = st.integers(min_value=0, max_value=0xFFFF)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
payloads = st.binary(max_size=1500)
# IPv4 options padded to 4 bytes (content is opaque to the parser), at most 40 bytes.
ipv4_options = st.integers(min_value=0, max_value=10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
