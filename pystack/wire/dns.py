"""DNS messages (RFC 1035 section 4): header, questions and resource records, with name compression.

Names are presentation-format strings without the trailing dot (``"www.example.test"``; the root is
``""``); a label byte that is not printable ASCII, or is ``.`` or ``\\``, is written ``\\DDD`` (RFC 1035
section 5.1), so any wire name round-trips. Compare names with :func:`name_key` (RFC 4343: ASCII case
does not matter).

Record data is decoded for A (an int), AAAA (an :class:`ipaddress.IPv6Address`, RFC 3596), CNAME/NS/PTR
(a name) and SOA (:class:`Soa`); every other type keeps its raw RDATA bytes. A parse raises
:class:`WireError` with a ``dns.*`` reason.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from pystack.wire.errors import WireError

PORT = 53
HEADER_LEN = 12
MAX_UDP_LEN = 512
"""RFC 1035 section 4.2.1: without EDNS, a UDP message carries at most 512 octets; longer ones set TC."""
MAX_NAME_LEN = 255
"""RFC 1035 section 2.3.4: octets of a name on the wire, length bytes and the root's zero included."""
MAX_LABEL_LEN = 63
MAX_POINTER_HOPS = 126
"""Compression pointers followed in one name. A 255-octet name has at most 127 labels, so a legitimate
name never needs more; the bound caps the work a hostile message can cause."""

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_OPT = 41
CLASS_IN = 1

OPCODE_QUERY = 0
RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_QUESTION_FIXED = struct.Struct("!HH")
_SOA_FIXED = struct.Struct("!IIIII")
_NAME_TYPES = (TYPE_CNAME, TYPE_NS, TYPE_PTR)
_PLAIN = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}
"""Label bytes written as themselves; every other byte is written ``\\DDD``."""


@dataclass(slots=True, frozen=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    """RFC 2308 section 4: the TTL of negative answers from this zone (bounded by the SOA's own TTL)."""


RData = int | ipaddress.IPv6Address | str | Soa | bytes


@dataclass(slots=True, frozen=True)
class Question:
    name: str
    qtype: int = TYPE_A
    qclass: int = CLASS_IN


@dataclass(slots=True, frozen=True)
class Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    """As sent, unsigned; RFC 2181 section 8 says a value with the top bit set is to be read as 0."""
    rdata: RData


@dataclass(slots=True)
class DnsMessage:
    id: int
    flags: int = 0
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TC)

    @property
    def rcode(self) -> int:
        return self.flags & 0xF


def name_key(name: str) -> str:
    """The canonical form two names are compared in: ASCII lowercase (RFC 4343), escapes normalised, no
    trailing dot. ValueError if ``name`` cannot be a DNS name."""
    return ".".join(_label_text(label.lower()) for label in name_labels(name))


# ---------------------------------------------------------------------- parsing


def parse(data: bytes | memoryview) -> DnsMessage:
    """Parse a whole message. Trailing bytes after the counted records are ignored."""
    buf = bytes(data)
    if len(buf) < HEADER_LEN:
        raise WireError("dns.truncated")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(buf)
    pos = HEADER_LEN
    questions = []
    for _ in range(qdcount):
        name, pos = read_name(buf, pos)
        if pos + 4 > len(buf):
            raise WireError("dns.truncated")
        qtype, qclass = _QUESTION_FIXED.unpack_from(buf, pos)
        pos += 4
        questions.append(Question(name, qtype, qclass))
    sections: list[list[Record]] = []
    for count in (ancount, nscount, arcount):
        records = []
        for _ in range(count):
            record, pos = _read_record(buf, pos)
            records.append(record)
        sections.append(records)
    return DnsMessage(ident, flags, questions, *sections)


def _read_record(buf: bytes, pos: int) -> tuple[Record, int]:
    name, pos = read_name(buf, pos)
    if pos + 10 > len(buf):
        raise WireError("dns.truncated")
    rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(buf, pos)
    pos += 10
    end = pos + rdlength
    if end > len(buf):
        raise WireError("dns.truncated")
    rdata: RData
    if rtype == TYPE_A and rclass == CLASS_IN:
        if rdlength != 4:
            raise WireError("dns.bad_rdata")
        rdata = int.from_bytes(buf[pos:end], "big")
    elif rtype == TYPE_AAAA and rclass == CLASS_IN:
        if rdlength != 16:  # RFC 3596 section 2.2: 128 bits
            raise WireError("dns.bad_rdata")
        rdata = ipaddress.IPv6Address(bytes(buf[pos:end]))
    elif rtype in _NAME_TYPES:
        rdata, after = read_name(buf, pos)
        if after != end:
            raise WireError("dns.bad_rdata")
    elif rtype == TYPE_SOA:
        mname, after = read_name(buf, pos)
        rname, after = read_name(buf, after)
        if after + 20 != end:
            raise WireError("dns.bad_rdata")
        rdata = Soa(mname, rname, *_SOA_FIXED.unpack_from(buf, after))
    else:
        rdata = buf[pos:end]
    return Record(name, rtype, rclass, ttl, rdata), end


def read_name(buf: bytes, pos: int) -> tuple[str, int]:
    """Read a possibly compressed name at ``pos``; return it and the offset just after it.

    RFC 1035 section 4.1.4. A pointer must point before the start of the label run that contains it,
    so every jump moves strictly backwards and a loop is impossible; the hop count is bounded as well.
    """
    labels: list[str] = []
    n = len(buf)
    after: int | None = None
    run_start = pos
    hops = 0
    wire_len = 1  # the terminating zero
    while True:
        if pos >= n:
            raise WireError("dns.truncated")
        length = buf[pos]
        if length >= 0xC0:
            if pos + 1 >= n:
                raise WireError("dns.truncated")
            target = ((length & 0x3F) << 8) | buf[pos + 1]
            if after is None:
                after = pos + 2
            if target >= run_start or target < HEADER_LEN:
                raise WireError("dns.bad_pointer")
            hops += 1
            if hops > MAX_POINTER_HOPS:
                raise WireError("dns.too_many_pointers")
            pos = run_start = target
            continue
        if length & 0xC0:
            raise WireError("dns.bad_label_type")  # 01 and 10 prefixes: RFC 6891 / reserved
        if length == 0:
            return ".".join(labels), (after if after is not None else pos + 1)
        wire_len += 1 + length
        if wire_len > MAX_NAME_LEN:
            raise WireError("dns.name_too_long")
        end = pos + 1 + length
        if end > n:
            raise WireError("dns.truncated")
        labels.append(_label_text(buf[pos + 1:end]))
        pos = end


def _label_text(raw: bytes) -> str:
    if all(b in _PLAIN for b in raw):
        return raw.decode("ascii")
    return "".join(chr(b) if b in _PLAIN else f"\\{b:03d}" for b in raw)


# ---------------------------------------------------------------------- building


def name_labels(name: str) -> list[bytes]:
    """Split a presentation-format name into wire labels; ValueError if it cannot be a DNS name."""
    if name in ("", "."):
        return []
    labels: list[bytes] = []
    label = bytearray()
    i, n = 0, len(name)
    while i < n:
        c = name[i]
        if c == "\\":
            digits = name[i + 1:i + 4]
            if len(digits) == 3 and all(d in "0123456789" for d in digits):
                value = int(digits)
                if value > 255:
                    raise ValueError(f"bad escape in {name!r}")
                label.append(value)
                i += 4
                continue
            if i + 1 >= n:
                raise ValueError(f"dangling backslash in {name!r}")
            label += name[i + 1].encode("ascii")
            i += 2
            continue
        if c == ".":
            if not label:
                raise ValueError(f"empty label in {name!r}")
            labels.append(bytes(label))
            label.clear()
            if i == n - 1:  # a trailing dot: fully qualified
                break
        else:
            try:
                label += c.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError(f"non-ASCII name {name!r} (IDNA is not supported)") from None
        i += 1
    else:
        labels.append(bytes(label))
    for lab in labels:
        if not lab or len(lab) > MAX_LABEL_LEN:
            raise ValueError(f"label of {len(lab)} octets in {name!r}")
    if sum(len(lab) + 1 for lab in labels) + 1 > MAX_NAME_LEN:
        raise ValueError(f"name {name!r} is longer than 255 octets")
    return labels


class _Writer:
    """Appends to a message, compressing names against suffixes already written (RFC 1035 4.1.4)."""

    def __init__(self, compress: bool) -> None:
        self.out = bytearray()
        self.compress = compress
        self.seen: dict[tuple[bytes, ...], int] = {}

    def name(self, name: str) -> None:
        labels = name_labels(name)
        for i in range(len(labels)):
            key = tuple(lab.lower() for lab in labels[i:])
            offset = self.seen.get(key) if self.compress else None
            if offset is not None:
                self.out += (0xC000 | offset).to_bytes(2, "big")
                return
            if len(self.out) < 0x4000:
                self.seen.setdefault(key, len(self.out))
            self.out.append(len(labels[i]))
            self.out += labels[i]
        self.out.append(0)

    def record(self, rec: Record) -> None:
        self.name(rec.name)
        self.out += _RR_FIXED.pack(rec.rtype, rec.rclass, rec.ttl & 0xFFFFFFFF, 0)
        start = len(self.out)
        data = rec.rdata
        if isinstance(data, int):
            self.out += data.to_bytes(4, "big")
        elif isinstance(data, ipaddress.IPv6Address):
            self.out += data.packed
        elif isinstance(data, str):
            self.name(data)
        elif isinstance(data, Soa):
            self.name(data.mname)
            self.name(data.rname)
            self.out += _SOA_FIXED.pack(data.serial, data.refresh, data.retry, data.expire, data.minimum)
        else:
            self.out += data
        rdlength = len(self.out) - start
        if rdlength > 0xFFFF:
            raise ValueError("RDATA longer than 65535 octets")
        self.out[start - 2:start] = rdlength.to_bytes(2, "big")


def build(msg: DnsMessage, compress: bool = True) -> bytes:
    w = _Writer(compress)
    w.out += _HEADER.pack(msg.id, msg.flags, len(msg.questions), len(msg.answers), len(msg.authority),
                          len(msg.additional))
    for q in msg.questions:
        w.name(q.name)
        w.out += _QUESTION_FIXED.pack(q.qtype, q.qclass)
    for section in (msg.answers, msg.authority, msg.additional):
        for rec in section:
            w.record(rec)
    return bytes(w.out)


def build_query(ident: int, name: str, qtype: int = TYPE_A, recursion_desired: bool = True) -> bytes:
    """A standard query for one question (RFC 1035 section 4.1.1), as a stub resolver sends it."""
    return build(DnsMessage(ident, FLAG_RD if recursion_desired else 0, [Question(name, qtype, CLASS_IN)]))
