"""DNS servers of either IP version: how they are named, read, written, and listed as a host lists them.

A server is a :class:`pystack.api.families.Where` (the version whose layers carry the question, and the
address as an int of that version's width), the one way pystack names an address of either family: the
resolver, the blocking driver, the session and ``--dns`` all use it. :func:`listed` is the one home of
the order: what a Linux host's resolv.conf ends up with when DHCPv4 (RFC 2132 option 6), the routers'
advertisements (RDNSS, RFC 8106) and DHCPv6 (RFC 3646) each name some, glibc reading at most
:data:`MAXNS` of them and asking them in order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from pystack.api.families import V4, V6, Where

MAXNS = 3
"""Servers glibc's resolver takes from resolv.conf (resolv.h's MAXNS); the rest are never asked."""


def parse(text: str) -> Where:
    """``192.0.2.1`` or ``2001:db8::1`` (a ``%scope`` is ignored: pystack has one interface). ValueError
    for anything else."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    return Where(address.version, int(address))


def text(server: Where) -> str:
    """The address alone, as resolv.conf writes it: ``192.0.2.1``, ``2001:db8::1``."""
    return str(ipaddress.IPv4Address(server.ip) if server.version == V4 else ipaddress.IPv6Address(server.ip))


def texts(servers: Iterable[Where]) -> str:
    return ", ".join(text(s) for s in servers) or "none"


def listed(dhcp4: Sequence[int] = (), rdnss: Sequence[int] = (), dhcp6: Sequence[int] = ()) -> list[Where]:
    """Every source's servers in the order a Linux host lists them (the DHCPv4 lease's, then those the
    routers advertise, then DHCPv6's), each once."""
    found = [Where(V4, a) for a in dhcp4] + [Where(V6, a) for a in (*rdnss, *dhcp6)]
    return list(dict.fromkeys(found))


def of_family(servers: Sequence[Where], version: int) -> list[Where]:
    """The servers a question goes to when only IP ``version`` may carry it (0: either), at most MAXNS."""
    return [s for s in servers if not version or s.version == version][:MAXNS]
