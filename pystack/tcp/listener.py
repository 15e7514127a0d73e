"""A listening endpoint (RFC 9293 LISTEN) with a bounded half-open queue and accept queue."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

from pystack.tcp.state import State

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection
    from pystack.tcp.context import TcpContext


class Listener:
    """Created by ``TcpLayer.listen``. Connections that completed the handshake wait in ``accept``.

    As Linux does, a SYN is dropped (not refused) while the half-open queue (``TcpConfig.syn_backlog``)
    or the accept queue (``backlog``) is full, so the peer retries; the final ACK of a handshake is
    ignored while the accept queue is full, so the SYN-ACK is repeated later.
    """

    __slots__ = ("_cx", "local_ip", "local_port", "backlog", "_accept_queue", "_half_open", "on_event", "_closed",
                 "cookie_time", "event_time")

    def __init__(self, cx: TcpContext, local_ip: int, local_port: int, backlog: int) -> None:
        self._cx = cx
        self.local_ip = local_ip
        self.local_port = local_port
        self.backlog = max(1, min(backlog, cx.config.max_backlog))
        self._accept_queue: deque[Connection] = deque()
        self._half_open: set[Connection] = set()
        self.on_event: Callable[[], None] | None = None
        self._closed = False
        self.cookie_time: float | None = None
        """When this listener last answered with a SYN cookie (cookies are checked only after that)."""
        self.event_time = 0.0
        """The time of the last event on_event was told of (a connection to accept, or the close), for the
        calls the callback makes, as Connection.event_time."""

    @property
    def state(self) -> State:
        return State.CLOSED if self._closed else State.LISTEN

    @property
    def readable(self) -> bool:
        """``accept`` would return a connection (or the listener was closed)."""
        return bool(self._accept_queue) or self._closed

    @property
    def pending(self) -> int:
        return len(self._accept_queue)

    @property
    def half_open(self) -> int:
        return len(self._half_open)

    def accept(self) -> Connection | None:
        """The oldest established connection, or None."""
        return self._accept_queue.popleft() if self._accept_queue else None

    def close(self, now: float) -> None:
        """Stop listening; connections not yet accepted are reset."""
        if self._closed:
            return
        self._closed = True
        self._cx.forget_listener(self)
        for conn in list(self._half_open) + list(self._accept_queue):
            conn.abort(now)
        self._half_open.clear()
        self._accept_queue.clear()
        self.event_time = now
        if self.on_event is not None:
            self.on_event()

    # ------------------------------------------------------------------ the layer's and connections' side

    def can_take_syn(self) -> bool:
        return len(self._half_open) < self._cx.config.syn_backlog and len(self._accept_queue) < self.backlog

    def has_room(self) -> bool:
        return len(self._accept_queue) < self.backlog

    def add_half_open(self, conn: Connection) -> None:
        """A SYN made ``conn`` (SYN-RECEIVED)."""
        self._half_open.add(conn)

    def established(self, conn: Connection, now: float) -> None:
        """``conn`` completed its handshake at ``now``: it waits in the accept queue."""
        self._half_open.discard(conn)
        self._accept_queue.append(conn)
        self._cx.counters["tcp.accept_queued"] += 1
        self.event_time = now
        if self.on_event is not None:
            self.on_event()

    def half_open_gone(self, conn: Connection) -> None:
        """``conn`` closed before its handshake completed."""
        self._half_open.discard(conn)
