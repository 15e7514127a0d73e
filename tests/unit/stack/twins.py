"""Fast paths against their layered twin: the same frames fed to a stack with ``StackConfig.fast_paths`` on
and to its twin with it off (made the same way, from the same seed) must put the same frames out and move
the same counters. ``calls`` shows which way a frame took, without replacing any code."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from pystack.config import StackConfig
from pystack.wire.checksum import internet_checksum, pseudo_header_sum, pseudo_header_sum6


def twin_configs(config: StackConfig | None = None) -> tuple[StackConfig, StackConfig]:
    """``config`` (default: the defaults) with the fast paths on, and with them off."""
    base = config or StackConfig()
    return dataclasses.replace(base, fast_paths=True), dataclasses.replace(base, fast_paths=False)


def mutated(base: bytes, changes: list[tuple[int, int]], cut: int, refix: bool) -> bytes:
    """``base`` with bytes replaced at the given offsets, cut to ``cut`` bytes. With ``refix`` its checksums
    are made valid again (the IPv4 header's, and the ICMP, UDP or TCP checksum of an unfragmented datagram
    with a 20-byte header; over IPv6, the ICMPv6, UDP or TCP checksum right after the fixed header), so that
    the changed fields themselves are judged."""
    frame = bytearray(base)
    for offset, value in changes:
        frame[offset] = value
    if refix and frame[12:14] == b"\x86\xdd":
        _refix_transport6(frame)
    elif refix and len(frame) >= 34:
        frame[24:26] = b"\x00\x00"
        frame[24:26] = internet_checksum(bytes(frame[14:34])).to_bytes(2, "big")
        _refix_transport(frame)
    return bytes(frame[:cut])


_CHECKSUM_AT = {1: 2, 6: 16, 17: 6}
"""Where the checksum field is in an ICMP, TCP and UDP header."""


def _refix_transport(frame: bytearray) -> None:
    protocol = frame[23]
    end = min(len(frame), 14 + int.from_bytes(frame[16:18], "big"))
    at = 34 + _CHECKSUM_AT.get(protocol, 1 << 16)
    if frame[12:14] != b"\x08\x00" or frame[14] != 0x45 or frame[20] & 0x3F or frame[21] or at + 2 > end:
        return
    frame[at:at + 2] = b"\x00\x00"
    initial = 0
    if protocol != 1:
        initial = pseudo_header_sum(int.from_bytes(frame[26:30], "big"), int.from_bytes(frame[30:34], "big"),
                                    protocol, end - 34)
    checksum = internet_checksum(bytes(frame[34:end]), initial)
    frame[at:at + 2] = (checksum or (0xFFFF if protocol == 17 else 0)).to_bytes(2, "big")


_CHECKSUM_AT6 = {58: 2, 6: 16, 17: 6}
"""Where the checksum field is in an ICMPv6, TCP and UDP header."""


def _refix_transport6(frame: bytearray) -> None:
    """The upper layer's checksum over the RFC 8200 8.1 pseudo-header, when it follows the fixed header."""
    if len(frame) < 54 or frame[14] >> 4 != 6:
        return
    next_header = frame[20]
    end = min(len(frame), 54 + int.from_bytes(frame[18:20], "big"))
    at = 54 + _CHECKSUM_AT6.get(next_header, 1 << 16)
    if at + 2 > end:
        return
    frame[at:at + 2] = b"\x00\x00"
    initial = pseudo_header_sum6(int.from_bytes(frame[22:38], "big"), int.from_bytes(frame[38:54], "big"),
                                 next_header, end - 54)
    checksum = internet_checksum(bytes(frame[54:end]), initial)
    frame[at:at + 2] = (checksum or (0xFFFF if next_header == 17 else 0)).to_bytes(2, "big")


def outcome(stack, frame: bytes, now: float) -> tuple[list[bytes], dict[str, int]]:
    """What receiving ``frame`` makes ``stack`` send, and how its counters move."""
    before = dict(stack.counters)
    stack.receive_frame(frame, now)
    moved = {k: v - before.get(k, 0) for k, v in stack.counters.items() if v != before.get(k, 0)}
    return stack.frames_to_send(), moved


@contextmanager
def calls(*functions: Callable[..., Any]) -> Iterator[Counter[str]]:
    """Count the calls of ``functions`` (by qualified name) made inside the block."""
    codes = {f.__code__: f.__qualname__ for f in functions}
    seen: Counter[str] = Counter()

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            seen[codes[frame.f_code]] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)
