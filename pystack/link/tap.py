"""The TAP link (IFF_TAP | IFF_NO_PI) through python-pytun, read and written without blocking.

Root is needed to create a TAP, not to use one: a persistent TAP made for a user (``ip tuntap add mode
tap user NAME``) and brought up by the administrator is attached to without privileges, and a TAP
descriptor someone else opened can be handed over (:class:`pystack.link.fd.FdLink`, ``--fd N``). A TUN
(pystack.link.tun) is the same device carrying bare IP packets.

With ``offload`` the TAP also carries a virtio-net header on every frame (IFF_VNET_HDR) and
``TUNSETOFFLOAD`` tells the kernel it may hand us TCP segments of up to 64 KiB (TSO/GRO, over IPv4 and IPv6) whose
checksums are left partial (TUN_F_CSUM): one read, one parse and one ACK then cover what would be
dozens of MTU-sized frames. Partial checksums are completed here, so the stack above sees only
ordinary, verifiable frames.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import socket
import struct

import pytun

from pystack.medium import Medium
from pystack.wire.checksum import fold, pseudo_header_sum
from pystack.wire.gso import GsoFrame, addresses, header_lengths, is_ipv6
from pystack.wire.virtio import (GSO_NONE, GSO_TCPV4, GSO_TCPV6, HEADER_LEN as VNET_HDR_LEN, NEEDS_CSUM,
                                 PartialChecksumFrame, build_header, checksum_layout, finish_checksum, parse_header)

MAX_FRAME = 65535 + 14
TUNSETOFFLOAD = 0x400454D0
TUNGETIFF = 0x800454D2
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
SIOCGIFFLAGS = 0x8913
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
_NO_OFFLOAD_HEADER = bytes(VNET_HDR_LEN)


class TapError(Exception):
    """The TAP could not be opened; the message is one line for the user."""


def interface_state(name: str) -> tuple[int, bool, bytes] | None:
    """(MTU, up, MAC) of the interface ``name`` in this network namespace, or None if there is none.
    Reading them needs no privilege."""
    request = struct.pack("16s24x", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            mtu = struct.unpack_from("i", fcntl.ioctl(sock, SIOCGIFMTU, request), 16)[0]
            flags = struct.unpack_from("H", fcntl.ioctl(sock, SIOCGIFFLAGS, request), 16)[0]
            mac = fcntl.ioctl(sock, SIOCGIFHWADDR, request)[18:24]
        except OSError:
            return None
    return mtu, bool(flags & IFF_UP), mac


def tap_owner(name: str) -> int | None:
    """The user a persistent TAP was made for (``ip tuntap add ... user NAME``), or None."""
    try:
        with open(f"/sys/class/net/{name}/owner") as fh:
            owner = int(fh.read())
    except (OSError, ValueError):
        return None
    return owner if owner >= 0 else None


class TapLink:
    """Creates the TAP, or attaches to a persistent one of that name (the kernel's TUNSETIFF does both)."""

    dev: pytun.TunTapDevice | None
    medium = Medium.ETHERNET
    """What the link carries: the Stack on it must have this ``config.medium``."""
    KIND = "TAP"
    link_len = 14
    """Bytes of link header before the IP header: where the offload code finds it (0 on a TUN)."""
    _DEVICE_FLAG = pytun.IFF_TAP

    def __init__(self, name: str, mtu: int, offload: bool = False) -> None:
        if not os.path.exists("/dev/net/tun"):
            raise TapError("/dev/net/tun is missing: this kernel has no TUN/TAP support (or it is not mounted)")
        flags = self._DEVICE_FLAG | pytun.IFF_NO_PI | (pytun.IFF_VNET_HDR if offload else 0)
        try:
            self.dev = pytun.TunTapDevice(name=name, flags=flags)
        except pytun.Error as exc:
            hint = "" if os.access("/dev/net/tun", os.R_OK | os.W_OK) else " (/dev/net/tun is closed to this user)"
            raise TapError(f"cannot open {self.KIND} {name!r}: {exc}{hint}") from None
        try:
            self.dev.mtu = mtu
            self.dev.up()
        except pytun.Error as exc:
            # Without CAP_NET_ADMIN (a TAP made for this user) the administrator configures it.
            state = interface_state(self.dev.name)
            if state is None or state[:2] != (mtu, True):
                self.dev.close()
                raise TapError(f"cannot configure {self.KIND} {name!r}: {exc} (without root, it must be up already "
                               f"with MTU {mtu}: ip link set {name} up mtu {mtu})") from None
        self._start(self.dev.fileno(), self.dev.name, offload)

    def _start(self, fd: int, name: str, offload: bool, vnet: bool | None = None) -> None:
        self.offload = False
        if offload:
            try:
                fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
                self.offload = True
            except OSError:
                pass  # the header stays, with nothing offloaded: every frame is whole
        self.vnet = offload if vnet is None else vnet
        self.partial_checksum_frames = 0
        self.super_frames = 0
        self.name = name
        self.fd = fd
        os.set_blocking(self.fd, False)
        self._reader = io.FileIO(self.fd, "rb", closefd=False)
        """Reads the descriptor and says "nothing waiting" with None rather than raising BlockingIOError:
        every wake-up ends with that read, and an exception costs more than the read."""
        self._read_size = MAX_FRAME + VNET_HDR_LEN if self.vnet else MAX_FRAME
        state = interface_state(name)
        self.kernel_mac: bytes = state[2] if state is not None else b""

    def read(self) -> bytes | None:
        """One frame, or None when none is waiting."""
        data = self._reader.read(self._read_size)
        if data is None:
            return None
        if not self.vnet:
            return data
        if len(data) > VNET_HDR_LEN and not data[0] and not data[1]:
            return data[VNET_HDR_LEN:]  # the common small frame: no flags, no GSO (one slice, no call)
        return self._from_vnet(data)

    def _from_vnet(self, data: bytes) -> bytes:
        if len(data) <= VNET_HDR_LEN:
            return b""  # no frame behind the header: the stack counts it as truncated
        flags, gso_type, _hdr_len, _gso_size, csum_start, csum_offset = parse_header(data)
        if gso_type != GSO_NONE:
            self.super_frames += 1
        frame = memoryview(data)[VNET_HDR_LEN:]
        if not flags & NEEDS_CSUM:
            return bytes(frame)
        if csum_start + csum_offset + 2 > len(frame):
            return bytes(frame)  # nonsense from the kernel: the parsers verify and drop it
        self.partial_checksum_frames += 1
        if (csum_start, csum_offset) != checksum_layout(frame, self.link_len):
            # not where pystack would look: finish it
            return finish_checksum(frame, csum_start, csum_offset, self.link_len)
        return PartialChecksumFrame(frame)

    def write(self, frame: bytes) -> bool:
        """Write one frame. False when the kernel refused it (queue full is counted by the caller)."""
        try:
            if type(frame) is GsoFrame:
                os.writev(self.fd, self._gso_parts(frame, self.link_len))
            elif self.vnet:
                os.writev(self.fd, (_NO_OFFLOAD_HEADER, frame))
            else:
                os.write(self.fd, frame)
            return True
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ENOBUFS, errno.EIO, errno.EINVAL):
                return False
            raise

    @staticmethod
    def _gso_parts(frame: GsoFrame, link_len: int = 14) -> tuple[bytes | memoryview, ...]:
        """The virtio header asking the kernel to cut ``frame`` into ``gso_size`` segments and to finish
        each checksum; the TCP checksum field then holds the pseudo-header sum (virtio 1.1, 5.1.6.2).
        ``link_len``: the link's (0 on a TUN)."""
        ihl, thl = header_lengths(frame, link_len)
        csum_start = link_len + ihl
        tcp_len = len(frame) - csum_start
        src, dst = addresses(frame, link_len)
        total = pseudo_header_sum(src, dst, 6, tcp_len)  # with 128-bit addresses, IPv6's (mod 0xFFFF)
        partial = fold(total) if total >> 32 == 0 else total % 0xFFFF or 0xFFFF
        gso_type = GSO_TCPV6 if is_ipv6(frame, link_len) else GSO_TCPV4
        header = build_header(NEEDS_CSUM, gso_type, csum_start + thl, frame.gso_size, csum_start, 16)
        view = memoryview(frame)
        field = csum_start + 16
        return header, view[:field], partial.to_bytes(2, "big"), view[field + 2:]

    def close(self) -> None:
        self._reader.close()  # closefd=False: the descriptor is the device's (or ours, from_fd) to close
        if self.dev is None:
            os.close(self.fd)
            return
        try:
            self.dev.close()
        except pytun.Error:
            pass
