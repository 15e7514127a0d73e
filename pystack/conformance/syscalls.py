"""packetdrill's system calls mapped onto pystack's TCP user calls (RFC 9293 3.9.1).

Each call is an *attempt*: a function that returns the call's result, or None while a blocking call
would still wait. The driver retries a pending attempt after every packet and timer, so a blocking
``read`` returns when the segment that feeds it arrives, at that segment's time.

Only pystack's public objects are used: ``stack.tcp.listen``/``connect`` (``stack.tcp6``'s over IPv6) and
the ``Listener`` and ``Connection`` they return (send, recv, shutdown_write, close, state, error, readable,
writable ...). What those objects cannot express (a file flag, SHUT_RD's "read returns 0", the fd table)
is kept here, as the socket layer above TCP keeps it in a kernel.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import termios
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from pystack.conformance.packets import BIND_PORT
from pystack.conformance.shell import FAST_OPEN
from pystack.conformance.script import Dots, Expr, ListExpr, Num, Or, StructExpr, Sym, Syscall
from pystack.tcp.state import State

if TYPE_CHECKING:
    from pystack.conformance.driver import Driver
    from pystack.tcp.connection import Connection
    from pystack.tcp.listener import Listener

SIOCINQ = termios.FIONREAD
SIOCOUTQ = termios.TIOCOUTQ
SYMBOLS: dict[str, int] = {
    "AF_INET": socket.AF_INET, "SOCK_STREAM": socket.SOCK_STREAM, "SOCK_DGRAM": socket.SOCK_DGRAM,
    "IPPROTO_TCP": socket.IPPROTO_TCP, "IPPROTO_UDP": socket.IPPROTO_UDP, "IPPROTO_IP": 0,
    "SOL_SOCKET": socket.SOL_SOCKET, "SOL_TCP": socket.IPPROTO_TCP, "SOL_IP": 0,
    "SO_REUSEADDR": socket.SO_REUSEADDR, "SO_KEEPALIVE": socket.SO_KEEPALIVE, "SO_ERROR": socket.SO_ERROR,
    "SO_SNDBUF": socket.SO_SNDBUF, "SO_RCVBUF": socket.SO_RCVBUF,
    "TCP_NODELAY": socket.TCP_NODELAY, "TCP_MAXSEG": socket.TCP_MAXSEG,
    "SHUT_RD": socket.SHUT_RD, "SHUT_WR": socket.SHUT_WR, "SHUT_RDWR": socket.SHUT_RDWR,
    "F_GETFL": fcntl.F_GETFL, "F_SETFL": fcntl.F_SETFL, "O_RDWR": os.O_RDWR, "O_NONBLOCK": os.O_NONBLOCK,
    "SIOCINQ": SIOCINQ, "FIONREAD": SIOCINQ, "SIOCOUTQ": SIOCOUTQ, "TIOCOUTQ": SIOCOUTQ,
    "MSG_DONTWAIT": socket.MSG_DONTWAIT, "MSG_PEEK": socket.MSG_PEEK,
    "POLLIN": select.POLLIN, "POLLOUT": select.POLLOUT, "POLLERR": select.POLLERR, "POLLHUP": select.POLLHUP,
    "POLLRDHUP": getattr(select, "POLLRDHUP", 0x2000), "POLLRDNORM": select.POLLRDNORM,
    "POLLWRNORM": select.POLLWRNORM, "NULL": 0,
}
SYSCALLS = frozenset((
    "socket", "bind", "listen", "accept", "connect", "read", "recv", "recvfrom", "recvmsg", "write", "send",
    "sendto", "sendmsg", "close", "shutdown", "setsockopt", "getsockopt", "fcntl", "ioctl", "poll",
))
_WHY_NOT = {
    "epoll_create": "epoll", "epoll_ctl": "epoll", "epoll_wait": "epoll", "sendfile": "sendfile",
    "splice": "splice and pipes", "pipe": "splice and pipes", "open": "files", "cap_set": "capabilities",
}
SOCKOPTS = frozenset((
    ("SOL_SOCKET", "SO_REUSEADDR"), ("SOL_SOCKET", "SO_KEEPALIVE"), ("SOL_SOCKET", "SO_ERROR"),
    ("SOL_TCP", "TCP_NODELAY"), ("SOL_TCP", "TCP_MAXSEG"), ("SOL_SOCKET", "SO_SNDBUF"),
    ("IPPROTO_TCP", "TCP_NODELAY"), ("IPPROTO_TCP", "TCP_MAXSEG"),
))
_FEATURES = {
    "MSG_FASTOPEN": FAST_OPEN, "TCP_FASTOPEN": FAST_OPEN, "TCP_FASTOPEN_CONNECT": FAST_OPEN,
    "TCP_FASTOPEN_KEY": FAST_OPEN, "TCP_FASTOPEN_NO_COOKIE": FAST_OPEN,
    "SO_ZEROCOPY": "zerocopy (MSG_ZEROCOPY)", "MSG_ZEROCOPY": "zerocopy (MSG_ZEROCOPY)",
    "SO_TIMESTAMPING": "timestamping (SO_TIMESTAMPING)", "MSG_EOR": "record boundaries (MSG_EOR)",
}
"""What a flag or option belongs to, where that names the missing feature better than the flag does."""
_SEND_FLAGS = frozenset(("MSG_DONTWAIT",))
_RECV_FLAGS = frozenset(("MSG_DONTWAIT", "MSG_PEEK"))
_DEFAULT_MSS = 536  # what Linux's TCP_MAXSEG reads before a connection has an MSS (RFC 9293 3.7.1)


@dataclass(frozen=True, slots=True)
class Result:
    value: int
    err: int = 0
    outputs: dict[str, int] = field(default_factory=dict)
    """Values the call hands back through its arguments (a getsockopt value, poll's revents)."""

    @property
    def errno_name(self) -> str | None:
        return errno.errorcode.get(self.err, str(self.err)) if self.err else None


Attempt = Callable[[], "Result | None"]


class Unsupported(Exception):
    """The script needs something pystack does not have (the verdict is a skip, with this reason)."""


class CallFailed(Exception):
    """The call cannot be made as written (a bad fd in the script's own terms, a wrong argument form)."""


def unsupported(call: Syscall) -> str | None:
    """Why this call cannot run on pystack, found before the script starts; None if it can."""
    if call.name not in SYSCALLS:
        return f"{_WHY_NOT.get(call.name, call.name + '()')} (system call {call.name})"
    syms = set(_symbols(call.args))
    if call.name == "socket" and "SOCK_STREAM" not in syms:
        return "sockets other than TCP"
    if call.name in ("setsockopt", "getsockopt") and len(call.args) >= 3:
        level, name = call.args[1], call.args[2]
        if not (isinstance(level, Sym) and isinstance(name, Sym) and (level.name, name.name) in SOCKOPTS):
            return _FEATURES.get(_text(name), f"socket option {_text(name)}")
    if call.name in ("send", "sendto", "sendmsg") and len(call.args) >= 3:
        flags = call.args[3] if call.name in ("send", "sendto") and len(call.args) > 3 else call.args[2]
        bad = sorted(set(_symbols((flags,))) - _SEND_FLAGS)
        if bad:
            return _FEATURES.get(bad[0], "send flag " + ", ".join(bad))
    if call.name in ("recv", "recvfrom", "recvmsg") and len(call.args) >= 3:
        flags = call.args[3] if call.name in ("recv", "recvfrom") and len(call.args) > 3 else call.args[2]
        unknown = sorted(set(_symbols((flags,))) - _RECV_FLAGS)
        if unknown:
            return "receive flag " + ", ".join(unknown)
    if call.name in ("recvmsg", "sendmsg") and len(call.args) >= 2 and isinstance(call.args[1], StructExpr):
        control = call.args[1].get("msg_control")
        if control is not None and not (isinstance(control, ListExpr) and not control.items):
            return "control messages (" + ", ".join(sorted(s for s in _symbols((control,)) if s.startswith(("TCP_", "SCM_", "SO_")))) + ")"
    if call.name in ("send", "write", "sendto", "recv", "read", "recvfrom") and len(call.args) >= 2 \
            and isinstance(call.args[1], Sym) and call.args[1].name == "NULL":
        return "bad-argument checks of the kernel's system call layer (a NULL buffer)"
    if call.name == "ioctl" and len(call.args) >= 2 and not (
            isinstance(call.args[1], Sym) and call.args[1].name in ("SIOCINQ", "FIONREAD", "SIOCOUTQ", "TIOCOUTQ")):
        return f"ioctl {_text(call.args[1])}"
    unknown = sorted(s for s in syms if s not in SYMBOLS and not s.startswith(("msg_", "cmsg_")))
    if unknown:
        return "symbol " + ", ".join(unknown)
    return None


def _symbols(exprs: tuple[Expr, ...]) -> list[str]:
    out: list[str] = []
    for e in exprs:
        if isinstance(e, Sym):
            out.append(e.name)
        elif isinstance(e, Or):
            out += _symbols((e.left, e.right))
        elif isinstance(e, ListExpr):
            out += _symbols(e.items)
        elif isinstance(e, StructExpr):
            out += _symbols(tuple(f.value for f in e.fields))
    return out


def _text(e: Expr) -> str:
    if isinstance(e, Sym):
        return e.name
    if isinstance(e, Num):
        return str(e.value)
    return "..."


def value(e: Expr) -> int:
    """An argument's number: symbols from the table, ``A|B`` or'ed."""
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Sym):
        if e.name not in SYMBOLS:
            raise Unsupported(f"symbol {e.name}")
        return SYMBOLS[e.name]
    if isinstance(e, Or):
        return value(e.left) | value(e.right)
    if isinstance(e, ListExpr) and len(e.items) == 1:
        return value(e.items[0])
    raise CallFailed(f"expected a number, found {e!r}")


@dataclass(slots=True)
class Sock:
    """One file descriptor: what a kernel's struct socket keeps above TCP."""
    fd: int
    nonblocking: bool = False
    bound: bool = False
    listener: Listener | None = None
    conn: Connection | None = None
    shut_rd: bool = False
    connecting: bool = False
    """A non-blocking connect() is under way (a second connect() says EALREADY or 0)."""
    options: dict[tuple[int, int], int] = field(default_factory=dict)
    error_read: bool = False


def _err(code: int) -> Result:
    return Result(-1, code)


class Sockets:
    """The fd table and the calls, on the driver's stack and clock."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.fds: dict[int, Sock] = {}
        self._want_fd: int | None = None

    @property
    def stack(self):  # type: ignore[no-untyped-def]
        return self.driver.stack

    def now(self) -> float:
        return self.driver.now

    def _new_fd(self) -> int:
        """The script's own number for the new socket, as packetdrill maps script fds to live ones."""
        fd = self._want_fd
        if fd is not None and fd >= 0 and fd not in self.fds:
            return fd
        fd = 3
        while fd in self.fds:
            fd += 1
        return fd

    def _sock(self, e: Expr) -> Sock:
        fd = value(e)
        sock = self.fds.get(fd)
        if sock is None:
            raise _Return(_err(errno.EBADF))
        return sock

    def call(self, call: Syscall) -> Attempt:
        """The attempt for ``call`` (its arguments read now; some calls act only when attempted)."""
        handler = getattr(self, "sys_" + call.name)
        self._want_fd = call.result.value if isinstance(call.result, Num) else None
        try:
            return handler(call.args)  # type: ignore[no-any-return]
        except _Return as r:
            result = r.result
            return lambda: result

    # ------------------------------------------------------------ set-up

    def sys_socket(self, args: tuple[Expr, ...]) -> Attempt:
        fd = self._new_fd()
        self.fds[fd] = Sock(fd)
        return lambda: Result(fd)

    def sys_bind(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        if sock.bound or sock.conn is not None:
            return lambda: _err(errno.EINVAL)
        sock.bound = True
        return lambda: Result(0)

    def sys_listen(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        backlog = value(args[1])
        if sock.conn is not None:
            return lambda: _err(errno.EINVAL)
        if sock.listener is None:
            try:
                sock.listener = self.driver.tcp.listen(self.driver.family.local, BIND_PORT, backlog)
            except OSError as exc:
                code = exc.errno or errno.EINVAL
                return lambda: _err(code)
        self.driver.listening(sock)
        return lambda: Result(0)

    def sys_accept(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        listener = sock.listener
        if listener is None:
            return lambda: _err(errno.EINVAL)

        def attempt() -> Result | None:
            if listener.state == State.CLOSED:
                return _err(errno.EBADF)
            conn = listener.accept()
            if conn is None:
                return _err(errno.EAGAIN) if sock.nonblocking else None
            fd = self._new_fd()
            child = Sock(fd, conn=conn, options=dict(sock.options))
            self.fds[fd] = child
            self._apply_options(child)
            return Result(fd)
        return attempt

    def sys_connect(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        if sock.listener is not None:
            return lambda: _err(errno.EISCONN)
        if sock.conn is None:
            try:
                family = self.driver.family
                conn = self.driver.tcp.connect(family.local, family.remote, BIND_PORT, self.now(),
                                               BIND_PORT if sock.bound else None)
            except OSError as exc:
                code = exc.errno or errno.EINVAL
                return lambda: _err(code)
            sock.conn = conn
            self._apply_options(sock)
            self.driver.connecting(conn)
            if sock.nonblocking:
                sock.connecting = True
                return lambda: _err(errno.EINPROGRESS)
        elif sock.connecting:
            conn = sock.conn
            if conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
                return lambda: _err(errno.EALREADY)
            sock.connecting = False
            if conn.error is not None:
                code = conn.error
                sock.error_read = True
                return lambda: _err(code)
            return lambda: Result(0)
        else:
            return lambda: _err(errno.EISCONN)
        conn = sock.conn

        def attempt() -> Result | None:
            if conn.error is not None:
                sock.error_read = True
                return _err(conn.error)
            if conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
                return None
            return Result(0)
        return attempt

    # ------------------------------------------------------------ data

    def _connection(self, sock: Sock) -> Connection:
        if sock.conn is None:
            raise _Return(_err(errno.ENOTCONN))
        return sock.conn

    def _read(self, args: tuple[Expr, ...], size: int, flags: int) -> Attempt:
        sock = self._sock(args[0])
        conn = self._connection(sock)
        nonblocking = sock.nonblocking or bool(flags & socket.MSG_DONTWAIT)
        peek = bool(flags & socket.MSG_PEEK)

        def attempt() -> Result | None:
            if peek:
                if conn.recv_available:
                    return Result(min(size, conn.recv_available))
            else:
                try:
                    data = conn.recv(size, self.now())
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno == conn.error:
                        sock.error_read = True
                    return _err(exc.errno or errno.EIO)
                else:
                    return Result(len(data))
            if sock.shut_rd or conn.at_eof:
                return Result(0)
            return _err(errno.EAGAIN) if nonblocking else None
        return attempt

    def sys_read(self, args: tuple[Expr, ...]) -> Attempt:
        return self._read(args, value(args[2]), 0)

    def sys_recv(self, args: tuple[Expr, ...]) -> Attempt:
        return self._read(args, value(args[2]), value(args[3]) if len(args) > 3 else 0)

    sys_recvfrom = sys_recv

    def sys_recvmsg(self, args: tuple[Expr, ...]) -> Attempt:
        return self._read(args, _iov_size(args[1]), value(args[2]) if len(args) > 2 else 0)

    def _write(self, args: tuple[Expr, ...], size: int, flags: int) -> Attempt:
        sock = self._sock(args[0])
        conn = self._connection(sock)
        nonblocking = sock.nonblocking or bool(flags & socket.MSG_DONTWAIT)
        data = bytes(size)  # packetdrill's buffers are zeros, and so are the payloads it expects
        done = 0

        def attempt() -> Result | None:
            nonlocal done
            try:
                while done < size:
                    n = conn.send(memoryview(data)[done:], self.now())
                    if n <= 0:
                        break
                    done += n
            except OSError as exc:
                if done:
                    return Result(done)
                return _err(exc.errno or errno.EIO)
            if done == size or (nonblocking and done):
                return Result(done)
            return _err(errno.EAGAIN) if nonblocking else None
        return attempt

    def sys_write(self, args: tuple[Expr, ...]) -> Attempt:
        return self._write(args, value(args[2]), 0)

    def sys_send(self, args: tuple[Expr, ...]) -> Attempt:
        return self._write(args, value(args[2]), value(args[3]) if len(args) > 3 else 0)

    sys_sendto = sys_send

    def sys_sendmsg(self, args: tuple[Expr, ...]) -> Attempt:
        return self._write(args, _iov_size(args[1]), value(args[2]) if len(args) > 2 else 0)

    # ------------------------------------------------------------ tear-down

    def sys_close(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        del self.fds[sock.fd]
        if sock.listener is not None:
            sock.listener.close(self.now())
        if sock.conn is not None:
            sock.conn.close(self.now())
        return lambda: Result(0)

    def sys_shutdown(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        how = value(args[1])
        conn = self._connection(sock)
        if conn.state in (State.CLOSED, State.SYN_SENT) and conn.error is None and how != socket.SHUT_RD:
            return lambda: _err(errno.ENOTCONN)
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            sock.shut_rd = True
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            conn.shutdown_write(self.now())
        return lambda: Result(0)

    # ------------------------------------------------------------ control

    def sys_fcntl(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        cmd = value(args[1])
        if cmd == fcntl.F_GETFL:
            flags = os.O_RDWR | (os.O_NONBLOCK if sock.nonblocking else 0)
            return lambda: Result(flags)
        if cmd == fcntl.F_SETFL:
            sock.nonblocking = bool(value(args[2]) & os.O_NONBLOCK)
            return lambda: Result(0)
        return lambda: _err(errno.EINVAL)

    def sys_ioctl(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        request = value(args[1])
        if sock.conn is None:
            return lambda: _err(errno.EINVAL)
        conn = sock.conn
        if request == SIOCINQ:
            return lambda: Result(0, outputs={"value": conn.recv_available})
        return lambda: Result(0, outputs={"value": conn.unsent})

    def sys_setsockopt(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        key = (value(args[1]), value(args[2]))
        sock.options[key] = value(args[3])
        if key == (socket.SOL_SOCKET, socket.SO_SNDBUF):
            sock.options[key] = 2 * sock.options[key]  # as Linux: room for its bookkeeping too
        if key == (socket.IPPROTO_TCP, socket.TCP_MAXSEG):
            if not 88 <= sock.options[key] <= 32767:
                return lambda: _err(errno.EINVAL)
            self.driver.set_user_mss(sock.options[key])
        self._apply_options(sock)
        return lambda: Result(0)

    def _apply_options(self, sock: Sock) -> None:
        conn = sock.conn
        if conn is None:
            return
        for (level, name), v in sock.options.items():
            if (level, name) == (socket.IPPROTO_TCP, socket.TCP_NODELAY):
                conn.set_nodelay(bool(v), self.now())
            elif (level, name) == (socket.SOL_SOCKET, socket.SO_KEEPALIVE):
                conn.set_keepalive(bool(v), self.now())
            elif (level, name) == (socket.SOL_SOCKET, socket.SO_SNDBUF):
                self.driver.set_send_buffer(conn, v)

    def sys_getsockopt(self, args: tuple[Expr, ...]) -> Attempt:
        sock = self._sock(args[0])
        key = (value(args[1]), value(args[2]))
        conn = sock.conn
        if key == (socket.SOL_SOCKET, socket.SO_ERROR):
            err = 0
            if conn is not None and conn.error is not None and not sock.error_read:
                err = conn.error
                sock.error_read = True
            return lambda: Result(0, outputs={"value": err})
        if key == (socket.IPPROTO_TCP, socket.TCP_MAXSEG):
            mss = self.driver.mss_of(conn) if conn is not None and conn.state not in (
                State.SYN_SENT, State.CLOSED) else sock.options.get(key, _DEFAULT_MSS)
            return lambda: Result(0, outputs={"value": mss})
        got = sock.options.get(key, 0)
        return lambda: Result(0, outputs={"value": got})

    def sys_poll(self, args: tuple[Expr, ...]) -> Attempt:
        fds = args[0]
        if not isinstance(fds, ListExpr) or not all(isinstance(f, StructExpr) for f in fds.items):
            raise CallFailed("poll() wants [{fd=..., events=..., revents=...}]")
        entries = []
        for item in fds.items:
            assert isinstance(item, StructExpr)
            fd_e, ev_e = item.get("fd"), item.get("events")
            if fd_e is None or ev_e is None:
                raise CallFailed("poll() entries need fd and events")
            entries.append((value(fd_e), value(ev_e)))
        timeout_ms = value(args[2])
        start = self.now()

        def attempt() -> Result | None:
            ready = 0
            revents: dict[str, int] = {}
            for i, (fd, events) in enumerate(entries):
                got = self._revents(fd, events)
                revents[f"revents{i}"] = got
                ready += bool(got)
            if ready or timeout_ms == 0 or (timeout_ms > 0 and self.now() >= start + timeout_ms / 1000):
                return Result(ready, outputs=revents)
            return None
        return attempt

    def _revents(self, fd: int, events: int) -> int:
        sock = self.fds.get(fd)
        if sock is None:
            return select.POLLNVAL
        got = 0
        if sock.listener is not None:
            if sock.listener.readable:
                got |= select.POLLIN
            return got & (events | select.POLLERR | select.POLLHUP)
        conn = sock.conn
        if conn is None:
            return select.POLLOUT & events | select.POLLHUP
        if conn.readable or sock.shut_rd:
            got |= select.POLLIN | select.POLLRDNORM
        if conn.state not in (State.SYN_SENT, State.SYN_RECEIVED) and conn.writable:
            got |= select.POLLOUT | select.POLLWRNORM
        if conn.error is not None:
            got |= select.POLLERR
        if conn.state == State.CLOSED:
            got |= select.POLLHUP
        return got & (events | select.POLLERR | select.POLLHUP)


class _Return(Exception):
    """Raised inside a handler to answer the call at once (a bad fd, a socket not connected)."""

    def __init__(self, result: Result) -> None:
        self.result = result


def _iov_size(msg: Expr) -> int:
    if not isinstance(msg, StructExpr):
        raise CallFailed("expected a msghdr {...}")
    iov = msg.get("msg_iov")
    if not isinstance(iov, ListExpr):
        raise CallFailed("expected msg_iov=[{..., LEN}]")
    total = 0
    for item in iov.items:
        if not isinstance(item, StructExpr) or len(item.fields) != 2:
            raise CallFailed("expected msg_iov=[{..., LEN}]")
        total += value(item.fields[1].value)
    return total


def expected_outputs(call: Syscall) -> dict[str, int]:
    """What the script expects a call to hand back through its arguments, by the names Result uses."""
    out: dict[str, int] = {}
    args = call.args
    if call.name in ("getsockopt",) and len(args) >= 4 and not isinstance(args[3], Dots):
        out["value"] = value(args[3])
    elif call.name == "ioctl" and len(args) >= 3 and not isinstance(args[2], Dots):
        out["value"] = value(args[2])
    elif call.name == "poll" and isinstance(args[0], ListExpr):
        for i, item in enumerate(args[0].items):
            if isinstance(item, StructExpr) and item.get("revents") is not None:
                out[f"revents{i}"] = value(item.get("revents"))  # type: ignore[arg-type]
    return out



