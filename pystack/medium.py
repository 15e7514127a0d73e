"""What the link carries: Ethernet frames (a TAP) or bare IP packets (a TUN).

The medium decides what the stack puts around a datagram and how it finds the next hop. On Ethernet a
frame has a 14-byte header and ARP (ND for IPv6) finds the next hop's MAC. On an IP medium there is no
link header and nothing to resolve: the device is point-to-point, every packet written reaches the peer
(the kernel behind the TUN, which routes it), and what is read is one IP packet, told from its version.
"""

from __future__ import annotations

import enum


class Medium(enum.Enum):
    ETHERNET = "ethernet"
    """Ethernet frames (RFC 894), next hops found by ARP: a TAP (IFF_TAP)."""
    IP = "ip"
    """Bare IPv4 and IPv6 packets, no link header and no next-hop resolution: a TUN (IFF_TUN), or any
    packet-keeping descriptor handed over (``--fd N --medium ip``)."""
