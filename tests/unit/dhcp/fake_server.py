"""A small scripted DHCP server for the client's tests: it answers the way RFC 2131 section 4.3 says,
unless a test tells it to misbehave. It shares no code with the client beyond the wire format."""

from __future__ import annotations

from dataclasses import dataclass, field

from pystack.wire import dhcp
from pystack.wire.dhcp import DhcpMessage

SERVER = 0xC0000201  # 192.0.2.1
OTHER_SERVER = 0xC0000203
OFFERED = 0xC0000264  # 192.0.2.100
DNS1 = 0xC0000201
CLIENT_MAC = bytes.fromhex("020000000002")


@dataclass
class FakeServer:
    server_id: int = SERVER
    address: int = OFFERED
    lease: int = 3600
    t1: int | None = None
    t2: int | None = None
    mask: int | None = 0xFFFFFF00
    routers: list[int] = field(default_factory=lambda: [SERVER])
    dns: list[int] = field(default_factory=lambda: [DNS1])
    domain: bytes | None = b"example.test"
    nak_requests: bool = False
    """Answer every REQUEST with a NAK."""
    ignore_requests: bool = False
    ignore_discovers: bool = False
    seen: list[DhcpMessage] = field(default_factory=list)

    def answer(self, payload: bytes) -> list[bytes]:
        """The replies to one client datagram (as the payloads the server would broadcast)."""
        msg = dhcp.parse(payload)
        self.seen.append(msg)
        mtype = msg.message_type
        if mtype == dhcp.DISCOVER and not self.ignore_discovers:
            return [self.reply(msg, dhcp.OFFER)]
        if mtype == dhcp.REQUEST and not self.ignore_requests:
            selected = msg.options.get(dhcp.OPT_SERVER_ID)
            if selected is not None and int.from_bytes(selected, "big") != self.server_id:
                return []  # the client chose another server (RFC 2131 4.3.2): its REQUEST declines us
            if self.nak_requests:
                return [self.reply(msg, dhcp.NAK)]
            return [self.reply(msg, dhcp.ACK)]
        return []

    def reply(self, request: DhcpMessage, mtype: int, **overrides) -> bytes:
        options = {dhcp.OPT_MESSAGE_TYPE: bytes([mtype]), dhcp.OPT_SERVER_ID: dhcp.option_u32(self.server_id)}
        yiaddr = 0
        if mtype in (dhcp.OFFER, dhcp.ACK):
            yiaddr = self.address
            options[dhcp.OPT_LEASE_TIME] = dhcp.option_u32(self.lease)
            if self.t1 is not None:
                options[dhcp.OPT_T1] = dhcp.option_u32(self.t1)
            if self.t2 is not None:
                options[dhcp.OPT_T2] = dhcp.option_u32(self.t2)
            if self.mask is not None:
                options[dhcp.OPT_SUBNET_MASK] = dhcp.option_u32(self.mask)
            if self.routers:
                options[dhcp.OPT_ROUTER] = dhcp.option_addresses(self.routers)
            if self.dns:
                options[dhcp.OPT_DNS] = dhcp.option_addresses(self.dns)
            if self.domain is not None:
                options[dhcp.OPT_DOMAIN] = self.domain
        if request.client_id is not None:
            options[dhcp.OPT_CLIENT_ID] = request.client_id  # RFC 6842
        fields = dict(op=dhcp.OP_REPLY, xid=request.xid, chaddr=request.chaddr, yiaddr=yiaddr,
                      flags=request.flags, options=options)
        fields.update(overrides)
        return dhcp.build(DhcpMessage(**fields))
