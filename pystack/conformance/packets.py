"""The runner's own view of the wire: Ethernet/IPv4/TCP and Ethernet/IPv6/TCP frames built and read with
struct, apart from pystack's wire code (so that a bug there cannot hide itself), the few neighbour
discovery messages that stand in for ARP over IPv6, and TCP segments written in packetdrill's notation for
verdicts.

Addresses are those packetdrill's run_all.py gives each family: over IPv4 the stack under test at
192.168.0.2/16 behind gateway 192.168.0.1, the remote end at 192.0.2.1 (TEST-NET-1); over IPv6 the stack
at fd3d:fa7b:d17d::/48 (a unique local address, RFC 4193) behind gateway fd3d:fa7b:d17d:8888::, the remote
end at 2001:db8::1 (RFC 3849), with a link MTU of 1520 so that the MSS is 1460 as over IPv4.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from pystack.conformance.script import TcpOption

LOCAL_MAC = bytes.fromhex("020000000002")
GATEWAY_MAC = bytes.fromhex("020000000001")


@dataclass(frozen=True, slots=True)
class Family:
    """One of packetdrill's ``--ip_version`` flavours as the wire sees it: the addresses, the link MTU, and
    whether packets are IPv6 (``ipv4-mapped-ipv6`` puts IPv4 on the wire: only its sockets are AF_INET6)."""
    name: str
    ipv6: bool
    local: int
    remote: int
    gateway: int
    prefix_len: int
    mtu: int


IPV4 = Family("ipv4", False, 0xC0A80002, 0xC000_0201, 0xC0A80001, 16, 1500)
"""192.168.0.2/16, remote 192.0.2.1, gateway 192.168.0.1."""
IPV6 = Family("ipv6", True, 0xFD3D_FA7B_D17D << 80, 0x2001_0DB8 << 96 | 1, 0xFD3D_FA7B_D17D_8888 << 64, 48, 1520)
"""fd3d:fa7b:d17d::/48, remote 2001:db8::1, gateway fd3d:fa7b:d17d:8888:: (run_all.py's ``--mtu=1520``)."""
FAMILIES = {"ipv4": IPV4, "ipv4-mapped-ipv6": dataclasses.replace(IPV4, name="ipv4-mapped-ipv6"), "ipv6": IPV6}
BIND_PORT = 8080
"""packetdrill's port for bind() and connect() with ``...`` addresses."""

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
AE = 0x100
_LETTER_BITS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR, "A": AE}
_PRINT_ORDER = ("F", "S", "R", "P", "E", "W", "U", "A", ".")
ECN_CODEPOINTS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}

_ETH_IPV4 = 0x0800
_ETH_ARP = 0x0806
_ETH_IPV6 = 0x86DD
_IPV4 = struct.Struct("!BBHHHBBHII")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_INBOUND_HEADER = LOCAL_MAC + GATEWAY_MAC + struct.pack("!H", _ETH_IPV4)
_INBOUND_HEADER6 = LOCAL_MAC + GATEWAY_MAC + struct.pack("!H", _ETH_IPV6)
_NH_TCP, _NH_ICMPV6 = 6, 58
_NEIGHBOUR_SOLICITATION, _NEIGHBOUR_ADVERTISEMENT = 135, 136


def flag_bits(letters: str) -> int:
    bits = 0
    for c in letters:
        bits |= _LETTER_BITS.get(c, 0)
    return bits


def flag_letters(bits: int) -> str:
    out = "".join(c for c in _PRINT_ORDER if bits & _LETTER_BITS[c])
    return out or "-"


def ip_text(addr: int) -> str:
    return str(ipaddress.ip_address(addr)) if addr >> 32 else ".".join(str((addr >> s) & 0xFF) for s in (24, 16, 8, 0))


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


def _pseudo_header(src: int, dst: int, proto: int, length: int, ipv6: bool) -> bytes:
    """RFC 9293 3.1's pseudo-header over IPv4, RFC 8200 8.1's over IPv6."""
    if ipv6:
        return src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!IxxxB", length, proto)
    return struct.pack("!IIBBH", src, dst, 0, proto, length)


def build_frame(seg: Segment, ipv6: bool = False) -> bytes:
    """Ethernet from the gateway to us, IPv4 (DF, TTL 64) or IPv6 (hop limit 64), TCP with its checksum."""
    options = encode_options(seg.options)
    hlen = 20 + len(options)
    tcp = _TCP.pack(seg.sport, seg.dport, seg.seq & 0xFFFFFFFF, seg.ack & 0xFFFFFFFF, (hlen // 4) << 4,
                    seg.flags & 0xFF, seg.window, 0, seg.urgent) + options + seg.payload
    if seg.flags & AE:
        tcp = tcp[:12] + bytes((tcp[12] | 1,)) + tcp[13:]
    csum = internet_checksum(_pseudo_header(seg.src, seg.dst, 6, len(tcp), ipv6) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    if ipv6:
        return _INBOUND_HEADER6 + _ipv6_header(seg.src, seg.dst, _NH_TCP, len(tcp), 64, seg.tos) + tcp
    total = 20 + len(tcp)
    ip = _IPV4.pack(0x45, seg.tos, total, 0, 0x4000, 64, 6, 0, seg.src, seg.dst)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    return _INBOUND_HEADER + ip + tcp


def _ipv6_header(src: int, dst: int, next_header: int, length: int, hop_limit: int, traffic_class: int = 0) -> bytes:
    return _IPV6.pack(6 << 28 | traffic_class << 20, length, next_header, hop_limit, src.to_bytes(16, "big"),
                      dst.to_bytes(16, "big"))


def _icmpv6_frame(dst_mac: bytes, src: int, dst: int, message: bytes) -> bytes:
    """An ICMPv6 message from the gateway's MAC, hop limit 255 as neighbour discovery demands (RFC 4861 7.1)."""
    csum = internet_checksum(_pseudo_header(src, dst, _NH_ICMPV6, len(message), True) + message)
    message = message[:2] + struct.pack("!H", csum) + message[4:]
    return (dst_mac + GATEWAY_MAC + struct.pack("!H", _ETH_IPV6) + _ipv6_header(src, dst, _NH_ICMPV6, len(message), 255)
            + message)


def solicited_node(addr: int) -> int:
    """ff02::1:ffXX:XXXX, the group a neighbour solicitation for ``addr`` goes to (RFC 4291 2.7.1)."""
    return 0xFF02 << 112 | 0x1_FF00_0000 | addr & 0xFFFFFF


def neighbour_solicitation(src: int, target: int) -> bytes:
    """The gateway (``src``) asks for ``target``'s MAC, telling its own (RFC 4861 4.3): what ARP's request
    from the gateway does over IPv4, so the stack knows the gateway's MAC from the start."""
    group = solicited_node(target)
    message = struct.pack("!BBHI16sBB6s", _NEIGHBOUR_SOLICITATION, 0, 0, 0, target.to_bytes(16, "big"), 1, 1,
                          GATEWAY_MAC)
    return _icmpv6_frame(b"\x33\x33" + (group & 0xFFFFFFFF).to_bytes(4, "big"), src, group, message)


def neighbour_advertisement(target: int, dst: int, dst_mac: bytes) -> bytes:
    """The gateway's solicited answer for ``target`` (its own address), Router, Solicited and Override set
    and its MAC in the target link-layer address option (RFC 4861 4.4)."""
    message = struct.pack("!BBHI16sBB6s", _NEIGHBOUR_ADVERTISEMENT, 0, 0, 0xE000_0000, target.to_bytes(16, "big"),
                          2, 1, GATEWAY_MAC)
    return _icmpv6_frame(dst_mac, target, dst, message)


def arp_frame(op: int, sender_mac: bytes, sender_ip: int, target_mac: bytes, target_ip: int, dst_mac: bytes) -> bytes:
    body = struct.pack("!HHBBH6sI6sI", 1, _ETH_IPV4, 6, 4, op, sender_mac, sender_ip, target_mac, target_ip)
    return dst_mac + sender_mac + struct.pack("!H", _ETH_ARP) + body


@dataclass(slots=True)
class ArpRequest:
    sender_mac: bytes
    sender_ip: int
    target_ip: int


@dataclass(slots=True)
class NeighbourSolicitation:
    """The stack asks for ``target``'s MAC over IPv6 (to resolve it, or to probe it: RFC 4861 7.3.3)."""
    sender_mac: bytes
    sender_ip: int
    target_ip: int


@dataclass(slots=True)
class Unreadable:
    """A frame the stack sent that is not well-formed (a checksum or length wrong): always a failure."""
    reason: str


Seen = Segment | ArpRequest | NeighbourSolicitation | Unreadable | None


def parse_frame(frame: bytes) -> Seen:
    """A frame the stack sent: a TCP segment, an ARP request or neighbour solicitation, a broken frame, or
    None for anything else."""
    frame = bytes(frame)
    if len(frame) < 14:
        return Unreadable("runt frame")
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == _ETH_ARP:
        if len(frame) < 42:
            return Unreadable("short ARP")
        _htype, _ptype, _hl, _pl, op, smac, sip, _tmac, tip = struct.unpack("!HHBBH6sI6sI", frame[14:42])
        return ArpRequest(smac, sip, tip) if op == 1 else None
    if ethertype == _ETH_IPV6:
        return _parse_ipv6(frame)
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
    return _parse_tcp(src, dst, ip[ihl:total], tos, False)


def _parse_ipv6(frame: bytes) -> Seen:
    """An IPv6 packet the stack sent: TCP right after the header (pystack puts no extension header before
    TCP), a neighbour solicitation, or None (MLD reports, router solicitations, other ICMPv6)."""
    ip = frame[14:]
    if len(ip) < 40:
        return Unreadable("short IPv6 header")
    vtcfl, length, next_header, hop_limit, src_b, dst_b = _IPV6.unpack(ip[:40])
    if vtcfl >> 28 != 6 or 40 + length > len(ip):
        return Unreadable("bad IPv6 header")
    src, dst = int.from_bytes(src_b, "big"), int.from_bytes(dst_b, "big")
    payload = ip[40:40 + length]
    if next_header == _NH_TCP:
        return _parse_tcp(src, dst, payload, (vtcfl >> 20) & 0xFF, True)
    if next_header != _NH_ICMPV6:
        return None
    if len(payload) < 4 or internet_checksum(_pseudo_header(src, dst, _NH_ICMPV6, len(payload), True) + payload):
        return Unreadable("bad ICMPv6 checksum")
    if payload[0] != _NEIGHBOUR_SOLICITATION:
        return None
    if len(payload) < 24 or hop_limit != 255:
        return Unreadable("malformed neighbour solicitation")
    return NeighbourSolicitation(frame[6:12], src, int.from_bytes(payload[8:24], "big"))


def _parse_tcp(src: int, dst: int, tcp: bytes, tos: int, ipv6: bool) -> Segment | Unreadable:
    if len(tcp) < 20:
        return Unreadable("short TCP header")
    if internet_checksum(_pseudo_header(src, dst, 6, len(tcp), ipv6) + tcp) != 0:
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
