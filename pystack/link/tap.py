"""The TAP link (IFF_TAP | IFF_NO_PI) through python-pytun, read and written without copies or blocking."""

from __future__ import annotations

import errno
import os

import pytun

MAX_FRAME = 65535 + 14


class TapError(Exception):
    """The TAP could not be opened; the message is one line for the user."""


class TapLink:
    """Creates the TAP, or attaches to a persistent one of that name (the kernel's TUNSETIFF does both)."""

    def __init__(self, name: str, mtu: int) -> None:
        if not os.path.exists("/dev/net/tun"):
            raise TapError("/dev/net/tun is missing: this kernel has no TUN/TAP support (or it is not mounted)")
        try:
            self.dev = pytun.TunTapDevice(name=name, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
        except pytun.Error as exc:
            raise TapError(f"cannot open TAP {name!r}: {exc}") from None
        self.name = self.dev.name
        try:
            self.dev.mtu = mtu
            self.dev.up()
        except pytun.Error as exc:
            self.dev.close()
            raise TapError(f"cannot configure TAP {name!r}: {exc}") from None
        self.fd = self.dev.fileno()
        os.set_blocking(self.fd, False)
        self.kernel_mac: bytes = self.dev.hwaddr

    def read(self) -> bytes | None:
        """One frame, or None when none is waiting."""
        try:
            return os.read(self.fd, MAX_FRAME)
        except BlockingIOError:
            return None

    def write(self, frame: bytes) -> bool:
        """Write one frame. False when the kernel refused it (queue full is counted by the caller)."""
        try:
            os.write(self.fd, frame)
            return True
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ENOBUFS, errno.EIO, errno.EINVAL):
                return False
            raise

    def close(self) -> None:
        try:
            self.dev.close()
        except pytun.Error:
            pass
