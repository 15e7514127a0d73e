"""Built-in TCP services, driven inside the loop by connection events (no threads).

A service is a factory of per-connection *sessions* with a small byte-in, byte-out protocol
(:class:`StreamSession`); :class:`StreamServer` does the TCP side: accept, read while the session
wants input, write while the send buffer has room, close when the session is done. Sessions know
nothing of TCP, so they are unit-tested on their own (see :mod:`pystack.apps.http_session`).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Protocol

from pystack.stack import Stack
from pystack.tcp.connection import Connection
from pystack.tcp.listener import Listener


class StreamSession(Protocol):
    closing: bool

    @property
    def wants_input(self) -> bool: ...
    @property
    def has_output(self) -> bool: ...
    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None: ...
    def pull(self, limit: int) -> bytes: ...
    def close(self) -> None: ...


class StreamServer:
    """Listens on ``port`` and runs one session per accepted connection; on IPv6 too when the stack has
    it up (as a Linux socket bound to :: takes both families)."""

    def __init__(self, stack: Stack, port: int, session_factory: Callable[[], StreamSession],
                 backlog: int = 1024) -> None:
        self.stack = stack
        self.factory = session_factory
        self.read_chunk = stack.config.streams.read_chunk
        """Bytes per recv, and per piece pulled from a session (64 KiB by default: pieces stay off mmap)."""
        self.listener = stack.tcp.listen(0, port, backlog)
        self.listeners = [self.listener]
        if stack.ipv6_enabled:
            self.listeners.append(stack.tcp6.listen(0, port, backlog))
        for listener in self.listeners:
            listener.on_event = partial(self._on_accept, listener)
        self.active: set[_ServedConnection] = set()

    def _on_accept(self, listener: Listener) -> None:
        """``listener`` has connections to accept: each starts its session at the time of that event (the
        listener's event_time; sans-I/O, no clock is read)."""
        now = listener.event_time
        while (conn := listener.accept()) is not None:
            served = _ServedConnection(self, conn, self.factory())
            self.active.add(served)
            served.run(now)


class _ServedConnection:
    __slots__ = ("server", "conn", "session", "eof", "done", "_running", "_again")

    def __init__(self, server: StreamServer, conn: Connection, session: StreamSession) -> None:
        self.server = server
        self.conn = conn
        self.session = session
        self.eof = False
        self.done = False
        self._running = False
        self._again = False
        conn.on_event = self.on_event

    def on_event(self) -> None:
        """The connection's callback: the time of its event comes with it (Connection.event_time)."""
        now = self.conn.event_time
        assert now is not None  # set while the connection tells its user of an event
        self.run(now)

    def run(self, now: float) -> None:
        """Move what the session and the connection have for each other, at ``now``."""
        # Sending can raise further events synchronously; run the pump once more instead of recursing.
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            self._again = True
            while self._again and not self.done:
                self._again = False
                self._pump(now)
        finally:
            self._running = False

    def _pump(self, now: float) -> None:
        conn, session, most = self.conn, self.session, self.server.read_chunk
        if conn.error is not None:
            self._finish(False, now)
            return
        while session.wants_input and conn.recv_available:
            session.data_received(conn.recv(most, now))
        if not self.eof and conn.at_eof:
            self.eof = True
            session.eof_received()
        while session.has_output:
            space = conn.send_space
            if space <= 0:
                break
            chunk = session.pull(space if space < most else most)
            if not chunk:
                break
            try:
                conn.send(chunk, now)
            except OSError:
                self._finish(True, now)
                return
        if session.closing and not session.has_output:
            self._finish(False, now)
        elif self.eof and not session.has_output and conn.recv_available == 0 and not session.wants_input:
            self._finish(False, now)

    def _finish(self, abort: bool, now: float) -> None:
        if self.done:
            return
        self.done = True
        self.session.close()
        if abort:
            self.conn.abort(now)
        else:
            self.conn.close(now)
        self.conn.on_event = None
        self.server.active.discard(self)


class EchoSession:
    """TCP echo (RFC 862): every byte back, with a bounded buffer (reading pauses while it is full)."""

    LIMIT = 262144

    def __init__(self) -> None:
        self.buf = bytearray()
        self.closing = False
        self._eof = False

    @property
    def wants_input(self) -> bool:
        return len(self.buf) < self.LIMIT

    @property
    def has_output(self) -> bool:
        return bool(self.buf)

    def data_received(self, data: bytes) -> None:
        self.buf += data

    def eof_received(self) -> None:
        self._eof = True
        if not self.buf:
            self.closing = True

    def pull(self, limit: int) -> bytes:
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        if self._eof and not self.buf:
            self.closing = True
        return data

    def close(self) -> None:
        self.buf.clear()


class DiscardSession:
    """TCP discard (RFC 863): reads everything, answers nothing; closes when the peer does."""

    wants_input = True
    has_output = False

    def __init__(self) -> None:
        self.closing = False
        self.received = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)

    def eof_received(self) -> None:
        self.closing = True

    def pull(self, limit: int) -> bytes:
        return b""

    def close(self) -> None:
        pass
