"""A DHCPv6 server's answers built from the client's own messages, for the client's unit tests."""

from __future__ import annotations

from pystack.wire import dhcp6
from pystack.wire.dhcp6 import Dhcp6Message, IaAddress, IaNa, Status

SERVER_DUID = b"\x00\x01\x00\x01\x11\x22\x33\x44" + bytes.fromhex("020000000001")
OTHER_DUID = b"\x00\x03\x00\x01" + bytes.fromhex("0200000000ee")
LEASED = 0x2001_0DB8 << 96 | 0x100
DNS = 0x2001_0DB8 << 96 | 1


def sent(payload: bytes) -> Dhcp6Message:
    return dhcp6.parse(payload)


def answer(request: bytes, msg_type: int = dhcp6.REPLY, *, server_id: bytes = SERVER_DUID,
           addresses: tuple[int, ...] = (LEASED,), preferred: int = 3600, valid: int = 7200, t1: int = 1800,
           t2: int = 2880, preference: int | None = None, ia_status: Status | None = None,
           status: Status | None = None, dns: tuple[int, ...] = (DNS,), domains: tuple[str, ...] = ("example.test",),
           refresh: int | None = None, xid: int | None = None, client_id: bytes | None = None,
           sol_max_rt: int | None = None) -> bytes:
    """The server's Advertise or Reply to ``request`` (a payload the client sent)."""
    asked = sent(request)
    ia_na: tuple[IaNa, ...] = ()
    if asked.ia_na:
        ia_na = (IaNa(asked.ia_na[0].iaid, t1, t2, tuple(IaAddress(a, preferred, valid) for a in addresses),
                      ia_status),)
    return dhcp6.build(Dhcp6Message(
        msg_type, asked.xid if xid is None else xid, client_id=asked.client_id if client_id is None else client_id,
        server_id=server_id, ia_na=ia_na, preference=preference, status=status, dns_servers=dns, domains=domains,
        refresh_time=refresh, sol_max_rt=sol_max_rt))
