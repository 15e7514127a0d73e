"""The interface's IPv4 address, subnet and default gateway, and which addresses can never be a source."""

from __future__ import annotations

LIMITED_BROADCAST = 0xFFFFFFFF


def is_martian_source(ip: int) -> bool:
    """True for a source no datagram or ARP sender may carry: the limited broadcast, a multicast group
    (224/4) or a loopback address (127/8) (RFC 1122 3.2.1.3; Linux drops them as martians)."""
    return ip == LIMITED_BROADCAST or (ip >> 28) == 0xE or (ip >> 24) == 127


class Ipv4Address:
    """Our address on the link (or none yet, for DHCP), its subnet, and the default gateway
    (RFC 1122 3.3.1). The layers read these fields at every use: a new address takes effect at once."""

    __slots__ = ("address", "netmask", "gateway", "broadcast")

    def __init__(self) -> None:
        self.address: int | None = None
        self.netmask = 0
        self.gateway: int | None = None
        self.broadcast: int | None = None
        """The directed broadcast address of our subnet (None without an address, or for a /32)."""

    def configure(self, address: int, prefix_len: int, gateway: int | None) -> None:
        netmask = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF if prefix_len else 0
        self.address = address
        self.netmask = netmask
        self.gateway = gateway
        self.broadcast = None if netmask == 0xFFFFFFFF else (address & netmask) | (~netmask & 0xFFFFFFFF)

    def deconfigure(self) -> None:
        self.address = None
        self.netmask = 0
        self.gateway = None
        self.broadcast = None
