"""Opening the link the way the daemon and the client commands both need it: the pcap file, the TAP,
and optionally the kernel's side of the TAP. Any failure is one :class:`LinkSetupError` line."""

from __future__ import annotations

import ipaddress

from pystack.hostside import HostSideError, configure_host_side
from pystack.link.pcap import PcapWriter
from pystack.link.pcapng import PcapngWriter
from pystack.link.tap import TapError, TapLink

CaptureWriter = PcapWriter | PcapngWriter
"""``--pcap FILE``: pcapng, with each sent frame's reason as its comment, when FILE ends in .pcapng."""


class LinkSetupError(Exception):
    """One line for the user: what could not be opened, and why."""


def open_link(tap: str, mtu: int, *, offload: bool = False, pcap: str | None = None,
              host_address: ipaddress.IPv4Interface | None = None,
              fd: int | None = None,
              host_address6: ipaddress.IPv6Interface | None = None) -> tuple[TapLink, CaptureWriter | None]:
    """The TAP (created or attached, or the one open as descriptor ``fd``), its kernel side configured
    when asked, and the capture writer."""
    try:
        writer: CaptureWriter | None = None
        if pcap:
            writer = PcapngWriter(pcap, tap) if pcap.endswith(".pcapng") else PcapWriter(pcap)
    except OSError as exc:
        raise LinkSetupError(f"cannot write pcap file {pcap}: {exc.strerror}") from None
    try:
        link = TapLink(tap, mtu, offload=offload) if fd is None else TapLink.from_fd(fd, offload=offload)
    except TapError as exc:
        if writer is not None:
            writer.close()
        raise LinkSetupError(str(exc)) from None
    if host_address is not None or host_address6 is not None:
        try:
            configure_host_side(link.name, host_address, mtu, host_address6)
        except HostSideError as exc:
            link.close()
            if writer is not None:
                writer.close()
            raise LinkSetupError(str(exc)) from None
    return link, writer
