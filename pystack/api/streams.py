"""asyncio streams over pystack TCP: ``open_connection`` and ``start_server`` in the stdlib's shape.

pystack's loop runs in its own thread (``Runtime.start_thread``); an asyncio program runs in
another. A :class:`PystackTransport` is an ``asyncio.Transport`` over one TCP connection: the
connection's events are handed to the asyncio loop with ``call_soon_threadsafe``, and the
transport moves bytes under the runtime's lock. The stdlib's ``StreamReaderProtocol``,
``StreamReader`` and ``StreamWriter`` sit on top unchanged, so code written for
``asyncio.open_connection`` works as it is. Back-pressure is TCP's own: a paused reader leaves data in
the receive buffer (the window closes); writes beyond the send buffer wait in the transport and
pause the writer above a high-water mark (``StackConfig.streams``).

Both IP versions, as asyncio over the kernel: a host literal names its family (an IPv4-mapped IPv6 one
goes over IPv4), and ``start_server`` on every address (host "" or None) listens on both, each
connection named in its own family, as asyncio's one socket per family (each IPV6_V6ONLY) does.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Any, Awaitable, Callable

from pystack.api import families
from pystack.api.families import AF_INET, AF_INET6, BOTH, V4, V6, Listening, Where
from pystack.runtime import Runtime
from pystack.tcp.connection import Connection
from pystack.tcp.state import State

ClientConnected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


class PystackTransport(asyncio.Transport):
    """An asyncio transport over one pystack TCP connection."""

    def __init__(self, runtime: Runtime, conn: Connection, protocol: asyncio.Protocol,
                 loop: asyncio.AbstractEventLoop, version: int = V4) -> None:
        super().__init__()
        self._rt = runtime
        self._limits = runtime.stack.config.streams
        self._conn = conn
        self._protocol = protocol
        self._loop = loop
        self._pending = bytearray()
        self._reading = True
        self._closing = False
        self._eof_sent = False
        self._eof_seen = False
        self._lost = False
        self._writing_paused = False
        self._scheduled = False
        family = AF_INET if version == V4 else AF_INET6
        self._extra = {
            "peername": families.write(family, version, conn.remote_ip, conn.remote_port),
            "sockname": families.write(family, version, conn.local_ip, conn.local_port),
        }
        conn.on_event = self._event_from_stack
        protocol.connection_made(self)
        self._schedule()

    # -- events: from the stack's thread (under its lock) to the asyncio loop
    def _event_from_stack(self) -> None:
        if not self._scheduled and not self._lost:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._pump)
            except RuntimeError:  # the asyncio loop is closed
                self._scheduled = False

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._scheduled = False
        if self._lost:
            return
        chunks: list[bytes] = []
        eof = False
        error: int | None = None
        closed = False
        with self._rt.lock:
            conn = self._conn
            now = self._rt.now()
            if self._reading and not self._eof_seen:
                chunk = self._limits.read_chunk
                while conn.recv_available:
                    chunks.append(conn.recv(chunk, now))
                if conn.at_eof:
                    eof = True
            self._send_pending(now)
            if conn.error is not None:
                error = conn.error
            elif conn.state == State.CLOSED and not conn.recv_available:
                closed = True
            self._rt.flush()
            self._rt.timers_changed()
        for chunk in chunks:
            self._protocol.data_received(chunk)
        if eof and not self._eof_seen:
            self._eof_seen = True
            keep_open = self._protocol.eof_received()
            if not keep_open and not self._closing:
                self.close()
        if self._writing_paused and len(self._pending) <= self._limits.low_water:
            self._writing_paused = False
            self._protocol.resume_writing()
        if error is not None and not (self._closing and error == errno.ECONNRESET and not self._pending):
            self._lose(ConnectionResetError(error, os.strerror(error)) if error == errno.ECONNRESET
                       else OSError(error, os.strerror(error)))
        elif closed or (self._closing and not self._pending):
            self._lose(None)

    def _send_pending(self, now: float) -> None:
        conn = self._conn
        while self._pending and conn.error is None:
            try:
                n = conn.send(memoryview(self._pending), now)
            except OSError:
                self._pending.clear()
                return
            if not n:
                return
            del self._pending[:n]
        if self._closing and not self._pending and not self._eof_sent:
            self._eof_sent = True
            conn.close(now)
        elif self._eof_requested and not self._pending and not self._eof_sent:
            self._eof_sent = True
            conn.shutdown_write(now)

    _eof_requested = False

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        with self._rt.lock:
            self._conn.on_event = None
        self._protocol.connection_lost(exc)

    # -- the transport API
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._schedule()

    def abort(self) -> None:
        self._closing = True
        with self._rt.lock:
            self._conn.abort(self._rt.now())
            self._rt.flush()
        self._pending.clear()
        self._lose(None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._eof_requested:
            raise RuntimeError("write after close or write_eof")
        if not data:
            return
        self._pending += data
        with self._rt.lock:
            self._send_pending(self._rt.now())
            self._rt.flush()
            self._rt.timers_changed()
        if not self._writing_paused and len(self._pending) > self._limits.high_water:
            self._writing_paused = True
            self._protocol.pause_writing()

    def write_eof(self) -> None:
        self._eof_requested = True
        with self._rt.lock:
            self._send_pending(self._rt.now())
            self._rt.flush()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._schedule()

    def is_reading(self) -> bool:
        return self._reading


def _stream_pair(runtime: Runtime, conn: Connection, loop: asyncio.AbstractEventLoop, version: int,
                 limit: int = 2 ** 16) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport = PystackTransport(runtime, conn, protocol, loop, version)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def _literal(host: str) -> Where:
    """An address literal of either family (an IPv4-mapped IPv6 one is IPv4)."""
    return families.read(AF_INET6 if ":" in host else AF_INET, host)


async def open_connection(runtime: Runtime, host: str, port: int, *, limit: int = 2 ** 16,
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like ``asyncio.open_connection``, over pystack, to an IPv4 or IPv6 literal. Raises
    ConnectionRefusedError and friends."""
    loop = asyncio.get_running_loop()
    remote = _literal(host)
    ready: asyncio.Future[None] = loop.create_future()
    with runtime.lock:
        stack = runtime.stack
        if remote.version == V6 and not stack.ipv6_enabled:
            raise OSError(errno.EAFNOSUPPORT, "IPv6 is off on this stack")
        local = families.source_for(stack, remote)
        if not local:
            raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
        conn = families.tcp_layer(stack, remote.version).connect(local, remote.ip, port, runtime.now())

        def settle() -> None:
            if not ready.done():
                ready.set_result(None)

        def on_event() -> None:
            if conn.error is not None or conn.state not in (State.SYN_SENT, State.SYN_RECEIVED):
                loop.call_soon_threadsafe(settle)

        conn.on_event = on_event
        runtime.flush()
        runtime.wake()
    try:
        await ready
    except asyncio.CancelledError:
        with runtime.lock:
            conn.abort(runtime.now())
            runtime.flush()
        raise
    with runtime.lock:
        conn.on_event = None
        err = conn.error
    if err is not None:
        raise ConnectionRefusedError(err, os.strerror(err)) if err == errno.ECONNREFUSED else OSError(err, os.strerror(err))
    return _stream_pair(runtime, conn, loop, remote.version, limit=limit)


class Server:
    """What ``start_server`` returns: ``close()``, ``wait_closed()``, ``sockets``-like ``port``."""

    def __init__(self, runtime: Runtime, listener: Listening, loop: asyncio.AbstractEventLoop,
                 callback: ClientConnected, limit: int) -> None:
        self._rt = runtime
        self._listener = listener
        self._loop = loop
        self._callback = callback
        self._limit = limit
        self._scheduled = False
        self.port = listener.local_port
        listener.set_on_event(self._event_from_stack)

    def _event_from_stack(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._accept_all)

    def _accept_all(self) -> None:
        self._scheduled = False
        while True:
            with self._rt.lock:
                accepted = self._listener.accept()
            if accepted is None:
                return
            version, conn = accepted
            # The protocol makes the StreamWriter and calls the callback itself (a second writer
            # would close the transport when garbage-collected).
            reader = asyncio.StreamReader(limit=self._limit, loop=self._loop)
            protocol = asyncio.StreamReaderProtocol(reader, self._callback, loop=self._loop)
            PystackTransport(self._rt, conn, protocol, self._loop, version)

    def close(self) -> None:
        with self._rt.lock:
            self._listener.close(self._rt.now())
            self._rt.flush()

    async def wait_closed(self) -> None:
        return None

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def start_server(runtime: Runtime, client_connected_cb: ClientConnected, host: str | None = "",
                       port: int = 0, *, backlog: int = 100, limit: int = 2 ** 16) -> Server:
    """Like ``asyncio.start_server``, over pystack: the callback gets (StreamReader, StreamWriter). On
    every address (``host`` "" or None) of both versions when the stack has IPv6 up, on one port; else
    on the literal's."""
    loop = asyncio.get_running_loop()
    with runtime.lock:
        stack = runtime.stack
        if host:
            where = _literal(host)
            versions: tuple[int, ...] = (where.version,)
        else:
            where, versions = Where(V4, 0), BOTH if stack.ipv6_enabled else (V4,)
        if V6 in versions and not stack.ipv6_enabled:
            raise OSError(errno.EAFNOSUPPORT, "IPv6 is off on this stack")
        layers = [families.tcp_layer(stack, v) for v in versions]
        now = runtime.now()
        made = families.on_one_port(
            port, [lambda p, layer=layer: layer.listen(where.ip, p, backlog) for layer in layers],
            [lambda listener: listener.close(now)] * len(layers), lambda listener: listener.local_port)
        server = Server(runtime, Listening(list(zip(versions, made))), loop, client_connected_cb, limit)
    loop.call_soon(server._accept_all)
    return server
