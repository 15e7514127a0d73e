"""One TCP connection out of a capture, as a time-sequence graph needs it (tcptrace's reading): the
data segments of the direction that sent the most, the other direction's ACKs with their window edge
and SACK blocks, and cwnd/ssthresh where pystack's frame comments (a .pcapng capture) tell them.

Sequence numbers are relative to the sender's ISN (its SYN, or the first segment seen) and unwrapped,
so a transfer past 4 GiB keeps climbing. A segment is a retransmission when it starts below the
highest sequence number sent before it, or when its comment says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from pystack.plot.capture import Frame
from pystack.wire import tcp as tcp_wire
from pystack.wire.errors import WireError

MAX_SEGMENTS = 200_000
"""Data segments taken from one connection; past that the graph shows the first ones (and says so)."""
_CWND = re.compile(r"\bcwnd=(\d+) ssthresh=(\d+|-)")

Endpoint = tuple[str, int]


@dataclass(frozen=True)
class Segment:
    time: float
    start: int
    end: int
    retransmission: bool
    comment: str | None


@dataclass(frozen=True)
class Ack:
    time: float
    ack: int
    window_edge: int
    sack: tuple[tuple[int, int], ...]


@dataclass
class Series:
    sender: Endpoint
    receiver: Endpoint
    start: float = 0.0
    """Time of the connection's first frame: times below are seconds since it."""
    segments: list[Segment] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    cwnd: list[tuple[float, int, int | None]] = field(default_factory=list)
    """(time, cwnd, ssthresh or None while unset), from the sender's frame comments."""
    window_scale_known: bool = True
    truncated: bool = False

    @property
    def title(self) -> str:
        s, r = self.sender, self.receiver
        return f"{s[0]}:{s[1]} \u2192 {r[0]}:{r[1]}"


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


@dataclass(frozen=True)
class _Packet:
    time: float
    src: Endpoint
    dst: Endpoint
    seg: tcp_wire.TcpSegment
    length: int
    """Payload bytes, from the IPv4 total length (the capture may have cut the frame)."""
    comment: str | None


def _packets(frames: Iterable[Frame]) -> Iterable[_Packet]:
    """The TCP-in-IPv4 frames, checksums not checked (a capture of our own sending has offload's)."""
    for frame in frames:
        d = frame.data
        if len(d) < 34 or d[12:14] != b"\x08\x00" or d[14] >> 4 != 4 or d[23] != 6:
            continue
        if ((d[20] << 8) | d[21]) & 0x1FFF:
            continue  # a later fragment
        ihl = (d[14] & 0x0F) * 4
        total = (d[16] << 8) | d[17]
        header = d[14 + ihl:]
        if len(header) < 20:
            continue
        hlen = (header[12] >> 4) * 4
        src, dst = int.from_bytes(d[26:30], "big"), int.from_bytes(d[30:34], "big")
        try:
            seg = tcp_wire.parse(header[:hlen], src, dst, False)
        except WireError:
            continue
        yield _Packet(frame.time, (_ip(d[26:30]), seg.src_port), (_ip(d[30:34]), seg.dst_port), seg,
                      max(total - ihl - hlen, 0), frame.comment)


def _matches(packet: _Packet, spec: str | None) -> bool:
    """``--conn``: PORT, ADDRESS or ADDRESS:PORT of either end."""
    if spec is None:
        return True
    ends = [packet.src, packet.dst]
    if spec.isdigit():
        return any(port == int(spec) for _a, port in ends)
    if ":" in spec:
        addr, _, port = spec.rpartition(":")
        return port.isdigit() and any(a == addr and p == int(port) for a, p in ends)
    return any(a == spec for a, _p in ends)


def connections(frames: Iterable[Frame], spec: str | None = None) -> dict[frozenset[Endpoint], dict[Endpoint, int]]:
    """Payload bytes per sender of each connection that ``spec`` matches."""
    found: dict[frozenset[Endpoint], dict[Endpoint, int]] = {}
    for p in _packets(frames):
        if _matches(p, spec):
            sent = found.setdefault(frozenset((p.src, p.dst)), {p.src: 0, p.dst: 0})
            sent[p.src] += p.length
    return found


class _Unwrap:
    """32-bit sequence numbers as offsets from a base, growing past 2**32."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.last = 0

    def __call__(self, seq: int) -> int:
        step = (seq - self.base - self.last) & 0xFFFFFFFF
        if step >= 0x80000000:
            step -= 1 << 32
        self.last += step
        return self.last


def series(frames: Callable[[], Iterable[Frame]], spec: str | None = None) -> Series:
    """The time-sequence series of the busiest connection ``spec`` matches (ValueError if none).
    ``frames`` gives the capture's frames anew: it is read twice, and never held whole."""
    found = connections(frames(), spec)
    if not found:
        raise ValueError("no TCP connection in the capture" + (f" matches --conn {spec}" if spec else ""))
    ends, sent = max(found.items(), key=lambda item: (max(item[1].values()), sorted(item[0])))
    sender = max(sent, key=lambda e: (sent[e], e))
    receiver = next(iter(ends - {sender})) if len(ends) == 2 else sender
    out = Series(sender, receiver)
    rel: _Unwrap | None = None
    syn_scales: dict[Endpoint, int | None] = {}
    scale = 0  # the receiver's window scale, once both SYNs offered one (RFC 7323 2.2)
    highest = None
    first = True
    for p in _packets(frames()):
        if {p.src, p.dst} != ends:
            continue
        if first:
            out.start = p.time
            first = False
        t = p.time - out.start
        seg = p.seg
        if seg.flags & tcp_wire.SYN:
            syn_scales[p.src] = seg.wscale
            if len(syn_scales) == 2 and None not in syn_scales.values():
                scale = syn_scales[receiver] or 0
        if p.src == sender:
            if rel is None:
                rel = _Unwrap(seg.seq)  # the ISN when this is the SYN
            if p.comment is not None and not out.truncated and (m := _CWND.search(p.comment)):
                out.cwnd.append((t, int(m.group(1)), None if m.group(2) == "-" else int(m.group(2))))
            length = p.length + (1 if seg.flags & tcp_wire.SYN else 0) + (1 if seg.flags & tcp_wire.FIN else 0)
            if not length:
                continue
            if len(out.segments) >= MAX_SEGMENTS:
                out.truncated = True
                continue
            start = rel(seg.seq)
            retransmission = highest is not None and start < highest
            if p.comment is not None and "retransmission" in p.comment:
                retransmission = True
            out.segments.append(Segment(t, start, start + length, retransmission, p.comment))
            if highest is None or start + length > highest:
                highest = start + length
        elif seg.flags & tcp_wire.ACK and rel is not None and highest is not None and not out.truncated:
            if len(out.acks) >= 2 * MAX_SEGMENTS:
                out.truncated = True
                continue
            ack = rel(seg.ack)
            sacks = tuple((rel(left), rel(right)) for left, right in seg.sack_blocks)
            window = seg.window if seg.flags & tcp_wire.SYN else seg.window << scale  # a SYN's is never scaled
            out.acks.append(Ack(t, ack, ack + window, sacks))
    out.window_scale_known = len(syn_scales) == 2
    return out
