"""DHCPv6 messages (RFC 8415 section 8) and the options a client needs (RFC 8415 section 21, RFC 3646).

A client-server message is a one-byte type, a three-byte transaction ID and options, each a two-byte
code, a two-byte length and its value; IA_NA and IAADDR carry options of their own. The options pystack
uses are decoded into :class:`Dhcp6Message`'s fields and length-checked at parse time; others are skipped.
Relay messages (types 12 and 13) are for relays, not clients, and are refused. A parse raises
:class:`WireError` with a ``dhcp6.*`` reason; option counts are bounded so a crafted message cannot make
the parser build large tables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeVar

from pystack.wire.errors import WireError

CLIENT_PORT = 546
SERVER_PORT = 547
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = 0xFF02 << 112 | 0x1_0002
"""ff02::1:2, where a client sends every message (RFC 8415 section 7.1)."""

# Message types (RFC 8415 section 7.3).
SOLICIT = 1
ADVERTISE = 2
REQUEST = 3
CONFIRM = 4
RENEW = 5
REBIND = 6
REPLY = 7
RELEASE = 8
DECLINE = 9
RECONFIGURE = 10
INFORMATION_REQUEST = 11
RELAY_FORW = 12
RELAY_REPL = 13
MESSAGE_NAMES = {SOLICIT: "Solicit", ADVERTISE: "Advertise", REQUEST: "Request", CONFIRM: "Confirm",
                 RENEW: "Renew", REBIND: "Rebind", REPLY: "Reply", RELEASE: "Release", DECLINE: "Decline",
                 RECONFIGURE: "Reconfigure", INFORMATION_REQUEST: "Information-Request"}

# Option codes (RFC 8415 section 21, RFC 3646 for 23 and 24).
OPT_CLIENTID = 1
OPT_SERVERID = 2
OPT_IA_NA = 3
OPT_IAADDR = 5
OPT_ORO = 6
OPT_PREFERENCE = 7
OPT_ELAPSED_TIME = 8
OPT_STATUS_CODE = 13
OPT_RAPID_COMMIT = 14
OPT_DNS_SERVERS = 23
OPT_DOMAIN_LIST = 24
OPT_INFORMATION_REFRESH_TIME = 32
OPT_SOL_MAX_RT = 82
OPT_INF_MAX_RT = 83

# Status codes (RFC 8415 section 21.13).
SUCCESS = 0
UNSPEC_FAIL = 1
NO_ADDRS_AVAIL = 2
NO_BINDING = 3
NOT_ON_LINK = 4
USE_MULTICAST = 5
STATUS_NAMES = {SUCCESS: "Success", UNSPEC_FAIL: "UnspecFail", NO_ADDRS_AVAIL: "NoAddrsAvail",
                NO_BINDING: "NoBinding", NOT_ON_LINK: "NotOnLink", USE_MULTICAST: "UseMulticast",
                6: "NoPrefixAvail"}

INFINITY = 0xFFFFFFFF
"""A lifetime or T1/T2 of all ones means infinity (RFC 8415 section 7.7)."""

DUID_LLT = 1
DUID_LL = 3
HW_ETHERNET = 1
MAX_DUID_LEN = 130
"""Two bytes of DUID type and at most 128 of identifier (RFC 8415 section 11.1)."""

MAX_OPTIONS = 64
"""Options in one message, or inside one IA_NA or IAADDR: beyond it the message is refused."""
MAX_IA_ADDRESSES = 16
"""IAADDR options in one IA_NA."""
MAX_NAME_SERVERS = 16
MAX_DOMAINS = 16

HEADER_LEN = 4
_OPTION = struct.Struct("!HH")
_IA_NA = struct.Struct("!III")
_IAADDR = struct.Struct("!16sII")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Status:
    code: int
    message: str = ""

    @property
    def name(self) -> str:
        return STATUS_NAMES.get(self.code, f"status {self.code}")


@dataclass(frozen=True, slots=True)
class IaAddress:
    """An IAADDR option (RFC 8415 section 21.6): lifetimes in seconds, :data:`INFINITY` for infinite."""

    address: int
    preferred: int
    valid: int
    status: Status | None = None


@dataclass(frozen=True, slots=True)
class IaNa:
    """An IA_NA option (RFC 8415 section 21.4)."""

    iaid: int
    t1: int = 0
    t2: int = 0
    addresses: tuple[IaAddress, ...] = ()
    status: Status | None = None


@dataclass(slots=True)
class Dhcp6Message:
    msg_type: int
    xid: int
    """The 24-bit transaction ID."""
    client_id: bytes | None = None
    server_id: bytes | None = None
    ia_na: tuple[IaNa, ...] = ()
    oro: tuple[int, ...] = ()
    elapsed: int | None = None
    """Hundredths of a second since the client began the exchange."""
    status: Status | None = None
    preference: int | None = None
    dns_servers: tuple[int, ...] = ()
    domains: tuple[str, ...] = ()
    refresh_time: int | None = None
    sol_max_rt: int | None = None
    rapid_commit: bool = False
    unknown: list[int] = field(default_factory=list)
    """Codes of options skipped (not decoded here)."""

    @property
    def name(self) -> str:
        return MESSAGE_NAMES.get(self.msg_type, f"type {self.msg_type}")


def duid_ll(mac: bytes) -> bytes:
    """DUID-LL (RFC 8415 section 11.4): type 3, hardware type 1 and the MAC. Stable across restarts
    without storage, which DUID-LLT would need."""
    return struct.pack("!HH", DUID_LL, HW_ETHERNET) + mac


# ---------------------------------------------------------------------- parse


def parse(data: bytes | memoryview) -> Dhcp6Message:
    view = memoryview(data)
    if len(view) < HEADER_LEN:
        raise WireError("dhcp6.truncated")
    msg_type = view[0]
    if msg_type in (RELAY_FORW, RELAY_REPL):
        raise WireError("dhcp6.relay_message")
    if msg_type == 0 or msg_type not in MESSAGE_NAMES:
        raise WireError("dhcp6.unknown_message_type")
    msg = Dhcp6Message(msg_type, int.from_bytes(view[1:4], "big"))
    ia: list[IaNa] = []
    for code, value in _options(view[HEADER_LEN:]):
        if code == OPT_CLIENTID:
            msg.client_id = _once(msg.client_id, _duid(value))
        elif code == OPT_SERVERID:
            msg.server_id = _once(msg.server_id, _duid(value))
        elif code == OPT_IA_NA:
            ia.append(_ia_na(value))
            if len(ia) > MAX_IA_ADDRESSES:
                raise WireError("dhcp6.too_many_ia")
        elif code == OPT_ORO:
            if len(value) % 2:
                raise WireError("dhcp6.bad_oro")
            msg.oro = _once(msg.oro or None, tuple(struct.unpack(f"!{len(value) // 2}H", value)))
        elif code == OPT_ELAPSED_TIME:
            msg.elapsed = _once(msg.elapsed, _u16(value, "dhcp6.bad_elapsed_time"))
        elif code == OPT_STATUS_CODE:
            msg.status = _once(msg.status, _status(value))
        elif code == OPT_PREFERENCE:
            if len(value) != 1:
                raise WireError("dhcp6.bad_preference")
            msg.preference = _once(msg.preference, value[0])
        elif code == OPT_DNS_SERVERS:
            msg.dns_servers = _once(msg.dns_servers or None, _addresses(value))
        elif code == OPT_DOMAIN_LIST:
            msg.domains = _once(msg.domains or None, _domain_list(value))
        elif code == OPT_INFORMATION_REFRESH_TIME:
            msg.refresh_time = _once(msg.refresh_time, _u32(value, "dhcp6.bad_refresh_time"))
        elif code == OPT_SOL_MAX_RT:
            msg.sol_max_rt = _once(msg.sol_max_rt, _u32(value, "dhcp6.bad_sol_max_rt"))
        elif code == OPT_RAPID_COMMIT:
            if value:
                raise WireError("dhcp6.bad_rapid_commit")
            msg.rapid_commit = True
        else:
            msg.unknown.append(code)
    msg.ia_na = tuple(ia)
    return msg


def _options(view: memoryview) -> list[tuple[int, memoryview]]:
    """The (code, value) pairs of an option area, which must be filled exactly."""
    out: list[tuple[int, memoryview]] = []
    pos, end = 0, len(view)
    while pos < end:
        if end - pos < _OPTION.size:
            raise WireError("dhcp6.truncated_option")
        code, length = _OPTION.unpack_from(view, pos)
        pos += _OPTION.size
        if length > end - pos:
            raise WireError("dhcp6.truncated_option")
        out.append((code, view[pos:pos + length]))
        if len(out) > MAX_OPTIONS:
            raise WireError("dhcp6.too_many_options")
        pos += length
    return out


def _once(current: _T | None, value: _T) -> _T:
    """RFC 8415 section 21: these options appear once; a second one makes the message ambiguous."""
    if current is not None:
        raise WireError("dhcp6.duplicate_option")
    return value


def _duid(value: memoryview) -> bytes:
    if not 3 <= len(value) <= MAX_DUID_LEN:  # a type and at least one byte of identifier
        raise WireError("dhcp6.bad_duid")
    return bytes(value)


def _u16(value: memoryview, reason: str) -> int:
    if len(value) != 2:
        raise WireError(reason)
    return int.from_bytes(value, "big")


def _u32(value: memoryview, reason: str) -> int:
    if len(value) != 4:
        raise WireError(reason)
    return int.from_bytes(value, "big")


def _status(value: memoryview) -> Status:
    if len(value) < 2:
        raise WireError("dhcp6.bad_status_code")
    return Status(int.from_bytes(value[:2], "big"), bytes(value[2:]).decode("utf-8", "replace"))


def _addresses(value: memoryview) -> tuple[int, ...]:
    if not value or len(value) % 16:
        raise WireError("dhcp6.bad_address_list")
    count = len(value) // 16
    if count > MAX_NAME_SERVERS:
        raise WireError("dhcp6.too_many_servers")
    return tuple(int.from_bytes(value[i * 16:i * 16 + 16], "big") for i in range(count))


def _domain_list(value: memoryview) -> tuple[str, ...]:
    """Uncompressed DNS names one after another (RFC 8415 section 10, RFC 3646 section 4)."""
    names: list[str] = []
    pos, end = 0, len(value)
    if not end:
        raise WireError("dhcp6.bad_domain_list")
    while pos < end:
        labels: list[str] = []
        length = 0
        while True:
            if pos >= end:
                raise WireError("dhcp6.bad_domain_list")  # a name without its root label
            size = value[pos]
            pos += 1
            if size == 0:
                break
            if size > 63 or pos + size > end:
                raise WireError("dhcp6.bad_domain_list")
            length += size + 1
            if length > 254:
                raise WireError("dhcp6.bad_domain_list")
            labels.append(bytes(value[pos:pos + size]).decode("ascii", "replace"))
            pos += size
        if labels:
            names.append(".".join(labels))
        if len(names) > MAX_DOMAINS:
            raise WireError("dhcp6.too_many_domains")
    return tuple(names)


def _ia_na(value: memoryview) -> IaNa:
    if len(value) < _IA_NA.size:
        raise WireError("dhcp6.bad_ia_na")
    iaid, t1, t2 = _IA_NA.unpack_from(value)
    addresses: list[IaAddress] = []
    status: Status | None = None
    for code, inner in _options(value[_IA_NA.size:]):
        if code == OPT_IAADDR:
            addresses.append(_iaaddr(inner))
            if len(addresses) > MAX_IA_ADDRESSES:
                raise WireError("dhcp6.too_many_addresses")
        elif code == OPT_STATUS_CODE:
            status = _once(status, _status(inner))
    return IaNa(iaid, t1, t2, tuple(addresses), status)


def _iaaddr(value: memoryview) -> IaAddress:
    if len(value) < _IAADDR.size:
        raise WireError("dhcp6.bad_iaaddr")
    raw, preferred, valid = _IAADDR.unpack_from(value)
    status: Status | None = None
    for code, inner in _options(value[_IAADDR.size:]):
        if code == OPT_STATUS_CODE:
            status = _once(status, _status(inner))
    return IaAddress(int.from_bytes(raw, "big"), preferred, valid, status)


# ---------------------------------------------------------------------- build


def build(msg: Dhcp6Message) -> bytes:
    parts = [bytes([msg.msg_type]) + (msg.xid & 0xFFFFFF).to_bytes(3, "big")]
    if msg.client_id is not None:
        parts.append(option(OPT_CLIENTID, msg.client_id))
    if msg.server_id is not None:
        parts.append(option(OPT_SERVERID, msg.server_id))
    for ia in msg.ia_na:
        parts.append(build_ia_na(ia))
    if msg.oro:
        parts.append(option(OPT_ORO, struct.pack(f"!{len(msg.oro)}H", *msg.oro)))
    if msg.elapsed is not None:
        parts.append(option(OPT_ELAPSED_TIME, msg.elapsed.to_bytes(2, "big")))
    if msg.status is not None:
        parts.append(build_status(msg.status))
    if msg.preference is not None:
        parts.append(option(OPT_PREFERENCE, bytes([msg.preference])))
    if msg.dns_servers:
        parts.append(option(OPT_DNS_SERVERS, b"".join(a.to_bytes(16, "big") for a in msg.dns_servers)))
    if msg.domains:
        parts.append(option(OPT_DOMAIN_LIST, b"".join(encode_name(d) for d in msg.domains)))
    if msg.refresh_time is not None:
        parts.append(option(OPT_INFORMATION_REFRESH_TIME, msg.refresh_time.to_bytes(4, "big")))
    if msg.sol_max_rt is not None:
        parts.append(option(OPT_SOL_MAX_RT, msg.sol_max_rt.to_bytes(4, "big")))
    if msg.rapid_commit:
        parts.append(option(OPT_RAPID_COMMIT, b""))
    return b"".join(parts)


def option(code: int, value: bytes) -> bytes:
    return _OPTION.pack(code, len(value)) + value


def build_status(status: Status) -> bytes:
    return option(OPT_STATUS_CODE, status.code.to_bytes(2, "big") + status.message.encode())


def build_ia_na(ia: IaNa) -> bytes:
    inner = [_IA_NA.pack(ia.iaid, ia.t1, ia.t2)]
    for addr in ia.addresses:
        body = _IAADDR.pack(addr.address.to_bytes(16, "big"), addr.preferred, addr.valid)
        if addr.status is not None:
            body += build_status(addr.status)
        inner.append(option(OPT_IAADDR, body))
    if ia.status is not None:
        inner.append(build_status(ia.status))
    return option(OPT_IA_NA, b"".join(inner))


def encode_name(name: str) -> bytes:
    labels = [label for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\x00"
