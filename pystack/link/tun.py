"""The TUN link (IFF_TUN | IFF_NO_PI): the device a TAP is, carrying bare IP packets (pystack.medium's
IP medium) with no Ethernet header, so the stack on it needs no ARP.

As with a TAP, root is needed to create a TUN, not to use one: a persistent TUN made for a user (``ip
tuntap add mode tun user NAME``) and brought up by the administrator is attached to without privileges,
or its descriptor handed over (pystack.link.fd). With ``offload`` it carries the virtio-net header too,
as a TAP does: TCP super-packets both ways and partial checksums, found at the IP header (``link_len``
0) where a TAP's are 14 bytes in.
"""

from __future__ import annotations

import pytun

from pystack.link.tap import TapLink
from pystack.medium import Medium


class TunLink(TapLink):
    """Creates the TUN, or attaches to a persistent one of that name."""

    medium = Medium.IP
    KIND = "TUN"
    link_len = 0
    _DEVICE_FLAG = pytun.IFF_TUN
