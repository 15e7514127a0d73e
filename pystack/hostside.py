"""Configure the kernel's side of the TAP (address, MTU, up) with pyroute2, for ``--host-address``."""

from __future__ import annotations

import ipaddress

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError


class HostSideError(Exception):
    """One line for the user."""


def configure_host_side(ifname: str, interface: ipaddress.IPv4Interface, mtu: int) -> None:
    """Give the kernel's end of ``ifname`` an address and bring it up (idempotent: EEXIST is fine)."""
    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            raise HostSideError(f"interface {ifname} not found")
        index = links[0]
        try:
            ipr.link("set", index=index, mtu=mtu)
            ipr.link("set", index=index, state="up")
            ipr.addr("add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen)
        except NetlinkError as exc:
            if exc.code != 17:  # EEXIST: the address is already there
                raise HostSideError(f"cannot configure {ifname}: {exc}") from None
