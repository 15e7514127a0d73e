"""The runner's own view of the wire: Ethernet/IPv4/TCP frames built and read with struct, apart from
pystack's wire code (so that a bug there cannot hide itself), and TCP segments written in packetdrill's
notation for verdicts.

Addresses are packetdrill's IPv4 defaults: the stack under test in 192.168.0.0/16 behind gateway
192.168.0.1, the remote end at 192.0.2.1 (TEST-NET-1).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from pystack.conformance.script import TcpOption

LOCAL_IP = 0xC0A80002  # 192.168.0.2
GATEWAY_IP = 0xC0A80001  # 192.168.0.1
PREFIX_LEN = 16
REMOTE_IP = 0xC000_0201  # 192.0.2.1
LOCAL_MAC = bytes.fromhex("020000000002")
GATEWAY_MAC = bytes.fromhex("020000000001")
BIND_PORT = 8080
"""packetdrill's port for bind() and connect() with ``...`` addresses."""

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
AE = 0x100
_LETTER_BITS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR, "A": AE}
_PRINT_ORDER = ("F", "S", "R", "P", "E", "W", "U", "A", ".")
ECN_CODEPOINTS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}

_ETH_IPV4 = 0x0800
_ETH_ARP = 0x0806
_IPV4 = struct.Struct("!BBHHHBBHII")
_TCP = struct.Struct("!HHIIBBHHH")
_INBOUND_HEADER = LOCAL_MAC + GATEWAY_MAC + struct.pack("!H", _ETH_IPV4)


def flag_bits(letters: str) -> int:
    bits = 0
    for c in letters:
        bits |= _LETTER_BITS.get(c, 0)
    return bits


def flag_letters(bits: int) -> str:
    out = "".join(c for c in _PRINT_ORDER if bits & _LETTER_BITS[c])
    return out or "-"


def ip_text(addr: int) -> str:
    return ".".join(str((addr >> s) & 0xFF) for s in (24, 16, 8, 0))


def internet_checksum(data: bytes, start: int = 0) -> int:
    """RFC 1071, written out plainly (pystack has its own; this one checks it)."""
    if len(data) & 1:
        data += b"\0"
    total: int = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(slots=True)
class Segment:
    """A TCP segment in live numbers, as sent or received on the wire."""
    src: int
    dst: int
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    options: list[TcpOption] = field(default_factory=list)
    payload: bytes = b""
    urgent: int = 0
    tos: int = 0

    def option(self, kind: str) -> TcpOption | None:
        for opt in self.options:
            if opt.kind == kind:
                return opt
        return None


def encode_options(options: Sequence[TcpOption]) -> bytes:
    out = bytearray()
    for opt in options:
        kind, v = opt.kind, opt.values
        if kind == "nop":
            out.append(1)
        elif kind == "eol":
            out.append(0)
        elif kind == "mss":
            out += struct.pack("!BBH", 2, 4, v[0])
        elif kind == "wscale":
            out += struct.pack("!BBB", 3, 3, v[0])
        elif kind == "sackOK":
            out += b"\x04\x02"
        elif kind == "sack":
            out += struct.pack("!BB", 5, 2 + 4 * len(v))
            for x in v:
                out += struct.pack("!I", x & 0xFFFFFFFF)
        elif kind == "TS":
            out += struct.pack("!BBII", 8, 10, v[0] & 0xFFFFFFFF, v[1] & 0xFFFFFFFF)
        else:
            raise ValueError(f"cannot encode TCP option {opt.text or kind}")
    while len(out) % 4:
        out.append(0)  # EOL padding, as packetdrill pads a short list
    if len(out) > 40:
        raise ValueError("TCP options longer than 40 bytes")
    return bytes(out)


def decode_options(raw: bytes) -> list[TcpOption]:
    """The options in order, NOPs and EOL included; the padding after EOL is dropped. A kind this does
    not know is kept as ``optN`` with its bytes in hex."""
    out: list[TcpOption] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            out.append(TcpOption("eol"))
            break
        if kind == 1:
            out.append(TcpOption("nop"))
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            out.append(TcpOption(f"opt{kind}", text=raw[i:].hex()))
            break
        length = raw[i + 1]
        body = raw[i + 2:i + length]
        if kind == 2 and length == 4:
            out.append(TcpOption("mss", struct.unpack("!H", body)))
        elif kind == 3 and length == 3:
            out.append(TcpOption("wscale", (body[0],)))
        elif kind == 4 and length == 2:
            out.append(TcpOption("sackOK"))
        elif kind == 5 and (length - 2) % 8 == 0:
            out.append(TcpOption("sack", struct.unpack(f"!{(length - 2) // 4}I", body)))
        elif kind == 8 and length == 10:
            out.append(TcpOption("TS", struct.unpack("!II", body)))
        else:
            out.append(TcpOption(f"opt{kind}", text=bytes(body).hex()))
        i += length
    return out


def build_frame(seg: Segment) -> bytes:
    """Ethernet from the gateway to us, IPv4 (DF, TTL 64), TCP with its checksum."""
    options = encode_options(seg.options)
    hlen = 20 + len(options)
    tcp = _TCP.pack(seg.sport, seg.dport, seg.seq & 0xFFFFFFFF, seg.ack & 0xFFFFFFFF, (hlen // 4) << 4,
                    seg.flags & 0xFF, seg.window, 0, seg.urgent) + options + seg.payload
    if seg.flags & AE:
        tcp = tcp[:12] + bytes((tcp[12] | 1,)) + tcp[13:]
    pseudo = struct.pack("!IIBBH", seg.src, seg.dst, 0, 6, len(tcp))
    csum = internet_checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp)
    ip = _IPV4.pack(0x45, seg.tos, total, 0, 0x4000, 64, 6, 0, seg.src, seg.dst)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    return _INBOUND_HEADER + ip + tcp


def arp_frame(op: int, sender_mac: bytes, sender_ip: int, target_mac: bytes, target_ip: int, dst_mac: bytes) -> bytes:
    body = struct.pack("!HHBBH6sI6sI", 1, _ETH_IPV4, 6, 4, op, sender_mac, sender_ip, target_mac, target_ip)
    return dst_mac + sender_mac + struct.pack("!H", _ETH_ARP) + body


@dataclass(slots=True)
class ArpRequest:
    sender_mac: bytes
    sender_ip: int
    target_ip: int


@dataclass(slots=True)
class Unreadable:
    """A frame the stack sent that is not well-formed (a checksum or length wrong): always a failure."""
    reason: str


def parse_frame(frame: bytes) -> Segment | ArpRequest | Unreadable | None:
    """A frame the stack sent: a TCP segment, an ARP request, a broken frame, or None for anything else."""
    frame = bytes(frame)
    if len(frame) < 14:
        return Unreadable("runt frame")
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == _ETH_ARP:
        if len(frame) < 42:
            return Unreadable("short ARP")
        _htype, _ptype, _hl, _pl, op, smac, sip, _tmac, tip = struct.unpack("!HHBBH6sI6sI", frame[14:42])
        return ArpRequest(smac, sip, tip) if op == 1 else None
    if ethertype != _ETH_IPV4:
        return None
    ip = frame[14:]
    if len(ip) < 20:
        return Unreadable("short IPv4 header")
    vihl, tos, total, _ident, _frag, _ttl, proto, _csum, src, dst = _IPV4.unpack(ip[:20])
    ihl = (vihl & 0xF) * 4
    if vihl >> 4 != 4 or ihl < 20 or total > len(ip) or total < ihl:
        return Unreadable("bad IPv4 header")
    if internet_checksum(ip[:ihl]) != 0:
        return Unreadable("bad IPv4 header checksum")
    if proto != 6:
        return None
    tcp = ip[ihl:total]
    if len(tcp) < 20:
        return Unreadable("short TCP header")
    pseudo = struct.pack("!IIBBH", src, dst, 0, 6, len(tcp))
    if internet_checksum(pseudo + tcp) != 0:
        return Unreadable("bad TCP checksum")
    sport, dport, seq, ack, off, flags, window, _c, urgent = _TCP.unpack(tcp[:20])
    hlen = (off >> 4) * 4
    if hlen < 20 or hlen > len(tcp):
        return Unreadable("bad TCP data offset")
    bits = flags | (AE if off & 1 else 0)
    return Segment(src, dst, sport, dport, seq, ack, bits, window, decode_options(tcp[20:hlen]), tcp[hlen:],
                   urgent, tos)


def format_options(options: Sequence[TcpOption] | None) -> str:
    if options is None:
        return "<...>"
    words = []
    for opt in options:
        kind, v = opt.kind, opt.values
        if kind in ("mss", "wscale"):
            words.append(f"{kind} {v[0]}")
        elif kind == "sack":
            words.append("sack " + " ".join(f"{v[i]}:{v[i + 1]}" for i in range(0, len(v) - 1, 2)))
        elif kind == "TS":
            words.append(f"TS val {v[0]} ecr {v[1]}")
        else:
            words.append(opt.text or kind)
    return "<" + ",".join(words) + ">"


def format_segment(direction: str, flags: int, seq: int, length: int, ack: int | None, window: int | None,
                   options: Sequence[TcpOption] | None) -> str:
    """A segment in packetdrill's notation, e.g. ``> P. 1:1001(1000) ack 1 win 256 <nop,nop,TS val 5 ecr 1>``."""
    end = (seq + length) & 0xFFFFFFFF
    text = f"{direction} {flag_letters(flags)} {seq}:{end}({length})"
    if ack is not None:
        text += f" ack {ack}"
    if window is not None:
        text += f" win {window}"
    if options is None or options:
        text += " " + format_options(options)
    return text
