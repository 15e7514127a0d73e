"""TCP segments (RFC 9293 section 3.1) with the IPv4 pseudo-header checksum and the common options.

Options understood: EOL, NOP, MSS (RFC 9293 3.2), window scale and timestamps (RFC 7323),
SACK-permitted and SACK blocks (RFC 2018). Unknown options are skipped by their length; a length
that is impossible (below 2, past the header, or wrong for a known kind) makes the whole segment
bogus (``tcp.bad_option``): RFC 9293 3.1 asks to survive such input, and dropping it is the safe way.

The parse result is a plain ``__slots__`` object and the payload a memoryview, because this runs once
per segment on the hot path.
"""

from __future__ import annotations

import struct

from pystack.wire.checksum import internet_checksum, ones_sum, pseudo_header_sum
from pystack.wire.errors import WireError

PROTO_TCP = 6
HEADER_LEN = 20
MAX_HEADER_LEN = 60

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8

_HEADER = struct.Struct("!HHIIBBHHH")
_U16 = struct.Struct("!H")
_U32X2 = struct.Struct("!II")
_TS_ALIGNED = b"\x01\x01\x08\x0a"  # NOP NOP TS(10): the layout Linux and we use on every segment
_FIXED_LEN = {OPT_MSS: 4, OPT_WSCALE: 3, OPT_SACK_PERMITTED: 2, OPT_TIMESTAMP: 10}

_FLAG_NAMES = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"), (ECE, "E"), (CWR, "W"))


class TcpSegment:
    """A parsed segment. Option fields are ``None``/``False``/``()`` when the option is absent."""

    __slots__ = (
        "src_port", "dst_port", "seq", "ack", "flags", "window", "urgent", "payload",
        "mss", "wscale", "sack_permitted", "sack_blocks", "ts_val", "ts_ecr",
    )

    def __init__(
        self, src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
        urgent: int, payload: memoryview,
    ) -> None:
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.urgent = urgent
        self.payload = payload
        self.mss: int | None = None
        self.wscale: int | None = None
        self.sack_permitted = False
        self.sack_blocks: tuple[tuple[int, int], ...] = ()
        self.ts_val: int | None = None
        self.ts_ecr: int | None = None

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies: payload plus one for SYN and one for FIN."""
        return len(self.payload) + (self.flags & SYN and 1) + (self.flags & FIN)

    def __repr__(self) -> str:
        fl = "".join(n for bit, n in _FLAG_NAMES if self.flags & bit) or "-"
        opts = []
        if self.mss is not None:
            opts.append(f"mss={self.mss}")
        if self.wscale is not None:
            opts.append(f"ws={self.wscale}")
        if self.sack_permitted:
            opts.append("sackOK")
        if self.sack_blocks:
            opts.append("sack=" + ",".join(f"{a}-{b}" for a, b in self.sack_blocks))
        if self.ts_val is not None:
            opts.append(f"ts={self.ts_val}/{self.ts_ecr}")
        return (
            f"<TCP {self.src_port}>{self.dst_port} [{fl}] seq={self.seq} ack={self.ack} "
            f"win={self.window} len={len(self.payload)}{' ' + ' '.join(opts) if opts else ''}>"
        )


def parse(data: bytes | bytearray | memoryview, src: int, dst: int, verify_checksum: bool = True) -> TcpSegment:
    """Validate header length, checksum (RFC 9293 3.1, over the pseudo-header) and options."""
    n = len(data)
    if n < HEADER_LEN:
        raise WireError("tcp.truncated")
    sport, dport, seq, ack, off, flags, window, _csum, urgent = _HEADER.unpack_from(data)
    hlen = (off >> 4) << 2
    if hlen < HEADER_LEN or hlen > n:
        raise WireError("tcp.bad_offset")
    if verify_checksum and ones_sum(data, pseudo_header_sum(src, dst, PROTO_TCP, n)) != 0xFFFF:
        raise WireError("tcp.bad_checksum")
    if sport == 0 or dport == 0:
        raise WireError("tcp.port_zero")
    view = data if type(data) is memoryview else memoryview(data)
    seg = TcpSegment(sport, dport, seq, ack, flags, window, urgent, view[hlen:])
    if hlen > HEADER_LEN:
        if hlen == 32 and view[20:24] == _TS_ALIGNED:
            seg.ts_val, seg.ts_ecr = _U32X2.unpack_from(view, 24)
        else:
            _parse_options(view, hlen, seg)
    return seg


def _parse_options(view: memoryview, end: int, seg: TcpSegment) -> None:
    i = HEADER_LEN
    while i < end:
        kind = view[i]
        if kind == OPT_EOL:
            return
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= end:
            raise WireError("tcp.bad_option")
        length = view[i + 1]
        if length < 2 or i + length > end:
            raise WireError("tcp.bad_option")
        fixed = _FIXED_LEN.get(kind)
        if fixed is not None and length != fixed:
            raise WireError("tcp.bad_option")
        if kind == OPT_MSS:
            seg.mss = _U16.unpack_from(view, i + 2)[0]
        elif kind == OPT_WSCALE:
            seg.wscale = view[i + 2]
        elif kind == OPT_SACK_PERMITTED:
            seg.sack_permitted = True
        elif kind == OPT_TIMESTAMP:
            seg.ts_val, seg.ts_ecr = _U32X2.unpack_from(view, i + 2)
        elif kind == OPT_SACK:
            if (length - 2) % 8 or length == 2:
                raise WireError("tcp.bad_option")
            seg.sack_blocks = tuple(_U32X2.iter_unpack(view[i + 2:i + length]))
        i += length


def build_options(
    mss: int | None = None,
    wscale: int | None = None,
    sack_permitted: bool = False,
    timestamps: tuple[int, int] | None = None,
    sack_blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
) -> bytes:
    """Options padded with NOPs to a multiple of 4, laid out as Linux does (so our SYN looks familiar)."""
    out = bytearray()
    if mss is not None:
        out += struct.pack("!BBH", OPT_MSS, 4, mss)
    if sack_permitted and timestamps is not None:
        out += struct.pack("!BBBBII", OPT_SACK_PERMITTED, 2, OPT_TIMESTAMP, 10, *timestamps)
    else:
        if timestamps is not None:
            out += struct.pack("!BBBBII", OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10, *timestamps)
        if sack_permitted:
            out += bytes((OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2))
    if wscale is not None:
        out += struct.pack("!BBBB", OPT_NOP, OPT_WSCALE, 3, wscale)
    if sack_blocks:
        out += bytes((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(sack_blocks)))
        for left, right in sack_blocks:
            out += _U32X2.pack(left, right)
    if len(out) % 4:
        out += bytes(4 - len(out) % 4)  # EOL padding
    if len(out) > MAX_HEADER_LEN - HEADER_LEN:
        raise ValueError("TCP options longer than 40 bytes")
    return bytes(out)


def timestamp_option(ts_val: int, ts_ecr: int) -> bytes:
    """The 12-byte NOP NOP TS block carried by every segment once timestamps are negotiated."""
    return _TS_ALIGNED + _U32X2.pack(ts_val, ts_ecr)


def build(
    src: int, dst: int, src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
    options: bytes = b"", payload: bytes | bytearray | memoryview = b"", urgent: int = 0,
    checksum: bool = True,
) -> bytes:
    """A finished segment with its checksum. ``options`` must already be padded (see build_options).

    The checksum is summed from the header fields as integers plus the options and payload, so the
    payload is copied exactly once, into the result. ``checksum=False`` leaves the field zero, for a
    segment the link will cut and checksum itself (segmentation offload).
    """
    olen = len(options)
    if olen & 3 or olen > MAX_HEADER_LEN - HEADER_LEN:
        raise ValueError("TCP options must be padded to 4 bytes and at most 40 bytes")
    hlen = HEADER_LEN + olen
    length = hlen + len(payload)
    off_flags = ((hlen >> 2) << 12) | flags
    total = (
        pseudo_header_sum(src, dst, PROTO_TCP, length)
        + src_port + dst_port + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
        + off_flags + window + urgent
    )
    if not checksum:
        header = _HEADER.pack(src_port, dst_port, seq, ack, off_flags >> 8, flags, window, 0, urgent)
        return b"".join((header, options, payload))
    if olen:
        payload = options + payload  # options are whole 32-bit words: one sum covers both
    csum = internet_checksum(payload, total)
    header = _HEADER.pack(src_port, dst_port, seq, ack, off_flags >> 8, flags, window, csum, urgent)
    return header + payload if payload else header
