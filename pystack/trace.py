"""``--trace FILE.jsonl``: TCP's connection events as JSON lines, in the spirit of qlog.

The first line names the format; then one object per event that TCP tells its context's ``trace`` hook
(pystack.tcp.events)::

    {"time": 0.012345, "name": "tcp:state", "conn": "192.0.2.2:80-192.0.2.1:41234",
     "data": {"from": "SYN_RECEIVED", "to": "ESTABLISHED"}}

``time`` is in seconds from when the trace began, on the stack's clock (qlog's relative time). Lines go
through a write buffer that is flushed whenever it holds ``buffer_bytes``, so a long run holds at most
that much in memory; a failed write (a full disk) stops the trace, says so once, and counts the events
lost in ``trace.events_lost``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import IO, TYPE_CHECKING, Any

from pystack.counters import Counters
from pystack.errors import SetupError
from pystack.wire.ipv4 import int_to_addr

if TYPE_CHECKING:
    from pystack.tcp.connection import Connection

log = logging.getLogger("pystack")

FORMAT = "pystack trace: JSON lines, one TCP connection event each (qlog-like: time, name, conn, data)"
BUFFER_BYTES = 64 * 1024


class TraceError(SetupError):
    """The trace file cannot be opened (one line for the user)."""


class TraceWriter:
    """Writes the events of ``tcp.cx.trace`` (set with :meth:`attach`) to ``path``."""

    def __init__(self, path: str, start: float, counters: Counters | None = None,
                 buffer_bytes: int = BUFFER_BYTES) -> None:
        try:
            self._file: IO[str] | None = open(path, "w", encoding="ascii")
        except OSError as exc:
            raise TraceError(f"cannot write the trace {path}: {exc.strerror}") from None
        self.path = path
        self.start = start
        self.counters = counters if counters is not None else Counters()
        self.buffer_bytes = buffer_bytes
        self._lines: list[str] = []
        self._size = 0
        self.events = 0
        self._emit(json.dumps({"format": FORMAT, "time_unit": "s"}))

    def attach(self, *layers: Any) -> None:
        """Hear the events of each TcpLayer of ``layers`` (IPv4's and IPv6's)."""
        for tcp in layers:
            tcp.trace = self.event

    def event(self, now: float, conn: Connection, name: str, data: dict[str, Any]) -> None:
        """TCP's ``trace`` hook (pystack.tcp.events.Trace)."""
        if self._file is None:
            self.counters.drop("trace.events_lost")
            return
        self.events += 1
        conn_id = f"{_address(conn.local_ip)}:{conn.local_port}-{_address(conn.remote_ip)}:{conn.remote_port}"
        self._emit(json.dumps({"time": round(now - self.start, 6), "name": "tcp:" + name, "conn": conn_id,
                               "data": data}, separators=(",", ":")))

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size >= self.buffer_bytes:
            self.flush()

    def flush(self) -> None:
        if self._file is None or not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        lost = len(self._lines)
        self._lines.clear()
        self._size = 0
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            log.error("trace %s: %s; tracing stops", self.path, exc.strerror)
            self.counters["drop.trace.events_lost"] += lost
            self._close_file()

    def close(self) -> None:
        self.flush()
        self._close_file()

    def _close_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass


def _address(ip: int) -> str:
    """An IPv4 address dotted, an IPv6 one (every one a connection can have is above 2**32) bracketed."""
    return int_to_addr(ip) if ip < 1 << 32 else f"[{ipaddress.IPv6Address(ip)}]"
