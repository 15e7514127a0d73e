"""Opening the link the way the daemon and the client commands both need it: the TAP (a TUN on the IP
medium, or a descriptor handed over), the pcap file, and optionally the kernel's side of the device.
Any failure is one :class:`LinkSetupError` line."""

from __future__ import annotations

import ipaddress

from pystack.hostside import HostSideError, configure_host_side
from pystack.link.fd import FdLink
from pystack.link.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter
from pystack.link.pcapng import PcapngWriter
from pystack.link.tap import TapError, TapLink
from pystack.link.tun import TunLink
from pystack.medium import Medium

CaptureWriter = PcapWriter | PcapngWriter
"""``--pcap FILE``: pcapng, with each sent frame's reason as its comment, when FILE ends in .pcapng."""


class LinkSetupError(Exception):
    """One line for the user: what could not be opened, and why."""


def open_link(tap: str, mtu: int, *, offload: bool = False, pcap: str | None = None,
              host_address: ipaddress.IPv4Interface | None = None,
              fd: int | None = None,
              host_address6: ipaddress.IPv6Interface | None = None,
              medium: Medium | None = None) -> tuple[TapLink, CaptureWriter | None]:
    """The link: the TAP named ``tap`` (created or attached; a TUN of that name on the IP ``medium``), or
    the device or socket open as descriptor ``fd`` (``medium`` found from it when None); its kernel side
    configured when asked; and the capture writer, in the link's format."""
    try:
        if fd is not None:
            link: TapLink = FdLink(fd, medium, offload=offload)
        elif medium is Medium.IP:
            link = TunLink(tap, mtu, offload=offload)
        else:
            link = TapLink(tap, mtu, offload=offload)
    except TapError as exc:
        raise LinkSetupError(str(exc)) from None
    try:
        writer: CaptureWriter | None = None
        if pcap:
            linktype = LINKTYPE_RAW if link.medium is Medium.IP else LINKTYPE_ETHERNET
            writer = (PcapngWriter(pcap, link.name, linktype) if pcap.endswith(".pcapng")
                      else PcapWriter(pcap, linktype))
    except OSError as exc:
        link.close()
        raise LinkSetupError(f"cannot write pcap file {pcap}: {exc.strerror}") from None
    if host_address is not None or host_address6 is not None:
        try:
            configure_host_side(link.name, host_address, mtu, host_address6)
        except HostSideError as exc:
            link.close()
            if writer is not None:
                writer.close()
            raise LinkSetupError(str(exc)) from None
    return link, writer
