"""BOOTP/DHCP messages (RFC 951, RFC 2131) with their options (RFC 2132).

Options are kept as raw bytes keyed by code; the typed properties of :class:`DhcpMessage` decode the
ones a client needs. Every option the properties decode is length-checked at parse time, so reading
a property never raises. A parse raises :class:`WireError` with a ``dhcp.*`` reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pystack.wire.errors import WireError

SERVER_PORT = 67
CLIENT_PORT = 68

OP_REQUEST = 1
OP_REPLY = 2
HTYPE_ETHERNET = 1
MAGIC_COOKIE = 0x63825363
FLAG_BROADCAST = 0x8000
"""RFC 2131 section 2, figure 2: the B flag asks servers to broadcast their answers."""

FIXED_LEN = 236
"""op .. file, before the magic cookie (RFC 2131 figure 1)."""
MIN_LEN = FIXED_LEN + 4
BOOTP_MIN_LEN = 300
"""RFC 1542 section 2.1: relay agents may drop BOOTP messages shorter than 300 octets; we pad to it."""

# Message types, option 53 (RFC 2132 section 9.6).
DISCOVER = 1
OFFER = 2
REQUEST = 3
DECLINE = 4
ACK = 5
NAK = 6
RELEASE = 7
INFORM = 8
MESSAGE_TYPE_NAMES = {DISCOVER: "DHCPDISCOVER", OFFER: "DHCPOFFER", REQUEST: "DHCPREQUEST",
                      DECLINE: "DHCPDECLINE", ACK: "DHCPACK", NAK: "DHCPNAK", RELEASE: "DHCPRELEASE",
                      INFORM: "DHCPINFORM"}

# Option codes (RFC 2132).
OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOSTNAME = 12
OPT_DOMAIN = 15
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMETER_LIST = 55
OPT_MESSAGE = 56
OPT_MAX_MESSAGE_SIZE = 57
OPT_T1 = 58
OPT_T2 = 59
OPT_CLIENT_ID = 61
OPT_END = 255

INFINITE_LEASE = 0xFFFFFFFF
"""RFC 2131 section 3.3: a lease time of all ones means infinity."""

_HEADER = struct.Struct("!BBBBIHHIIII16s64s128sI")

# Length rules for the options we decode: exact length, or (minimum, multiple of).
_EXACT = {OPT_SUBNET_MASK: 4, OPT_REQUESTED_IP: 4, OPT_LEASE_TIME: 4, OPT_SERVER_ID: 4, OPT_T1: 4, OPT_T2: 4,
          OPT_MESSAGE_TYPE: 1, OPT_OVERLOAD: 1, OPT_MAX_MESSAGE_SIZE: 2}
_MULTIPLE = {OPT_ROUTER: (4, 4), OPT_DNS: (4, 4), OPT_HOSTNAME: (1, 1), OPT_DOMAIN: (1, 1),
             OPT_PARAMETER_LIST: (1, 1), OPT_CLIENT_ID: (2, 1)}


@dataclass(slots=True)
class DhcpMessage:
    """One BOOTP message. Addresses are ints; ``chaddr`` is the 6-byte MAC (Ethernet only)."""

    op: int
    xid: int
    chaddr: bytes
    options: dict[int, bytes] = field(default_factory=dict)
    """Raw option values by code, in order; repeated codes are concatenated (RFC 3396)."""
    secs: int = 0
    flags: int = 0
    ciaddr: int = 0
    yiaddr: int = 0
    siaddr: int = 0
    giaddr: int = 0
    hops: int = 0
    sname: bytes = b""
    file: bytes = b""

    # ---- typed options (validated by parse; None when absent)

    @property
    def message_type(self) -> int | None:
        v = self.options.get(OPT_MESSAGE_TYPE)
        return v[0] if v else None

    @property
    def subnet_mask(self) -> int | None:
        return _u32(self.options.get(OPT_SUBNET_MASK))

    @property
    def routers(self) -> list[int]:
        return _addresses(self.options.get(OPT_ROUTER))

    @property
    def dns_servers(self) -> list[int]:
        return _addresses(self.options.get(OPT_DNS))

    @property
    def domain(self) -> str | None:
        v = self.options.get(OPT_DOMAIN)
        # Some servers NUL-terminate strings (RFC 2132 section 2 says they should not).
        return v.rstrip(b"\x00").decode("ascii", "replace") if v else None

    @property
    def requested_ip(self) -> int | None:
        return _u32(self.options.get(OPT_REQUESTED_IP))

    @property
    def lease_time(self) -> int | None:
        return _u32(self.options.get(OPT_LEASE_TIME))

    @property
    def server_id(self) -> int | None:
        return _u32(self.options.get(OPT_SERVER_ID))

    @property
    def t1(self) -> int | None:
        return _u32(self.options.get(OPT_T1))

    @property
    def t2(self) -> int | None:
        return _u32(self.options.get(OPT_T2))

    @property
    def client_id(self) -> bytes | None:
        return self.options.get(OPT_CLIENT_ID)

    @property
    def parameter_list(self) -> bytes | None:
        return self.options.get(OPT_PARAMETER_LIST)

    @property
    def server_message(self) -> str | None:
        v = self.options.get(OPT_MESSAGE)
        return v.rstrip(b"\x00").decode("ascii", "replace") if v else None


def _u32(value: bytes | None) -> int | None:
    return int.from_bytes(value, "big") if value is not None else None


def _addresses(value: bytes | None) -> list[int]:
    if not value:
        return []
    return [int.from_bytes(value[i:i + 4], "big") for i in range(0, len(value), 4)]


def parse(data: bytes | memoryview) -> DhcpMessage:
    """Parse a BOOTP message carrying DHCP options (the magic cookie is required: we speak DHCP only)."""
    if len(data) < MIN_LEN:
        raise WireError("dhcp.truncated")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname, file,
     cookie) = _HEADER.unpack_from(data)
    if op not in (OP_REQUEST, OP_REPLY):
        raise WireError("dhcp.bad_op")
    if htype != HTYPE_ETHERNET or hlen != 6:
        raise WireError("dhcp.unsupported_hardware")
    if cookie != MAGIC_COOKIE:
        raise WireError("dhcp.bad_cookie")
    options: dict[int, bytes] = {}
    _read_options(memoryview(data)[MIN_LEN:], options)
    # RFC 2131 section 4.1 and RFC 2132 section 9.3: with option overload, 'file' then 'sname' carry options.
    overload = options.get(OPT_OVERLOAD)
    if overload is not None:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise WireError("dhcp.bad_option")
        if overload[0] & 1:
            _read_options(memoryview(file), options)
        if overload[0] & 2:
            _read_options(memoryview(sname), options)
    for code, value in options.items():
        _check_length(code, value)
    return DhcpMessage(op=op, xid=xid, chaddr=chaddr[:6], options=options, secs=secs, flags=flags,
                       ciaddr=ciaddr, yiaddr=yiaddr, siaddr=siaddr, giaddr=giaddr, hops=hops,
                       sname=b"" if overload is not None and overload[0] & 2 else sname.rstrip(b"\x00"),
                       file=b"" if overload is not None and overload[0] & 1 else file.rstrip(b"\x00"))


def _read_options(area: memoryview, options: dict[int, bytes]) -> None:
    """Walk one option area up to its end option (RFC 2132 section 2); repeats concatenate (RFC 3396)."""
    pos, n = 0, len(area)
    while pos < n:
        code = area[pos]
        if code == OPT_PAD:
            pos += 1
            continue
        if code == OPT_END:
            return
        if pos + 2 > n:
            raise WireError("dhcp.bad_option")
        length = area[pos + 1]
        if pos + 2 + length > n:
            raise WireError("dhcp.bad_option")
        value = bytes(area[pos + 2:pos + 2 + length])
        options[code] = options[code] + value if code in options else value
        pos += 2 + length
    raise WireError("dhcp.no_end_option")  # RFC 2131 section 4.1: the last option must be 'end'


def _check_length(code: int, value: bytes) -> None:
    exact = _EXACT.get(code)
    if exact is not None:
        if len(value) != exact:
            raise WireError("dhcp.bad_option")
        return
    rule = _MULTIPLE.get(code)
    if rule is not None and (len(value) < rule[0] or len(value) % rule[1]):
        raise WireError("dhcp.bad_option")


def build(msg: DhcpMessage) -> bytes:
    """Serialise ``msg``: options in dict order, then 'end', padded to the BOOTP minimum of 300 octets."""
    if len(msg.chaddr) != 6:
        raise ValueError("chaddr must be a 6-byte MAC")
    if len(msg.sname) > 64 or len(msg.file) > 128:
        raise ValueError("sname or file too long")
    head = _HEADER.pack(msg.op, HTYPE_ETHERNET, 6, msg.hops, msg.xid, msg.secs, msg.flags, msg.ciaddr,
                        msg.yiaddr, msg.siaddr, msg.giaddr, msg.chaddr, msg.sname, msg.file, MAGIC_COOKIE)
    out = bytearray(head)
    for code, value in msg.options.items():
        if not 0 < code < OPT_END:
            raise ValueError(f"option code {code} cannot carry a value")
        # RFC 3396: a value longer than 255 octets is split into several options of the same code.
        chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [b""]
        for chunk in chunks:
            out += bytes((code, len(chunk))) + chunk
    out.append(OPT_END)
    if len(out) < BOOTP_MIN_LEN:
        out += bytes(BOOTP_MIN_LEN - len(out))
    return bytes(out)


def option_u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def option_addresses(addresses: list[int]) -> bytes:
    return b"".join(option_u32(a) for a in addresses)
