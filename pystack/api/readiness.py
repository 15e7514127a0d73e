"""A kernel descriptor that is readable and writable exactly when a pystack socket is.

select, poll, epoll, ``selectors`` and asyncio's selector loop wait on descriptors, and pystack's
sockets have none of their own. A :class:`Readiness` gives each socket that is asked for ``fileno()``
one end of an AF_UNIX stream pair (the other end stays here), with the two conditions set apart:

* **readable**: the other end has written one byte into it (drained again when it stops being
  readable);
* **writable**: Linux calls a Unix stream socket writable while the bytes it sent and nobody read, in
  kernel memory, are at most a quarter of its send buffer (``unix_writable``). The user's end sent one
  4 KiB ballast that stays unread, then shut its write side, so its writability follows its
  ``SO_SNDBUF`` alone: the smallest value the kernel allows (4608 bytes) is below four times the
  ballast, a large one far above. Raising it wakes waiters (``sk_write_space``).

So every change of state is one system call. The user's end refuses writes (its write side is shut):
a program that writes to the descriptor itself, as ``os.sendfile`` in asyncio's ``sock_sendfile`` does,
gets EPIPE and falls back to ``send`` instead of corrupting the indicator.
"""

from __future__ import annotations

import errno
import select
import socket as _socket

_BALLAST = bytes(4096)
_WRITABLE_SNDBUF = 1 << 20
"""Far above four times the ballast's kernel size (the kernel caps it at wmem_max, 212992 by default)."""
_BLOCKED_SNDBUF = 1
"""Rounded up by the kernel to its minimum (SOCK_MIN_SNDBUF)."""


class Readiness:
    """The descriptor of one socket; :meth:`set` it (under the runtime's lock) whenever readiness may
    have changed. Two descriptors per socket, both closed by :meth:`close`."""

    __slots__ = ("_user", "_feeder", "readable", "writable")
    _checked = False

    def __init__(self) -> None:
        user, feeder = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            user.setblocking(False)
            feeder.setblocking(False)
            user.send(_BALLAST)
            user.shutdown(_socket.SHUT_WR)
            user.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, _BLOCKED_SNDBUF)
        except OSError:
            user.close()
            feeder.close()
            raise
        self._user = user
        self._feeder = feeder
        self.readable = False
        self.writable = False
        if not Readiness._checked:
            self._self_check()

    def fileno(self) -> int:
        return self._user.fileno()

    def set(self, readable: bool, writable: bool) -> None:
        if readable != self.readable:
            self.readable = readable
            if readable:
                self._feeder.send(b"\x01")
            else:
                try:
                    self._user.recv(64)
                except BlockingIOError:
                    pass
        if writable != self.writable:
            self.writable = writable
            self._user.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF,
                                  _WRITABLE_SNDBUF if writable else _BLOCKED_SNDBUF)

    def close(self) -> None:
        self._user.close()
        self._feeder.close()

    def _self_check(self) -> None:
        """Once per process: the kernel must show all four states (not Linux, or an odd wmem_max: say so)."""
        seen = []
        for state in ((False, False), (True, False), (True, True), (False, True), (False, False)):
            self.set(*state)
            poller = select.poll()
            poller.register(self._user.fileno(), select.POLLIN | select.POLLOUT)
            events = dict(poller.poll(0)).get(self._user.fileno(), 0)
            seen.append((bool(events & select.POLLIN), bool(events & select.POLLOUT)))
        if seen != [(False, False), (True, False), (True, True), (False, True), (False, False)]:
            self.close()
            raise OSError(errno.ENOTSUP, "this kernel's AF_UNIX sockets cannot mirror a pystack socket's "
                                         f"readiness (poll saw {seen}); fileno() is not available")
        Readiness._checked = True
