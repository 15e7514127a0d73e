"""The daemon's side of the control socket, served by the poll loop itself.

Every socket is non-blocking and watched by the loop (Runtime.watch): a readable listener accepts, a
readable client gives what it has of its request line, a writable one takes what fits of its answer. A
client never makes the loop wait: its request is bounded (MAX_REQUEST bytes within REQUEST_TIMEOUT), its
answer is built at once under the loop's lock and written as the client reads it (within REPLY_TIMEOUT),
and at most MAX_CLIENTS are served at once. Refusals are counted as drops ``control.*``: not root, busy,
a bad or too long request, a client too slow.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import stat
import struct
from typing import TYPE_CHECKING

from pystack.control.protocol import (MAX_CLIENTS, MAX_REQUEST, REPLY_TIMEOUT, REQUEST_TIMEOUT, RequestError,
                                      encode_reply, parse_request, sockaddr)
from pystack.control.snapshot import answer

if TYPE_CHECKING:
    from pystack.runtime import Runtime

log = logging.getLogger("pystack")

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_BAD = select.POLLERR | select.POLLHUP | select.POLLNVAL


class ControlError(Exception):
    """The control socket could not be opened (one line for the user)."""


class _Client:
    __slots__ = ("sock", "fd", "inbox", "outbox", "deadline")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.inbox = bytearray()
        self.outbox: memoryview | None = None
        """The answer's unwritten rest, once the request was read."""
        self.deadline = deadline


class ControlServer:
    """Listens on ``address`` (``@name`` abstract, else a path) for the loop of ``runtime``."""

    def __init__(self, runtime: Runtime, address: str) -> None:
        self.runtime = runtime
        self.address = address
        self.counters = runtime.stack.counters
        self._clients: dict[int, _Client] = {}
        self._path = None if address.startswith("@") else address
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            if self._path is not None:
                _remove_stale_socket(self._path)
            old_umask = os.umask(0o077)  # a path socket is root's alone from the start
            try:
                sock.bind(sockaddr(address))
            finally:
                os.umask(old_umask)
            sock.listen(MAX_CLIENTS)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ControlError(f"control socket {address} is taken: is another pystack daemon running on "
                                   "this TAP in this network namespace? (--control PATH or --no-control)") from None
            raise ControlError(f"cannot listen on control socket {address}: {exc.strerror}") from None
        self._sock = sock
        runtime.watch(sock.fileno(), select.POLLIN, self._on_listener)
        runtime.stack.timer_sources.append(self)

    # ------------------------------------------------------------------ the loop's calls

    def get_timer(self) -> float | None:
        """The earliest client deadline (called every loop pass: nothing to do without clients)."""
        if not self._clients:
            return None
        return min(c.deadline for c in self._clients.values())

    def handle_timer(self, now: float) -> None:
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            self.counters.drop("control.client_too_slow")
            self._drop(client)

    def _on_listener(self, events: int, now: float) -> None:
        for _ in range(MAX_CLIENTS):  # a bounded number per wake-up: frames get their turn
            try:
                sock, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters.drop("control.accept_failed")
                return
            sock.setblocking(False)
            uid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))[1]
            if uid != 0:
                self.counters.drop("control.not_root")
                _refuse(sock, f"only root may ask this daemon (you are uid {uid})")
                continue
            if len(self._clients) >= MAX_CLIENTS:
                self.counters.drop("control.busy")
                _refuse(sock, f"busy: {MAX_CLIENTS} clients are being served")
                continue
            client = _Client(sock, now + REQUEST_TIMEOUT)
            self._clients[client.fd] = client
            self.runtime.watch(client.fd, select.POLLIN, lambda ev, t, c=client: self._on_client(c, ev, t))

    def _on_client(self, client: _Client, events: int, now: float) -> None:
        try:
            if client.outbox is None:
                self._read(client, now)
            if client.outbox is not None:
                self._write(client)
        except OSError:
            self.counters.drop("control.client_error")
            self._drop(client)

    # ------------------------------------------------------------------ one client

    def _read(self, client: _Client, now: float) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST + 1 - len(client.inbox))
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            self.counters.drop("control.no_request")  # closed before a whole line
            self._drop(client)
            return
        client.inbox += data
        end = client.inbox.find(b"\n")
        if end < 0:
            if len(client.inbox) > MAX_REQUEST:
                self._refuse(client, RequestError(f"request longer than {MAX_REQUEST} bytes"), now)
            return
        try:
            command, options = parse_request(bytes(client.inbox[:end]))
        except RequestError as exc:
            self._refuse(client, exc, now)
            return
        self.counters["control.requests"] += 1
        self._reply(client, answer(self.runtime.stack, command, options, now), now)

    def _refuse(self, client: _Client, exc: RequestError, now: float) -> None:
        self.counters.drop("control.bad_request")
        self._reply(client, {"ok": False, "error": str(exc)}, now)

    def _reply(self, client: _Client, reply: dict, now: float) -> None:
        client.outbox = memoryview(encode_reply(reply))
        client.deadline = now + REPLY_TIMEOUT
        self.runtime.watch(client.fd, select.POLLOUT, lambda ev, t, c=client: self._on_client(c, ev, t))

    def _write(self, client: _Client) -> None:
        out = client.outbox
        assert out is not None
        try:
            sent = client.sock.send(out)
        except (BlockingIOError, InterruptedError):
            return
        client.outbox = out = out[sent:]
        if not out:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        if self._clients.pop(client.fd, None) is not None:
            self.runtime.unwatch(client.fd)
        _close(client.sock)

    def close(self) -> None:
        for client in list(self._clients.values()):
            self._drop(client)
        self.runtime.unwatch(self._sock.fileno())
        if self in self.runtime.stack.timer_sources:
            self.runtime.stack.timer_sources.remove(self)
        self._sock.close()
        if self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass


def _refuse(sock: socket.socket, error: str) -> None:
    """One answer to a client that is not served, if its buffer takes it at once; then close."""
    try:
        sock.send(encode_reply({"ok": False, "error": error}))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    """Close a client, first reading what it sent and was not read (a bounded amount): a Unix socket
    closed with unread data resets its peer, who would then lose the answer waiting for it."""
    try:
        for _ in range(16):
            if not sock.recv(1 << 16, socket.MSG_DONTWAIT):
                break
    except OSError:
        pass
    sock.close()


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a daemon that died: remove it, but never anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"--control {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: stale
    else:
        raise ControlError(f"control socket {path} is in use by a running daemon")
    finally:
        probe.close()
