"""Configure the kernel's side of the TAP (address, MTU, up) with pyroute2, for ``--host-address`` and
``--host-address6``."""

from __future__ import annotations

import ipaddress

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

IFA_F_NODAD = 0x02
"""linux/if_addr.h: the kernel uses the IPv6 address at once, without duplicate address detection's
second of waiting (pystack is the only other node on the TAP)."""


class HostSideError(Exception):
    """One line for the user."""


def configure_host_side(ifname: str, interface: ipaddress.IPv4Interface | None, mtu: int,
                        interface6: ipaddress.IPv6Interface | None = None) -> None:
    """Give the kernel's end of ``ifname`` its addresses and bring it up (idempotent: EEXIST is fine)."""
    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            raise HostSideError(f"interface {ifname} not found")
        index = links[0]
        try:
            ipr.link("set", index=index, mtu=mtu)
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise HostSideError(f"cannot configure {ifname}: {exc}") from None
        if interface is not None:
            _add(ipr, ifname, index, interface, 0)
        if interface6 is not None:
            _add(ipr, ifname, index, interface6, IFA_F_NODAD)


def _add(ipr: IPRoute, ifname: str, index: int, interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
         flags: int) -> None:
    try:
        ipr.addr("add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen, flags=flags)
    except NetlinkError as exc:
        if exc.code == 17:  # EEXIST: the address is already there
            return
        why = " (is IPv6 disabled on it? net.ipv6.conf.*.disable_ipv6)" if interface.version == 6 else ""
        raise HostSideError(f"cannot give {ifname} the address {interface}: {exc}{why}") from None
