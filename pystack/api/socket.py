"""BSD-shaped sockets that ordinary threads use while the stack runs in its loop thread.

Errors are ``OSError`` with the errno the kernel would give. Each call takes the runtime's lock,
changes the sans-I/O state, flushes what the stack produced and wakes the loop; blocking calls wait
on the runtime's condition, which the loop notifies after every iteration.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket as _socket
import time
from typing import Any

from pystack.runtime import Runtime
from pystack.udp.endpoint import MAX_PAYLOAD, UdpEndpoint

AF_INET = _socket.AF_INET
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_STREAM = _socket.SOCK_STREAM

timeout = _socket.timeout


def _ip(host: str) -> int:
    if host in ("", "0.0.0.0"):
        return 0
    if host == "<broadcast>":
        return 0xFFFFFFFF
    try:
        return int(ipaddress.IPv4Address(host))
    except ValueError:
        raise OSError(errno.EINVAL, f"not an IPv4 address: {host!r}") from None


def _addr(value: int, port: int) -> tuple[str, int]:
    return (str(ipaddress.IPv4Address(value)), port)


class Socket:
    """A UDP socket (``SOCK_DGRAM``) on pystack. TCP arrives with the TCP layer."""

    def __init__(self, runtime: Runtime, family: int = AF_INET, type: int = SOCK_DGRAM) -> None:
        if family != AF_INET:
            raise OSError(errno.EAFNOSUPPORT, "only AF_INET is supported")
        if type != SOCK_DGRAM:
            raise OSError(errno.EPROTONOSUPPORT, "only SOCK_DGRAM is supported yet")
        self._rt = runtime
        self._endpoint: UdpEndpoint | None = None
        self._timeout: float | None = None
        self._closed = False

    # -- helpers
    def _bound(self) -> UdpEndpoint:
        if self._closed:
            raise OSError(errno.EBADF, "bad file descriptor")
        if self._endpoint is None:
            self._endpoint = self._rt.stack.udp.bind(0, 0)
        return self._endpoint

    def _after(self) -> None:
        self._rt.flush()
        self._rt.changed.notify_all()
        self._rt.wake()

    # -- the API
    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def bind(self, address: tuple[str, int]) -> None:
        with self._rt.lock:
            if self._endpoint is not None:
                raise OSError(errno.EINVAL, "already bound")
            self._endpoint = self._rt.stack.udp.bind(_ip(address[0]), address[1])

    def connect(self, address: tuple[str, int]) -> None:
        with self._rt.lock:
            self._bound().connect((_ip(address[0]), address[1]))

    def getsockname(self) -> tuple[str, int]:
        with self._rt.lock:
            ep = self._bound()
            return _addr(ep.local_ip or (self._rt.stack.address or 0), ep.port)

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        with self._rt.lock:
            n = self._bound().sendto(data, (_ip(address[0]), address[1]), self._rt.now())
            self._after()
            return n

    def send(self, data: bytes) -> int:
        with self._rt.lock:
            n = self._bound().sendto(data, None, self._rt.now())
            self._after()
            return n

    def recvfrom(self, bufsize: int = MAX_PAYLOAD) -> tuple[bytes, tuple[str, int]]:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._rt.lock:
            ep = self._bound()
            while True:
                got = ep.recvfrom()
                if got is not None:
                    data, (ip, port) = got
                    return data[:bufsize], _addr(ip, port)
                if self._closed:
                    raise OSError(errno.EBADF, "bad file descriptor")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if self._timeout == 0:
                        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                    raise timeout("timed out")
                self._rt.changed.wait(remaining)

    def recv(self, bufsize: int = MAX_PAYLOAD) -> bytes:
        return self.recvfrom(bufsize)[0]

    def close(self) -> None:
        with self._rt.lock:
            if not self._closed:
                self._closed = True
                if self._endpoint is not None:
                    self._endpoint.close()
                self._rt.changed.notify_all()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
