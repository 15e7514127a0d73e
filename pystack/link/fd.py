"""A link on a descriptor someone else opened and handed over (``pystack ... --fd N``; ``FdLink(fd)`` in
code), so pystack itself needs no privilege: a TAP or a TUN (``TUNGETIFF`` says which, and so what it
carries), or a datagram or seqpacket socket whose every message is one frame or packet, for which the
opener says what it carries (``--medium``, ``kind``).

The device's MTU and state are the opener's to set.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import struct

import pytun

from pystack.link.tap import TUNGETIFF, TapError, TapLink
from pystack.medium import Medium


def tun_device(fd: int) -> tuple[str, int] | None:
    """(name, TUNSETIFF flags) of the TUN/TAP device open as ``fd``, or None if it is not one."""
    try:
        ifreq = fcntl.ioctl(fd, TUNGETIFF, bytes(40))
    except OSError:
        return None
    return ifreq[:16].rstrip(b"\0").decode(errors="replace"), struct.unpack_from("H", ifreq, 16)[0]


def descriptor_medium(fd: int) -> Medium | None:
    """What the TUN/TAP device open as ``fd`` carries, or None when it is no such device."""
    device = tun_device(fd)
    if device is None:
        return None
    return Medium.IP if device[1] & pytun.IFF_TUN else Medium.ETHERNET


class FdLink(TapLink):
    """The TUN, TAP or packet socket open as ``fd``. ``kind`` is the medium it carries (a Medium, or
    "ethernet" / "ip"): found from the device when None, checked against it when given, and needed for a
    socket. Each message must be one whole frame or packet, with no packet-information header. With
    ``offload``, a device the opener set IFF_VNET_HDR on is asked for segmentation offload."""

    def __init__(self, fd: int, kind: Medium | str | None = None, offload: bool = False) -> None:
        try:
            medium = None if kind is None else Medium(kind)
        except ValueError:
            raise TapError(f"unknown medium {kind!r}: {' or '.join(m.value for m in Medium)}") from None
        device = tun_device(fd)
        vnet = False
        if device is None:
            name = f"fd{fd}"
            if not _keeps_messages(fd):
                raise TapError(f"descriptor {fd} is not a TUN/TAP device, nor a datagram or seqpacket socket "
                               "(its reads would not keep the packets apart)")
            if medium is None:
                raise TapError(f"descriptor {fd} is a socket, not a TUN/TAP device: say what its messages are "
                               "(--medium ip or --medium ethernet)")
        else:
            name, flags = device
            found = Medium.IP if flags & pytun.IFF_TUN else Medium.ETHERNET
            what = "a TUN (IP packets)" if found is Medium.IP else "a TAP (Ethernet frames)"
            if medium is not None and medium is not found:
                raise TapError(f"descriptor {fd} is {name}, {what}, not the {medium.value} medium asked for")
            if not flags & pytun.IFF_NO_PI:
                raise TapError(f"descriptor {fd} ({name}) was opened without IFF_NO_PI: pystack reads bare frames")
            vnet = bool(flags & pytun.IFF_VNET_HDR)
            medium = found
        self.medium = medium
        self.link_len = 0 if medium is Medium.IP else 14
        self.KIND = "socket" if device is None else "TUN" if medium is Medium.IP else "TAP"
        self.dev = None
        self._start(fd, name, offload and vnet, vnet=vnet)


def _keeps_messages(fd: int) -> bool:
    """True for a socket whose reads keep message boundaries (datagram, seqpacket)."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return False
        with socket.socket(fileno=os.dup(fd)) as sock:
            return sock.type in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET)
    except OSError:
        return False
