"""BSD-shaped sockets that ordinary threads use while the stack runs in its loop thread.

``socket(runtime, AF_INET, SOCK_STREAM)`` or ``SOCK_DGRAM``, then the usual calls. Errors are
``OSError`` with the errno the kernel would give. Each call takes the runtime's lock, changes the
sans-I/O state, flushes what the stack produced and wakes the loop; blocking calls wait on the
runtime's condition, which the loop notifies after every iteration.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket as _socket
import time
from typing import Any, Callable, TypeVar

from pystack.runtime import Runtime
from pystack.tcp.connection import Connection
from pystack.tcp.listener import Listener
from pystack.tcp.state import State
from pystack.udp.endpoint import MAX_PAYLOAD, UdpEndpoint

AF_INET = _socket.AF_INET
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_STREAM = _socket.SOCK_STREAM
SOL_SOCKET = _socket.SOL_SOCKET
SO_KEEPALIVE = _socket.SO_KEEPALIVE
SO_REUSEADDR = _socket.SO_REUSEADDR
SO_ERROR = _socket.SO_ERROR
IPPROTO_TCP = _socket.IPPROTO_TCP
TCP_NODELAY = _socket.TCP_NODELAY
SHUT_RD = _socket.SHUT_RD
SHUT_WR = _socket.SHUT_WR
SHUT_RDWR = _socket.SHUT_RDWR

timeout = _socket.timeout
T = TypeVar("T")


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


def _oserror(err: int) -> OSError:
    return OSError(err, os.strerror(err))


def socket(runtime: Runtime, family: int = AF_INET, type: int = SOCK_STREAM) -> UdpSocket | TcpSocket:
    """A new socket on ``runtime``'s stack, like ``socket.socket(family, type)``."""
    if family != AF_INET:
        raise OSError(errno.EAFNOSUPPORT, "only AF_INET is supported")
    if type == SOCK_DGRAM:
        return UdpSocket(runtime)
    if type == SOCK_STREAM:
        return TcpSocket(runtime)
    raise OSError(errno.EPROTONOSUPPORT, "only SOCK_STREAM and SOCK_DGRAM")


class _Base:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._timeout: float | None = None
        self._closed = False

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def _after(self) -> None:
        """After a change made from a user thread: send what it produced, wake waiters and the loop."""
        self._rt.flush()
        self._rt.changed.notify_all()
        self._rt.wake()

    def _wait(self, attempt: Callable[[], T | None]) -> T:
        """Call ``attempt`` under the lock until it returns non-None, honouring the timeout."""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._rt.lock:
            while True:
                result = attempt()
                if result is not None:
                    return result
                if self._closed:
                    raise _oserror(errno.EBADF)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if self._timeout == 0:
                        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                    raise timeout("timed out")
                self._rt.changed.wait(remaining)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()  # type: ignore[attr-defined]


class UdpSocket(_Base):
    """A UDP socket on pystack."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._endpoint: UdpEndpoint | None = None

    def _bound(self) -> UdpEndpoint:
        if self._closed:
            raise _oserror(errno.EBADF)
        if self._endpoint is None:
            self._endpoint = self._rt.stack.udp.bind(0, 0)
        return self._endpoint

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
        def attempt() -> tuple[bytes, tuple[str, int]] | None:
            got = self._bound().recvfrom()
            if got is None:
                return None
            data, (ip, port) = got
            return data[:bufsize], _addr(ip, port)

        return self._wait(attempt)

    def recv(self, bufsize: int = MAX_PAYLOAD) -> bytes:
        return self.recvfrom(bufsize)[0]

    def close(self) -> None:
        with self._rt.lock:
            if not self._closed:
                self._closed = True
                if self._endpoint is not None:
                    self._endpoint.close()
                self._rt.changed.notify_all()


class TcpSocket(_Base):
    """A TCP socket on pystack: a listening socket or a connection, like the kernel's."""

    def __init__(self, runtime: Runtime, conn: Connection | None = None) -> None:
        super().__init__(runtime)
        self._conn = conn
        self._listener: Listener | None = None
        self._local: tuple[int, int] | None = None
        self._nodelay = runtime.stack.config.tcp.nodelay
        self._keepalive = runtime.stack.config.tcp.keepalive

    # -- set-up
    def bind(self, address: tuple[str, int]) -> None:
        with self._rt.lock:
            if self._conn is not None or self._local is not None:
                raise OSError(errno.EINVAL, "already bound")
            self._local = (_ip(address[0]), address[1])

    def listen(self, backlog: int = 128) -> None:
        with self._rt.lock:
            if self._conn is not None:
                raise OSError(errno.EINVAL, "already connected")
            if self._listener is not None:
                return
            ip, port = self._local or (0, 0)
            if port == 0:
                port = self._rt.stack.tcp._ephemeral_port(ip, 0, 0)
            self._listener = self._rt.stack.tcp.listen(ip, port, backlog)
            self._local = (ip, port)

    def accept(self) -> tuple[TcpSocket, tuple[str, int]]:
        if self._listener is None:
            raise OSError(errno.EINVAL, "not listening")
        listener = self._listener

        def attempt() -> Connection | None:
            if listener.state == State.CLOSED:
                raise _oserror(errno.EBADF)
            return listener.accept()

        conn = self._wait(attempt)
        sock = TcpSocket(self._rt, conn)
        with self._rt.lock:
            conn.nodelay = self._nodelay
            conn.keepalive = self._keepalive
        return sock, _addr(conn.remote_ip, conn.remote_port)

    def connect(self, address: tuple[str, int]) -> None:
        err = self.connect_ex(address)
        if err:
            raise _oserror(err)

    def connect_ex(self, address: tuple[str, int]) -> int:
        remote_ip, remote_port = _ip(address[0]), address[1]
        with self._rt.lock:
            if self._conn is not None:
                return errno.EISCONN
            stack = self._rt.stack
            local_ip, local_port = self._local or (0, 0)
            local_ip = local_ip or stack.source_for(remote_ip) or 0
            if not local_ip:
                return errno.ENETUNREACH
            try:
                conn = stack.tcp.connect(local_ip, remote_ip, remote_port, self._rt.now(), local_port or None)
            except OSError as exc:
                return exc.errno or errno.EINVAL
            conn.nodelay = self._nodelay
            conn.keepalive = self._keepalive
            self._conn = conn
            self._after()

        def attempt() -> int | None:
            if conn.error is not None:
                return conn.error
            if conn.state not in (State.SYN_SENT, State.SYN_RECEIVED):
                return 0
            return None

        try:
            return self._wait(attempt)
        except timeout:
            return errno.EINPROGRESS if self._timeout == 0 else errno.ETIMEDOUT
        except BlockingIOError:
            return errno.EINPROGRESS

    def _connection(self) -> Connection:
        if self._closed:
            raise _oserror(errno.EBADF)
        if self._conn is None:
            raise _oserror(errno.ENOTCONN)
        return self._conn

    # -- data
    def send(self, data: bytes | bytearray | memoryview) -> int:
        conn = self._connection()
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        if not len(view):
            return 0

        def attempt() -> int | None:
            n = conn.send(view, self._rt.now())
            if n:
                self._after()
                return n
            return None

        return self._wait(attempt)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            n = self.send(view)
            view = view[n:]

    def recv(self, bufsize: int) -> bytes:
        conn = self._connection()

        def attempt() -> bytes | None:
            try:
                data = conn.recv(bufsize, self._rt.now())
            except BlockingIOError:
                return None
            self._after()
            return data

        return self._wait(attempt)

    def shutdown(self, how: int) -> None:
        with self._rt.lock:
            conn = self._connection()
            if how in (SHUT_WR, SHUT_RDWR):
                conn.shutdown_write(self._rt.now())
                self._after()

    # -- options and names
    def setsockopt(self, level: int, option: int, value: int) -> None:
        with self._rt.lock:
            if level == IPPROTO_TCP and option == TCP_NODELAY:
                self._nodelay = bool(value)
                if self._conn is not None:
                    self._conn.nodelay = bool(value)
                    self._after()
            elif level == SOL_SOCKET and option == SO_KEEPALIVE:
                self._keepalive = bool(value)
                if self._conn is not None:
                    self._conn.keepalive = bool(value)
            elif level == SOL_SOCKET and option == SO_REUSEADDR:
                pass  # pystack lets a listener bind over TIME-WAIT connections anyway
            else:
                raise OSError(errno.ENOPROTOOPT, "option not supported")

    def getsockopt(self, level: int, option: int) -> int:
        with self._rt.lock:
            if level == IPPROTO_TCP and option == TCP_NODELAY:
                return int(self._nodelay)
            if level == SOL_SOCKET and option == SO_KEEPALIVE:
                return int(self._keepalive)
            if level == SOL_SOCKET and option == SO_ERROR:
                return (self._conn.error or 0) if self._conn is not None else 0
            raise OSError(errno.ENOPROTOOPT, "option not supported")

    def getsockname(self) -> tuple[str, int]:
        if self._conn is not None:
            return _addr(self._conn.local_ip, self._conn.local_port)
        ip, port = self._local or (0, 0)
        return _addr(ip, port)

    def getpeername(self) -> tuple[str, int]:
        conn = self._connection()
        return _addr(conn.remote_ip, conn.remote_port)

    @property
    def state(self) -> State:
        """The RFC 9293 state of the connection (or LISTEN / CLOSED)."""
        if self._listener is not None:
            return self._listener.state
        return self._conn.state if self._conn is not None else State.CLOSED

    def close(self) -> None:
        with self._rt.lock:
            if self._closed:
                return
            self._closed = True
            now = self._rt.now()
            if self._listener is not None:
                self._listener.close(now)
            if self._conn is not None:
                self._conn.close(now)
            self._after()


Socket = socket
"""Alias: ``Socket(runtime, AF_INET, SOCK_DGRAM)`` reads like ``socket.socket(...)``."""
