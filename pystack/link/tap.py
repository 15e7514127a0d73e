"""The TAP link (IFF_TAP | IFF_NO_PI) through python-pytun, read and written without blocking.

With ``offload`` the TAP also carries a virtio-net header on every frame (IFF_VNET_HDR) and
``TUNSETOFFLOAD`` tells the kernel it may hand us TCP segments of up to 64 KiB (TSO/GRO) whose
checksums are left partial (TUN_F_CSUM): one read, one parse and one ACK then cover what would be
dozens of MTU-sized frames. Partial checksums are completed here, so the stack above sees only
ordinary, verifiable frames.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import struct

import pytun

from pystack.wire.checksum import fold, pseudo_header_sum
from pystack.wire.gso import GsoFrame, header_lengths
from pystack.wire.virtio import (GSO_NONE, GSO_TCPV4, HEADER_LEN as VNET_HDR_LEN, NEEDS_CSUM, PartialChecksumFrame,
                                 build_header, checksum_layout, finish_checksum, parse_header)

MAX_FRAME = 65535 + 14
TUNSETOFFLOAD = 0x400454D0
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
_NO_OFFLOAD_HEADER = bytes(VNET_HDR_LEN)


class TapError(Exception):
    """The TAP could not be opened; the message is one line for the user."""


class TapLink:
    """Creates the TAP, or attaches to a persistent one of that name (the kernel's TUNSETIFF does both)."""

    def __init__(self, name: str, mtu: int, offload: bool = False) -> None:
        if not os.path.exists("/dev/net/tun"):
            raise TapError("/dev/net/tun is missing: this kernel has no TUN/TAP support (or it is not mounted)")
        flags = pytun.IFF_TAP | pytun.IFF_NO_PI | (pytun.IFF_VNET_HDR if offload else 0)
        try:
            self.dev = pytun.TunTapDevice(name=name, flags=flags)
        except pytun.Error as exc:
            raise TapError(f"cannot open TAP {name!r}: {exc}") from None
        self.offload = False
        if offload:
            try:
                fcntl.ioctl(self.dev.fileno(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4)
                self.offload = True
            except OSError:
                pass  # the header stays, with nothing offloaded: every frame is whole
        self.vnet = offload
        self.partial_checksum_frames = 0
        self.super_frames = 0
        self.name = self.dev.name
        try:
            self.dev.mtu = mtu
            self.dev.up()
        except pytun.Error as exc:
            self.dev.close()
            raise TapError(f"cannot configure TAP {name!r}: {exc}") from None
        self.fd = self.dev.fileno()
        os.set_blocking(self.fd, False)
        self._reader = io.FileIO(self.fd, "rb", closefd=False)
        """Reads the descriptor and says "nothing waiting" with None rather than raising BlockingIOError:
        every wake-up ends with that read, and an exception costs more than the read."""
        self._read_size = MAX_FRAME + VNET_HDR_LEN if offload else MAX_FRAME
        self.kernel_mac: bytes = self.dev.hwaddr

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
        if (csum_start, csum_offset) != checksum_layout(frame):
            return finish_checksum(frame, csum_start, csum_offset)  # not where pystack would look: finish it
        return PartialChecksumFrame(frame)

    def write(self, frame: bytes) -> bool:
        """Write one frame. False when the kernel refused it (queue full is counted by the caller)."""
        try:
            if type(frame) is GsoFrame:
                os.writev(self.fd, self._gso_parts(frame))
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
    def _gso_parts(frame: GsoFrame) -> tuple[bytes | memoryview, ...]:
        """The virtio header asking the kernel to cut ``frame`` into ``gso_size`` segments and to finish
        each checksum; the TCP checksum field then holds the pseudo-header sum (virtio 1.1, 5.1.6.2)."""
        ihl, thl = header_lengths(frame)
        csum_start = 14 + ihl
        tcp_len = len(frame) - csum_start
        src = int.from_bytes(frame[26:30], "big")
        dst = int.from_bytes(frame[30:34], "big")
        partial = fold(pseudo_header_sum(src, dst, 6, tcp_len))
        header = build_header(NEEDS_CSUM, GSO_TCPV4, csum_start + thl, frame.gso_size, csum_start, 16)
        view = memoryview(frame)
        field = csum_start + 16
        return header, view[:field], partial.to_bytes(2, "big"), view[field + 2:]

    def close(self) -> None:
        self._reader.close()  # closefd=False: the descriptor is the device's to close
        try:
            self.dev.close()
        except pytun.Error:
            pass
