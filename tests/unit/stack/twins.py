"""Fast paths against their layered twin: the same frame fed to a stack that may take a fast path and to one
that never does must put the same frames out and move the same counters."""

from __future__ import annotations

from pystack.wire.checksum import internet_checksum


def mutated(base: bytes, changes: list[tuple[int, int]], cut: int, refix: bool) -> bytes:
    """``base`` with bytes replaced at the given offsets, its IPv4 header checksum made valid again when
    ``refix`` (so that the changed fields themselves are judged), cut to ``cut`` bytes."""
    frame = bytearray(base)
    for offset, value in changes:
        frame[offset] = value
    if refix:
        frame[24:26] = b"\x00\x00"
        frame[24:26] = internet_checksum(bytes(frame[14:34])).to_bytes(2, "big")
    return bytes(frame[:cut])


def outcome(stack, frame: bytes, now: float) -> tuple[list[bytes], dict[str, int]]:
    """What receiving ``frame`` makes ``stack`` send, and how its counters move."""
    before = dict(stack.counters)
    stack.receive_frame(frame, now)
    moved = {k: v - before.get(k, 0) for k, v in stack.counters.items() if v != before.get(k, 0)}
    return stack.frames_to_send(), moved
