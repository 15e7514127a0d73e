"""BSD-shaped sockets that ordinary threads use while the stack runs in its loop thread.

``socket(runtime, AF_INET, SOCK_STREAM)`` or ``SOCK_DGRAM`` (or ``AF_INET6``), then the calls of Python's
socket objects, failing as a kernel socket does: ``OSError`` with the kernel's errno (EBADF after close, ENOTCONN,
EISCONN, EADDRINUSE, ...), ``TimeoutError`` and ``BlockingIOError``. Each call takes the runtime's lock,
changes the sans-I/O state, flushes what the stack produced and wakes the loop; blocking calls wait on
the runtime's condition, which the loop notifies after every iteration. ``fileno()`` is a kernel
descriptor that select, poll and asyncio can wait on (pystack/api/readiness.py).

Addresses here are literals of the socket's family, in the stdlib's tuples: (host, port) for AF_INET,
(host, port, flowinfo, scope_id) for AF_INET6, whose sockets reach IPv4 through ``::ffff:a.b.c.d`` and,
bound to ``::``, take both families unless IPV6_V6ONLY is set first (pystack/api/families.py).
:mod:`pystack.socket` puts the standard library module's shape over these classes (one class for both
types, names resolved, ``makefile``, the module functions).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket as _socket
import struct
import time
import weakref
from typing import Any, Callable, TypeVar

from pystack.api import families
from pystack.api.families import V4, V6, Listening, SockAddr, Where
from pystack.api.readiness import Readiness
from pystack.runtime import Runtime
from pystack.tcp.config import TcpConfig
from pystack.tcp.connection import Connection
from pystack.tcp.state import State
from pystack.udp.endpoint import MAX_PAYLOAD6, UdpEndpoint

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
IPPROTO_IPV6 = _socket.IPPROTO_IPV6
IPV6_V6ONLY = _socket.IPV6_V6ONLY
IPPROTO_IP = _socket.IPPROTO_IP
IP_RECVERR = 11
IPV6_RECVERR = 25
"""Linux's values (include/uapi/linux/in.h, in6.h); Python's socket module names neither."""
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_STREAM = _socket.SOCK_STREAM
IPPROTO_TCP = _socket.IPPROTO_TCP
IPPROTO_UDP = _socket.IPPROTO_UDP
SOL_SOCKET = _socket.SOL_SOCKET
SO_KEEPALIVE = _socket.SO_KEEPALIVE
SO_REUSEADDR = _socket.SO_REUSEADDR
SO_ERROR = _socket.SO_ERROR
SO_LINGER = _socket.SO_LINGER
SO_RCVBUF = _socket.SO_RCVBUF
SO_SNDBUF = _socket.SO_SNDBUF
SO_BROADCAST = _socket.SO_BROADCAST
SO_TYPE = _socket.SO_TYPE
TCP_NODELAY = _socket.TCP_NODELAY
TCP_KEEPIDLE = _socket.TCP_KEEPIDLE
TCP_KEEPINTVL = _socket.TCP_KEEPINTVL
TCP_KEEPCNT = _socket.TCP_KEEPCNT
TCP_MAXSEG = _socket.TCP_MAXSEG
TCP_INFO = _socket.TCP_INFO
SHUT_RD = _socket.SHUT_RD
SHUT_WR = _socket.SHUT_WR
SHUT_RDWR = _socket.SHUT_RDWR
MSG_PEEK = _socket.MSG_PEEK
MSG_DONTWAIT = _socket.MSG_DONTWAIT
MSG_WAITALL = _socket.MSG_WAITALL
MSG_ERRQUEUE = _socket.MSG_ERRQUEUE
MSG_TRUNC = _socket.MSG_TRUNC
MSG_CTRUNC = _socket.MSG_CTRUNC
_EXTENDED_ERR = struct.Struct("=IBBBBII")
"""struct sock_extended_err (include/uapi/linux/errqueue.h), then the offender's sockaddr (SO_EE_OFFENDER)."""
_ORIGIN_ICMP, _ORIGIN_ICMP6 = 2, 3
_SEND_FLAGS = MSG_DONTWAIT | _socket.MSG_NOSIGNAL | _socket.MSG_MORE
"""MSG_NOSIGNAL: pystack raises no SIGPIPE anyway. MSG_MORE: a hint; Nagle does the corking."""
_RECV_FLAGS = MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL

timeout = _socket.timeout
T = TypeVar("T")

_BUFFER_MIN = 4096
"""Least SO_RCVBUF/SO_SNDBUF taken (Linux's minimums are 2304 and 4608 bytes)."""
_KEEPALIVE_MAX = 32767
"""Largest TCP_KEEPIDLE/INTVL/CNT Linux takes (MAX_TCP_KEEPIDLE ...)."""
_LINUX_TCP_STATES = {State.ESTABLISHED: 1, State.SYN_SENT: 2, State.SYN_RECEIVED: 3, State.FIN_WAIT_1: 4,
                     State.FIN_WAIT_2: 5, State.TIME_WAIT: 6, State.CLOSED: 7, State.CLOSE_WAIT: 8,
                     State.LAST_ACK: 9, State.LISTEN: 10, State.CLOSING: 11}
_TCP_INFO = struct.Struct("=8B24I")
"""The first 104 bytes of Linux's struct tcp_info (up to tcpi_total_retrans), the layout tools parse."""
_oserror = families.oserror


def _flags(flags: int, allowed: int) -> int:
    if flags & ~allowed:
        raise OSError(errno.EOPNOTSUPP, f"flags {flags & ~allowed:#x} are not supported by pystack")
    return flags


def _int_option(value: int | bytes | bytearray | memoryview) -> int:
    if isinstance(value, int):
        return value
    if len(value) < 4:
        raise _oserror(errno.EINVAL)
    return int(struct.unpack_from("i", value)[0])


def _option_result(value: int | bytes, buflen: int | None) -> int | bytes:
    """getsockopt's answer: an int, or with ``buflen`` the option's bytes as the kernel copies them out."""
    if buflen is None:
        return value if isinstance(value, int) else int(struct.unpack_from("i", value)[0])
    if not 0 <= buflen <= 1024:
        raise OSError(errno.EINVAL, "getsockopt buflen out of range")
    raw = struct.pack("i", value) if isinstance(value, int) else value
    return raw[:buflen]


def socket(runtime: Runtime, family: int = AF_INET, type: int = SOCK_STREAM) -> UdpSocket | TcpSocket:
    """A new socket on ``runtime``'s stack, like ``socket.socket(family, type)``."""
    _check_family(runtime, family)
    if type == SOCK_DGRAM:
        return UdpSocket(runtime, family)
    if type == SOCK_STREAM:
        return TcpSocket(runtime, family=family)
    raise OSError(errno.EPROTONOSUPPORT, "only SOCK_STREAM and SOCK_DGRAM")


def _check_family(runtime: Runtime, family: int) -> None:
    """AF_INET, or AF_INET6 on a stack with IPv6 up (EAFNOSUPPORT otherwise, as a kernel without IPv6)."""
    if family not in (AF_INET, AF_INET6):
        raise OSError(errno.EAFNOSUPPORT, "only AF_INET and AF_INET6 are supported")
    if family == AF_INET6 and not runtime.stack.ipv6_enabled:
        raise OSError(errno.EAFNOSUPPORT, "IPv6 is off on this stack")


def _hook(sock: _Base) -> Callable[..., None]:
    """The stack's on_event for ``sock``'s connection, listener or endpoint: keeps the descriptor's
    readiness current. A weak reference, so that the stack's tables do not keep the socket alive."""
    ref = weakref.ref(sock)

    def on_event(*_args: Any) -> None:
        owner = ref()
        if owner is not None:
            owner._refresh()

    return on_event


class _Base:
    type = 0
    proto = 0

    def __init__(self, runtime: Runtime, family: int = AF_INET) -> None:
        _check_family(runtime, family)
        self._rt = runtime
        self.family = family
        self._v6only = False
        """IPV6_V6ONLY: an AF_INET6 socket on ``::`` takes IPv6 only (off by default, as Linux's bindv6only)."""
        self._timeout: float | None = None
        self._closed = False
        self._ready: Readiness | None = None
        self._reuseaddr = False
        self._shut_rd = False

    # -- blocking and timeouts
    def settimeout(self, value: float | None) -> None:
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._check_open()
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def _check_open(self) -> None:
        if self._closed:
            raise _oserror(errno.EBADF)

    def _after(self) -> None:
        """After a change made from a user thread: send what it produced, wake waiters, and the loop if
        its next deadline moved earlier."""
        self._rt.flush()
        self._rt.changed.notify_all()
        self._rt.timers_changed()
        self._refresh()

    def _wait(self, attempt: Callable[[], T | None], nonblocking: bool = False, deadline: float | None = None) -> T:
        """Call ``attempt`` under the lock until it returns non-None, honouring the timeout (or ``deadline``)."""
        limit = 0.0 if nonblocking else self._timeout
        if deadline is None and limit is not None:
            deadline = time.monotonic() + limit
        with self._rt.lock:
            while True:
                self._check_open()  # closed by another thread while this one waited
                result = attempt()
                if result is not None:
                    self._refresh()
                    return result
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if limit == 0:
                        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                    raise timeout("timed out")
                self._rt.changed.wait(remaining)

    # -- the descriptor
    def fileno(self) -> int:
        """A kernel descriptor readable and writable exactly when this socket is; -1 once closed."""
        with self._rt.lock:
            if self._closed:
                return -1
            if self._ready is None:
                self._ready = Readiness()
                self._refresh()
            return self._ready.fileno()

    def _refresh(self) -> None:
        """Under the lock, whenever readiness may have changed: the descriptor follows."""
        if self._ready is not None:
            self._ready.set(*self._readiness())

    def _readiness(self) -> tuple[bool, bool]:
        raise NotImplementedError

    def _release(self) -> None:
        if self._ready is not None:
            self._ready.close()
            self._ready = None

    # -- the calls every type shares, made of the others
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        raise NotImplementedError

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, SockAddr | None]:
        raise NotImplementedError

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        raise NotImplementedError

    def sendto(self, data: bytes | bytearray | memoryview, flags_or_address: Any, address: Any = None) -> int:
        raise NotImplementedError

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes > len(view):
            raise ValueError("buffer too small for requested bytes")
        data = self.recv(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, SockAddr | None]:
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        if nbytes > len(view):
            raise ValueError("nbytes is greater than the length of the buffer")
        data, address = self.recvfrom(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data), address

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: tuple[Any, ...] | None = None) -> int:
        if list(ancdata):
            raise OSError(errno.EINVAL, "pystack sockets take no ancillary data")
        data = b"".join(buffers)
        return self.send(data, flags) if address is None else self.sendto(data, flags, address)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()  # type: ignore[attr-defined]

    # -- addresses
    def _where(self, address: tuple[Any, ...]) -> Where:
        return families.read(self.family, address[0])

    def _for_bind(self, address: tuple[Any, ...]) -> tuple[tuple[int, ...], Where]:
        """The versions and address bind() puts the socket at: the wildcard of a dual-stack AF_INET6 socket
        is in both; an address the stack does not have is EADDRNOTAVAIL, as the kernel says."""
        where = self._where(address)
        if where.version == V4 and self.family == AF_INET6 and self._v6only:
            raise _oserror(errno.EINVAL)  # ::ffff:a.b.c.d on an IPv6-only socket, as Linux
        if not families.is_ours(self._rt.stack, where):
            raise _oserror(errno.EADDRNOTAVAIL)
        return families.versions(self.family, where, self._v6only), where

    def _for_peer(self, address: tuple[Any, ...]) -> Where:
        """A peer's address; IPv4 (mapped) from an IPv6-only socket is ENETUNREACH, as Linux."""
        where = self._where(address)
        if where.version == V4 and self.family == AF_INET6 and self._v6only:
            raise _oserror(errno.ENETUNREACH)
        return where

    def _sockaddr(self, version: int, ip: int, port: int) -> SockAddr:
        return families.write(self.family, version, ip, port)

    def _unbound_name(self, port: int = 0) -> SockAddr:
        return ("0.0.0.0", port) if self.family == AF_INET else ("::", port, 0, 0)

    def _is_bound(self) -> bool:
        raise NotImplementedError

    # -- options every type shares
    def _common_option(self, level: int, option: int) -> int | None:
        if level == SOL_SOCKET:
            if option == SO_TYPE:
                return self.type
            if option == SO_REUSEADDR:
                return int(self._reuseaddr)
            if option == _socket.SO_DOMAIN:
                return self.family
            if option == _socket.SO_PROTOCOL:
                return IPPROTO_TCP if self.type == SOCK_STREAM else IPPROTO_UDP
        if level == IPPROTO_IPV6:
            if self.family != AF_INET6:
                raise _oserror(errno.EOPNOTSUPP)  # Linux's ip_getsockopt for any other level
            if option == IPV6_V6ONLY:
                return int(self._v6only)
        return None

    def _set_common_option(self, level: int, option: int, value: int | bytes) -> bool:
        """setsockopt's options of every type; False when ``option`` is none of them."""
        if level == SOL_SOCKET and option == SO_REUSEADDR:
            self._reuseaddr = bool(_int_option(value))  # pystack never lets TIME-WAIT hold a port anyway
            return True
        if level == IPPROTO_IPV6:
            if self.family != AF_INET6:
                raise _oserror(errno.ENOPROTOOPT)  # Linux's ip_setsockopt for any other level
            if option == IPV6_V6ONLY:
                if self._is_bound():
                    raise _oserror(errno.EINVAL)  # as Linux: only before bind
                self._v6only = bool(_int_option(value))
                return True
        return False


class UdpSocket(_Base):
    """A UDP socket on pystack: one endpoint, or one per IP version for a dual-stack AF_INET6 socket on ``::``
    (both on one port). Connecting it keeps only the endpoint of the peer's version."""

    type = SOCK_DGRAM
    proto = IPPROTO_UDP

    def __init__(self, runtime: Runtime, family: int = AF_INET) -> None:
        super().__init__(runtime, family)
        self._endpoints: dict[int, UdpEndpoint] = {}
        """IP version -> endpoint."""
        self._broadcast = False
        self._recverr = {V4: False, V6: False}
        """IP_RECVERR (IPv4 peers, IPv4-mapped ones too) and IPV6_RECVERR, by IP version: UdpEndpoint.recverr."""
        self._turn = 0
        """Which endpoint recvfrom looks at first: the versions take turns, so neither starves the other."""

    def _is_bound(self) -> bool:
        return bool(self._endpoints)

    def _bind(self, versions: tuple[int, ...], ip: int, port: int) -> None:
        stack = self._rt.stack
        layers = [families.udp_layer(stack, v) for v in versions]
        made = families.on_one_port(port, [lambda p, layer=layer: layer.bind(ip, p) for layer in layers],
                                    [UdpEndpoint.close] * len(layers), lambda ep: ep.port)
        for version, endpoint in zip(versions, made):
            self._endpoints[version] = endpoint
            endpoint.recverr = self._recverr[version]
            endpoint.on_event = _hook(self)

    def _bound(self, version: int | None = None) -> UdpEndpoint:
        """The endpoint for peers of ``version`` (None: the connected one, or any), bound on every version
        the socket may use first if it was not (as the kernel binds at the first send)."""
        self._check_open()
        if not self._endpoints:
            wildcard = Where(V4 if self.family == AF_INET else V6, 0)
            self._bind(families.versions(self.family, wildcard, self._v6only), 0, 0)
        if version is None:
            return next((ep for ep in self._endpoints.values() if ep.remote is not None),
                        next(iter(self._endpoints.values())))
        endpoint = self._endpoints.get(version)
        if endpoint is None:  # bound to an address of the other version
            raise _oserror(errno.ENETUNREACH)
        return endpoint

    def _connected(self) -> tuple[int, UdpEndpoint] | None:
        return next(((v, ep) for v, ep in self._endpoints.items() if ep.remote is not None), None)

    def _readiness(self) -> tuple[bool, bool]:
        readable = any(ep.queue or ep.error for ep in self._endpoints.values())
        return readable or self._shut_rd, True

    def bind(self, address: tuple[Any, ...]) -> None:
        with self._rt.lock:
            self._check_open()
            if self._endpoints:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            versions, where = self._for_bind(address)
            self._bind(versions, where.ip, address[1])

    def connect(self, address: tuple[Any, ...]) -> None:
        where = self._for_peer(address)
        with self._rt.lock:
            self._bound(where.version).connect((where.ip, address[1]))
            for version in [v for v in self._endpoints if v != where.version]:
                other = self._endpoints.pop(version)  # the other family's datagrams are not the peer's
                other.on_event = None
                other.close()
            self._refresh()

    def connect_ex(self, address: tuple[Any, ...]) -> int:
        try:
            self.connect(address)
        except OSError as exc:
            return exc.errno or errno.EINVAL
        return 0

    def getsockname(self) -> SockAddr:
        with self._rt.lock:
            self._check_open()
            if len(self._endpoints) != 1:  # unbound, or on :: in both versions
                port = next(iter(self._endpoints.values())).port if self._endpoints else 0
                return self._unbound_name(port)
            [(version, ep)] = self._endpoints.items()
            ip = ep.local_ip
            if not ip and ep.remote is not None:  # connected: the address the datagrams leave from
                ip = families.source_for(self._rt.stack, Where(version, ep.remote[0])) or 0
            return self._sockaddr(version, ip, ep.port)

    def getpeername(self) -> SockAddr:
        with self._rt.lock:
            self._check_open()
            connected = self._connected()
            if connected is None:
                raise _oserror(errno.ENOTCONN)
            version, ep = connected
            assert ep.remote is not None
            return self._sockaddr(version, *ep.remote)

    def sendto(self, data: bytes | bytearray | memoryview, flags_or_address: Any, address: Any = None) -> int:
        flags, target = (0, flags_or_address) if address is None else (flags_or_address, address)
        _flags(flags, _SEND_FLAGS)
        where = self._for_peer(target)
        with self._rt.lock:
            ep = self._bound(where.version)
            stack = self._rt.stack
            if where.version == V4 and (where.ip == 0xFFFFFFFF or where.ip == stack.broadcast) and not self._broadcast:
                raise _oserror(errno.EACCES)  # as the kernel: broadcast only with SO_BROADCAST
            try:
                n = ep.sendto(data, (where.ip, target[1]), self._rt.now())
            except OSError as exc:
                raise _oserror(exc.errno or errno.EINVAL) from None
            self._after()
            return n

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        _flags(flags, _SEND_FLAGS)
        with self._rt.lock:
            ep = self._bound()
            try:
                n = ep.sendto(data, None, self._rt.now())
            except OSError as exc:
                raise _oserror(exc.errno or errno.EINVAL) from None
            self._after()
            return n

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        self.send(data, flags)

    def recvfrom(self, bufsize: int = MAX_PAYLOAD6, flags: int = 0) -> tuple[bytes, SockAddr | None]:
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        _flags(flags, MSG_PEEK | MSG_DONTWAIT)
        with self._rt.lock:
            self._bound()
        if self._shut_rd:
            return b"", None

        def attempt() -> tuple[bytes, SockAddr] | None:
            order = list(self._endpoints.items())
            if len(order) > 1:
                self._turn ^= 1
                if self._turn:
                    order.reverse()
            for version, ep in order:
                if flags & MSG_PEEK and ep.queue and not ep.error:
                    data, (ip, port) = ep.queue[0]
                else:
                    try:
                        got = ep.recvfrom()
                    except OSError as exc:
                        raise _oserror(exc.errno or errno.EINVAL) from None
                    if got is None:
                        continue
                    data, (ip, port) = got
                return data[:bufsize], self._sockaddr(version, ip, port)
            return None

        return self._wait(attempt, bool(flags & MSG_DONTWAIT))

    def recv(self, bufsize: int = MAX_PAYLOAD6, flags: int = 0) -> bytes:
        return self.recvfrom(bufsize, flags)[0]

    def recvmsg(self, bufsize: int = MAX_PAYLOAD6, ancbufsize: int = 0,
                flags: int = 0) -> tuple[bytes, list[tuple[int, int, bytes]], int, SockAddr | None]:
        """recvfrom's datagram as ``(data, [], 0, address)``; with MSG_ERRQUEUE, at once, the oldest ICMP error
        IP_RECVERR queued (EAGAIN when none): the payload it quoted, one IP_RECVERR (IPV6_RECVERR) message
        holding a sock_extended_err when ``ancbufsize`` has room, MSG_ERRQUEUE, and where the datagram was
        sent, as Linux's ip_recv_error. Its ee_type and ee_code are ICMP's even for an ICMPv6 error (the
        transports are told errors in ICMP's words); the offender's address is left unspecified."""
        if not flags & MSG_ERRQUEUE:
            data, address = self.recvfrom(bufsize, flags)
            return data, [], 0, address
        _flags(flags, MSG_ERRQUEUE | MSG_DONTWAIT | MSG_PEEK)
        with self._rt.lock:
            self._check_open()
            for version, ep in self._endpoints.items():
                report = (ep.errqueue[0] if ep.errqueue else None) if flags & MSG_PEEK else ep.next_error()
                if report is None:
                    continue
                self._refresh()
                message = _EXTENDED_ERR.pack(report.err, _ORIGIN_ICMP if version == V4 else _ORIGIN_ICMP6,
                                             report.icmp_type, report.icmp_code, 0, report.info, 0)
                message += bytes(16 if version == V4 else 28)  # an AF_UNSPEC offender
                ancdata: list[tuple[int, int, bytes]] = []
                out = MSG_ERRQUEUE | (MSG_TRUNC if len(report.payload) > bufsize else 0)
                if ancbufsize >= _socket.CMSG_SPACE(len(message)):
                    level, kind = (IPPROTO_IP, IP_RECVERR) if self.family == AF_INET else (IPPROTO_IPV6, IPV6_RECVERR)
                    ancdata.append((level, kind, message))
                elif ancbufsize:
                    out |= MSG_CTRUNC
                return report.payload[:bufsize], ancdata, out, self._sockaddr(version, *report.remote)
        raise _oserror(errno.EAGAIN)

    def shutdown(self, how: int) -> None:
        with self._rt.lock:
            self._check_open()
            if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
                raise _oserror(errno.EINVAL)
            if self._connected() is None:
                raise _oserror(errno.ENOTCONN)
            if how != SHUT_WR:
                self._shut_rd = True
                self._refresh()

    def listen(self, backlog: int = 0) -> None:
        self._check_open()
        raise _oserror(errno.EOPNOTSUPP)

    def accept(self) -> tuple[TcpSocket, SockAddr]:
        self._check_open()
        raise _oserror(errno.EOPNOTSUPP)

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        with self._rt.lock:
            self._check_open()
            if self._set_common_option(level, option, value):
                return
            if level == SOL_SOCKET and option == SO_BROADCAST:
                self._broadcast = bool(_int_option(value))
            elif (version := _recverr_version(level, option)) is not None:
                self._recverr[version] = bool(_int_option(value))
                if version in self._endpoints:
                    self._endpoints[version].recverr = self._recverr[version]
            else:
                raise OSError(errno.ENOPROTOOPT, "option not supported by pystack")

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> int | bytes:
        with self._rt.lock:
            self._check_open()
            value = self._common_option(level, option)
            if value is None and (version := _recverr_version(level, option)) is not None:
                value = int(self._recverr[version])
            if value is None and level == SOL_SOCKET:
                if option == SO_BROADCAST:
                    value = int(self._broadcast)
                elif option == SO_ERROR:
                    value = 0
                    for ep in self._endpoints.values():
                        if ep.error:
                            value, ep.error = ep.error, 0  # reported once, as the kernel's sk_err
                            break
            if value is None:
                raise OSError(errno.ENOPROTOOPT, "option not supported by pystack")
            return _option_result(value, buflen)

    def close(self) -> None:
        with self._rt.lock:
            if not self._closed:
                self._closed = True
                for ep in self._endpoints.values():
                    ep.on_event = None
                    ep.close()
                self._rt.changed.notify_all()
                self._release()


def _recverr_version(level: int, option: int) -> int | None:
    """The IP version IP_RECVERR (V4) or IPV6_RECVERR (V6) sets, None for another option."""
    if level == IPPROTO_IP and option == IP_RECVERR:
        return V4
    return V6 if level == IPPROTO_IPV6 and option == IPV6_RECVERR else None


@dataclasses.dataclass
class _TcpOptions:
    """What setsockopt set on a TCP socket; an accepted socket inherits its listener's (as Linux)."""

    nodelay: bool
    keepalive: bool
    linger: int | None = None
    """SO_LINGER: None off; 0 makes close() reset the connection; N > 0 makes close() wait up to N s."""
    tuned: dict[str, int | float] = dataclasses.field(default_factory=dict)
    """TcpConfig fields this socket's connections use instead of the stack's (buffers, keepalive timing)."""

    def apply(self, conn: Connection, base: TcpConfig, now: float) -> None:
        conn.set_nodelay(self.nodelay, now)
        conn.set_keepalive(self.keepalive, now)
        if self.tuned:
            conn.use_config(dataclasses.replace(base, **self.tuned), now)

    def copy(self) -> _TcpOptions:
        return dataclasses.replace(self, tuned=dict(self.tuned))


class TcpSocket(_Base):
    """A TCP socket on pystack: a listening socket or a connection, like the kernel's."""

    type = SOCK_STREAM
    proto = IPPROTO_TCP

    def __init__(self, runtime: Runtime, conn: Connection | None = None, options: _TcpOptions | None = None,
                 family: int = AF_INET) -> None:
        """A new socket, or with ``conn`` one over that connection (made on ``runtime``'s TCP layer of
        either version)."""
        super().__init__(runtime, family)
        cfg = runtime.stack.config.tcp
        self._opts = options or _TcpOptions(cfg.nodelay, cfg.keepalive)
        self._conn: Connection | None = None
        self._version = V4 if family == AF_INET else V6
        """The IP version of ``_conn`` (IPv4 on an AF_INET6 socket whose peer is ::ffff:a.b.c.d)."""
        self._listener: Listening | None = None
        self._local: tuple[tuple[int, ...], int, int] | None = None
        """(IP versions, address, port) bind() or listen() put the socket at."""
        self._reserved = False
        """``_local`` is held in the TCP layers' tables of bound ports (bind() without listen or connect)."""
        self._established = False
        """The connection got through its handshake and connect() said so (a later connect() is EISCONN)."""
        self._connecting = False
        """A connect() on a socket with a timeout (or none: non-blocking): the next connect() reports how
        it ended, as Linux does for a non-blocking descriptor."""
        self._error_reported = False
        """The connection's error was given out once (SO_ERROR, connect): as Linux's sk_err, not again."""
        if conn is not None:
            self._adopt(V6 if runtime.stack.tcp6.connections.get(conn.key) is conn else V4, conn)
            self._established = True

    def _adopt(self, version: int, conn: Connection) -> None:
        self._conn = conn
        self._version = version
        self._error_reported = False
        conn.on_event = _hook(self)
        self._opts.apply(conn, self._rt.stack.config.tcp, self._rt.now())

    def _is_bound(self) -> bool:
        return self._local is not None or self._conn is not None

    def _readiness(self) -> tuple[bool, bool]:
        if self._listener is not None:
            return self._listener.readable, False
        conn = self._conn
        if conn is None:
            return True, True  # as a kernel socket neither connected nor listening (POLLOUT | POLLHUP)
        return conn.readable or self._shut_rd, conn.writable

    # -- set-up
    def bind(self, address: tuple[Any, ...]) -> None:
        with self._rt.lock:
            self._check_open()
            if self._conn is not None or self._local is not None:
                raise _oserror(errno.EINVAL)
            versions, where = self._for_bind(address)
            self._local = (versions, where.ip, self._reserve(versions, where.ip, address[1]))
            self._reserved = True

    def _reserve(self, versions: tuple[int, ...], ip: int, port: int) -> int:
        """Hold ``port`` (0: an ephemeral one) at ``ip`` in the TCP layer of each version; the port."""
        layers = [families.tcp_layer(self._rt.stack, v) for v in versions]
        return families.on_one_port(port, [lambda p, layer=layer: layer.bind(ip, p) for layer in layers],
                                    [lambda p, layer=layer: layer.unbind(ip, p) for layer in layers], int)[0]

    def _unreserve(self) -> None:
        if self._reserved and self._local is not None:
            versions, ip, port = self._local
            for version in versions:
                families.tcp_layer(self._rt.stack, version).unbind(ip, port)
        self._reserved = False

    def listen(self, backlog: int = 128) -> None:
        with self._rt.lock:
            self._check_open()
            if self._conn is not None:
                raise _oserror(errno.EINVAL)
            if self._listener is not None:
                if self._listener.state == State.CLOSED:
                    raise _oserror(errno.EINVAL)
                self._listener.set_backlog(max(1, min(backlog, self._rt.stack.config.tcp.max_backlog)))
                return
            wildcard = Where(self._version, 0)
            versions, ip, port = self._local or (families.versions(self.family, wildcard, self._v6only), 0, 0)
            self._unreserve()
            now = self._rt.now()
            layers = [families.tcp_layer(self._rt.stack, v) for v in versions]
            try:
                made = families.on_one_port(
                    port, [lambda p, layer=layer: layer.listen(ip, p, max(backlog, 0)) for layer in layers],
                    [lambda listener: listener.close(now)] * len(layers), lambda listener: listener.local_port)
            except OSError:
                if self._local is not None:
                    self._reserve(versions, ip, port)  # still held by this socket, as before
                    self._reserved = True
                raise
            listening = Listening(list(zip(versions, made)))
            listening.set_on_event(_hook(self))
            self._listener = listening
            self._local = (versions, ip, listening.local_port)
            self._refresh()

    def accept(self) -> tuple[TcpSocket, SockAddr]:
        self._check_open()
        listener = self._listener
        if listener is None:
            raise _oserror(errno.EINVAL)

        def attempt() -> tuple[int, Connection] | None:
            if listener.state == State.CLOSED:
                raise _oserror(errno.EINVAL)  # shut down
            return listener.accept()

        version, conn = self._wait(attempt)
        with self._rt.lock:  # the listener's family and options, as Linux
            sock = TcpSocket(self._rt, conn, self._opts.copy(), self.family)
            sock._v6only = self._v6only
        return sock, self._sockaddr(version, conn.remote_ip, conn.remote_port)

    def connect(self, address: tuple[Any, ...]) -> None:
        err = self.connect_ex(address)
        if err == errno.EAGAIN and self._timeout:
            raise timeout("timed out")
        if err:
            raise _oserror(err)

    def connect_ex(self, address: tuple[Any, ...]) -> int:
        """0, or the errno connect() would raise. After a timeout it is EAGAIN (as CPython's); the
        attempt goes on, and a later call reports how it ended (EALREADY while it still runs)."""
        try:
            remote = self._for_peer(address)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise
            return exc.errno or errno.EINVAL
        remote_port = address[1]
        with self._rt.lock:
            self._check_open()
            if self._listener is not None:
                return errno.EISCONN
            old = self._conn
            if old is not None:
                if old.state in (State.SYN_SENT, State.SYN_RECEIVED):
                    return errno.EALREADY
                if self._connecting and old.error is None:
                    self._connecting = False
                    self._established = True
                    return 0
                self._connecting = False
                if self._established:
                    return errno.EISCONN
                if old.error is not None and not self._error_reported:
                    self._error_reported = True
                    return old.error
                # a failed attempt, reported: try again, as Linux does
            stack = self._rt.stack
            versions, local_ip, local_port = self._local or ((remote.version,), 0, 0)
            if remote.version not in versions:  # bound to an address of the other version
                return errno.ENETUNREACH
            local_ip = local_ip or families.source_for(stack, remote) or 0
            if not local_ip:
                return errno.ENETUNREACH
            self._unreserve()
            try:
                conn = families.tcp_layer(stack, remote.version).connect(
                    local_ip, remote.ip, remote_port, self._rt.now(), local_port or None)
            except OSError as exc:
                return exc.errno or errno.EINVAL
            self._adopt(remote.version, conn)
            self._after()
            if self._timeout == 0:  # as Linux, even if the answer came already: the SYN is on its way
                self._connecting = True
                return errno.EINPROGRESS

        def attempt() -> int | None:
            if conn.error is not None:
                return conn.error
            if conn.state not in (State.SYN_SENT, State.SYN_RECEIVED):
                return 0
            return None

        try:
            err = self._wait(attempt)
        except timeout:
            self._connecting = True
            return errno.EAGAIN
        except BlockingIOError:
            self._connecting = True
            return errno.EINPROGRESS
        if err:
            self._error_reported = True
        elif self._timeout is None:
            self._established = True
        else:
            # CPython waits for a connect with a timeout on a non-blocking descriptor, so Linux still
            # counts it as connecting: the next connect() returns 0, and only the one after EISCONN.
            self._connecting = True
        return err

    def _for_data(self, sending: bool) -> Connection:
        self._check_open()
        if self._conn is None:
            raise _oserror(errno.EPIPE if sending else errno.ENOTCONN)
        return self._conn

    # -- data
    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        _flags(flags, _SEND_FLAGS)
        conn = self._for_data(sending=True)
        view = memoryview(data).cast("B")

        def attempt() -> int | None:
            try:
                n = conn.send(view, self._rt.now())
            except OSError as exc:
                raise _oserror(exc.errno or errno.EPIPE) from None
            if n or not len(view):
                self._after()
                return n
            return None

        return self._wait(attempt, bool(flags & MSG_DONTWAIT))

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        """All of ``data``; the timeout bounds the whole call (as CPython's since 3.5)."""
        _flags(flags, _SEND_FLAGS)
        conn = self._for_data(sending=True)
        view = memoryview(data).cast("B")
        deadline = None if self._timeout is None else time.monotonic() + self._timeout

        def attempt() -> int | None:
            try:
                n = conn.send(view, self._rt.now())
            except OSError as exc:
                raise _oserror(exc.errno or errno.EPIPE) from None
            if n:
                self._after()
                return n
            return None

        while len(view):
            view = view[self._wait(attempt, bool(flags & MSG_DONTWAIT), deadline):]

    def sendto(self, data: bytes | bytearray | memoryview, flags_or_address: Any, address: Any = None) -> int:
        """On a connected socket the address is ignored (as Linux's TCP); otherwise EPIPE."""
        flags = 0 if address is None else flags_or_address
        return self.send(data, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        _flags(flags, _RECV_FLAGS)
        conn = self._for_data(sending=False)
        if self._shut_rd or bufsize == 0:
            return b""
        peek = bool(flags & MSG_PEEK)
        want = bufsize

        def attempt() -> bytes | None:
            try:
                data = conn.peek(want) if peek else conn.recv(want, self._rt.now())
            except BlockingIOError:
                return None
            except OSError as exc:
                raise _oserror(exc.errno or errno.ECONNRESET) from None
            if not peek:
                self._after()
            return data

        nonblocking = bool(flags & MSG_DONTWAIT)
        data = self._wait(attempt, nonblocking)
        if not flags & MSG_WAITALL or peek or not data:
            return data
        parts = [data]
        got = len(data)
        while got < bufsize:  # MSG_WAITALL: until bufsize bytes, EOF, an error or the timeout
            want = bufsize - got
            try:
                more = self._wait(attempt, nonblocking)
            except OSError:
                break
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, SockAddr | None]:
        return self.recv(bufsize, flags), None  # as the kernel's TCP: no address

    def shutdown(self, how: int) -> None:
        with self._rt.lock:
            self._check_open()
            if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
                raise _oserror(errno.EINVAL)
            if self._listener is not None and how != SHUT_WR:
                self._listener.close(self._rt.now())  # as Linux: stops listening, wakes accept()
                self._after()
                return
            conn = self._conn
            if conn is None or conn.state == State.CLOSED:
                raise _oserror(errno.ENOTCONN)
            if how != SHUT_WR:
                self._shut_rd = True
            if how != SHUT_RD:
                conn.shutdown_write(self._rt.now())
            self._after()

    # -- options and names
    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        with self._rt.lock:
            self._check_open()
            opts, conn = self._opts, self._conn
            if self._set_common_option(level, option, value):
                return
            if level == SOL_SOCKET and option == SO_LINGER:
                if isinstance(value, int) or len(value) < 8:
                    raise _oserror(errno.EINVAL)
                onoff, seconds = struct.unpack_from("ii", value)
                opts.linger = max(seconds, 0) if onoff else None
                return
            number = _int_option(value)
            if level == IPPROTO_TCP and option == TCP_NODELAY:
                opts.nodelay = bool(number)
            elif level == SOL_SOCKET and option == SO_KEEPALIVE:
                opts.keepalive = bool(number)
            elif level == SOL_SOCKET and option in (SO_RCVBUF, SO_SNDBUF):
                cfg = self._rt.stack.config.tcp
                field, ceiling = (("recv_buffer", cfg.recv_buffer_max) if option == SO_RCVBUF
                                  else ("send_buffer", cfg.send_buffer_max))
                size = min(max(number, _BUFFER_MIN), max(ceiling, _BUFFER_MIN))
                opts.tuned[field] = opts.tuned[field + "_max"] = size  # no auto-tuning, as Linux
            elif level == IPPROTO_TCP and option in (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT):
                if not 1 <= number <= _KEEPALIVE_MAX:
                    raise _oserror(errno.EINVAL)
                field = {TCP_KEEPIDLE: "keepalive_idle", TCP_KEEPINTVL: "keepalive_interval",
                         TCP_KEEPCNT: "keepalive_probes"}[option]
                opts.tuned[field] = number
            else:
                raise OSError(errno.ENOPROTOOPT, "option not supported by pystack")
            if conn is not None:
                opts.apply(conn, self._rt.stack.config.tcp, self._rt.now())
                self._after()

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> int | bytes:
        with self._rt.lock:
            self._check_open()
            value: int | bytes | None = self._common_option(level, option)
            opts, conn = self._opts, self._conn
            cfg = self._rt.stack.config.tcp
            if opts.tuned:
                cfg = dataclasses.replace(cfg, **opts.tuned)
            if value is not None:
                pass
            elif level == IPPROTO_TCP and option == TCP_NODELAY:
                value = int(opts.nodelay)
            elif level == SOL_SOCKET and option == SO_KEEPALIVE:
                value = int(opts.keepalive)
            elif level == SOL_SOCKET and option == SO_LINGER:
                value = struct.pack("ii", opts.linger is not None, opts.linger or 0)
            elif level == SOL_SOCKET and option == SO_RCVBUF:
                value = int(conn.info()["rcv_space"]) if conn is not None else cfg.recv_buffer
            elif level == SOL_SOCKET and option == SO_SNDBUF:
                value = conn.send_space + conn.unsent if conn is not None else cfg.send_buffer
            elif level == SOL_SOCKET and option == SO_ERROR:
                value = 0
                if conn is not None and conn.error is not None and not self._error_reported:
                    self._error_reported = True
                    value = conn.error
            elif level == SOL_SOCKET and option == _socket.SO_ACCEPTCONN:
                value = int(self._listener is not None and self._listener.state == State.LISTEN)
            elif level == IPPROTO_TCP and option == TCP_KEEPIDLE:
                value = int(cfg.keepalive_idle)
            elif level == IPPROTO_TCP and option == TCP_KEEPINTVL:
                value = int(cfg.keepalive_interval)
            elif level == IPPROTO_TCP and option == TCP_KEEPCNT:
                value = cfg.keepalive_probes
            elif level == IPPROTO_TCP and option == TCP_MAXSEG:
                value = int(conn.info()["snd_mss"]) if conn is not None else cfg.default_mss
            elif level == IPPROTO_TCP and option == TCP_INFO:
                value = self._tcp_info_struct()
            if value is None:
                raise OSError(errno.ENOPROTOOPT, "option not supported by pystack")
            return _option_result(value, buflen)

    def tcp_info(self) -> dict[str, int | float | bool | str]:
        """The connection's TCP_INFO view as a dict (pystack/tcp/connection.py ``Connection.info``)."""
        with self._rt.lock:
            self._check_open()
            if self._conn is None:
                return {"state": self.state.name}
            return self._conn.info()

    def _tcp_info_struct(self) -> bytes:
        """The leading fields of Linux's struct tcp_info, for programs that parse getsockopt(TCP_INFO)."""
        state = _LINUX_TCP_STATES[self.state]
        if self._conn is None:
            return _TCP_INFO.pack(state, *([0] * 7), *([0] * 24))
        i = self._conn.info()
        mss = max(int(i["snd_mss"]), 1)
        us = lambda seconds: int(float(seconds) * 1e6)  # noqa: E731
        options = (1 if i["timestamps"] else 0) | (2 if i["sack"] else 0) | (4 if i["window_scaling"] else 0)
        wscale = (int(i["snd_wscale"]) & 0xF) | ((int(i["rcv_wscale"]) & 0xF) << 4)
        ssthresh = min(int(i["ssthresh"]) // mss, 0x7FFFFFFF)
        return _TCP_INFO.pack(
            state, 3 if i["in_recovery"] else 0, min(int(i["retransmits"]), 255), 0, 0, options, wscale, 0,
            us(i["rto"]), 0, mss, int(i["rcv_mss"]), -(-int(i["unacked"]) // mss), 0, 0, 0, 0,
            0, 0, 0, 0, int(i["pmtu"]), int(i["rcv_space"]), us(i["srtt"]), us(i["rttvar"]), ssthresh,
            int(i["cwnd"]) // mss, int(i["advmss"]), 3, 0, int(i["rcv_space"]), int(i["total_retrans"]))

    def getsockname(self) -> SockAddr:
        with self._rt.lock:
            self._check_open()
            if self._conn is not None:
                return self._sockaddr(self._version, self._conn.local_ip, self._conn.local_port)
            if self._local is None:
                return self._unbound_name()
            versions, ip, port = self._local
            return self._sockaddr(versions[-1], ip, port)  # on :: in both versions: ("::", port, 0, 0)

    def getpeername(self) -> SockAddr:
        with self._rt.lock:
            conn = self._for_data(sending=False)
            if conn.state in (State.SYN_SENT, State.SYN_RECEIVED, State.CLOSED):
                raise _oserror(errno.ENOTCONN)
            return self._sockaddr(self._version, conn.remote_ip, conn.remote_port)

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
                self._listener.set_on_event(None)
                self._listener.close(now)
            self._unreserve()
            conn = self._conn
            linger = self._opts.linger
            if conn is not None:
                conn.on_event = None
                if linger == 0:
                    conn.abort(now)  # SO_LINGER 0: a reset, as the kernel
                else:
                    conn.close(now)
            self._release()
            self._rt.flush()
            self._rt.changed.notify_all()
            self._rt.wake()
            if conn is not None and linger:  # SO_LINGER N: wait until the peer acknowledged our FIN
                deadline = time.monotonic() + linger
                while conn.state in (State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING,
                                     State.LAST_ACK, State.SYN_RECEIVED) and time.monotonic() < deadline:
                    self._rt.changed.wait(deadline - time.monotonic())


Socket = socket
"""Alias: ``Socket(runtime, AF_INET, SOCK_DGRAM)`` reads like ``socket.socket(...)``."""
