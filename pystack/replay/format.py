"""The recording file: what entered the sans-I/O core, and what it sent, in the order it happened.

A file is a header, then records until the end (a file cut short by a crash ends at its last whole
record). The header is the magic ``PYSTACK-RECORDING``, a format version and a JSON object: the MAC, the
RNG seed, the whole StackConfig (TCP's ISN secret included) and the start time. Each record is one byte
of kind, a 4-byte length (little-endian, as every number here) and that many bytes:

=====  ==========================================  =========================================================
kind   call into the core                          body
=====  ==========================================  =========================================================
``F``  ``receive_frame(frame, now)``               time (double), flags (1: a partial-checksum frame), frame
``E``  ``answer_echo(frame, now)`` that answered   time, frame (its reply is the ``O`` record that follows)
``T``  ``handle_timer(now)``                       time
``B``  ``begin_batch()``                           -
``Z``  ``end_batch(now)``                          time
``G``  ``get_timer()``                             - (it moves TCP's timer heap, so a replay asks when a run did)
``C``  a set-up call (address, IPv6, offload,      JSON: ``{"call": name, "args": [...]}``
       a service started)
``S``  a built-in service's session answered       session number (u32), what was asked (one letter), the
                                                   answer (one byte for a yes/no, the bytes handed over)
``O``  a frame the core sent                       gso_size (u32; 0 for a plain frame), the frame
``X``  the end of a clean shutdown                 -
=====  ==========================================  =========================================================

Writing goes through a buffer of at most :data:`BUFFER_BYTES` that is written out whenever it fills;
reading takes one record at a time, so a recording of any length replays in bounded memory.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import struct
from typing import IO, Any, NamedTuple

from pystack.errors import SetupError

MAGIC = b"PYSTACK-RECORDING"
VERSION = 1
BUFFER_BYTES = 1 << 20
MAX_RECORD = 1 << 24
"""The largest record a reader accepts: more is a damaged file, not a frame or a service's answer."""

FRAME_IN = ord("F")
ECHO = ord("E")
TIMER = ord("T")
BEGIN_BATCH = ord("B")
END_BATCH = ord("Z")
GET_TIMER = ord("G")
CALL = ord("C")
SESSION = ord("S")
FRAME_OUT = ord("O")
END = ord("X")

PARTIAL_CHECKSUM = 1
"""``F`` flag: the kernel handed the frame with its checksum left to fill (pystack.wire.virtio)."""

# What a session was asked (``S`` records): a yes/no (one byte), or the bytes pull() handed over.
WANTS_INPUT = ord("w")
HAS_OUTPUT = ord("h")
CLOSING = ord("c")
PULL = ord("p")

_HEAD = struct.Struct("<BI")
_TIME = struct.Struct("<d")
_TIME_FLAGS = struct.Struct("<dB")
_U32 = struct.Struct("<I")
_SESSION = struct.Struct("<IB")
_FILE_HEAD = struct.Struct("<II")


class RecordingError(SetupError):
    """Not a recording, one this pystack cannot read, or a file that cannot be written (one line, status 2)."""


class Record(NamedTuple):
    kind: int
    body: memoryview


class RecordWriter:
    """Appends records to ``file`` through a bounded buffer."""

    def __init__(self, file: IO[bytes], header: dict[str, Any], buffer_bytes: int = BUFFER_BYTES,
                 limit: int | None = None) -> None:
        self._file: IO[bytes] | None = file
        self._buf = bytearray()
        self.buffer_bytes = buffer_bytes
        self.limit = limit
        """Bytes the file may grow to; the recording ends with the last record that fits (None: no limit)."""
        self._room = limit if limit is not None else 1 << 62
        """Bytes left under the limit, the buffer's included."""
        self.written = 0
        self.failed: str | None = None
        """Why writing stopped (a full disk, the limit), if it did: the recording then ends there."""
        text = json.dumps(header, separators=(",", ":")).encode()
        self._buf += MAGIC + _FILE_HEAD.pack(VERSION, len(text)) + text
        self._room -= len(self._buf)

    def _put(self, kind: int, head: bytes, data: bytes | memoryview = b"") -> None:
        if self._file is None:
            return  # stopped: a failed write, or the limit
        size = _HEAD.size + len(head) + len(data)
        self._room -= size
        if self._room < 0:
            self.flush()
            self.failed = f"it reached its limit of {self.limit} bytes"
            self._close_file()
            return
        buf = self._buf
        buf += _HEAD.pack(kind, len(head) + len(data))
        buf += head
        if data:
            buf += data
        if len(buf) >= self.buffer_bytes:
            self.flush()

    def frame_in(self, now: float, frame: bytes | memoryview, flags: int) -> None:
        self._put(FRAME_IN, _TIME_FLAGS.pack(now, flags), frame)

    def echo(self, now: float, frame: bytes | memoryview) -> None:
        self._put(ECHO, _TIME.pack(now), frame)

    def timer(self, now: float) -> None:
        self._put(TIMER, _TIME.pack(now))

    def begin_batch(self) -> None:
        self._put(BEGIN_BATCH, b"")

    def end_batch(self, now: float) -> None:
        self._put(END_BATCH, _TIME.pack(now))

    def get_timer(self) -> None:
        self._put(GET_TIMER, b"")

    def call(self, name: str, *args: Any) -> None:
        self._put(CALL, json.dumps({"call": name, "args": list(args)}, separators=(",", ":")).encode())

    def session(self, number: int, asked: int, answer: bytes | bool) -> None:
        if isinstance(answer, bool):
            self._put(SESSION, _SESSION.pack(number, asked), b"\x01" if answer else b"\x00")
        else:
            self._put(SESSION, _SESSION.pack(number, asked), answer)

    def frame_out(self, frame: bytes, gso_size: int) -> None:
        self._put(FRAME_OUT, _U32.pack(gso_size), frame)

    def flush(self) -> None:
        if self._file is None or not self._buf:
            self._buf.clear()
            return
        try:
            self._file.write(self._buf)
            self._file.flush()
            self.written += len(self._buf)
        except OSError as exc:
            self.failed = exc.strerror or str(exc)
            self._close_file()
        self._buf.clear()

    def close(self, clean: bool = True) -> None:
        """Write what is buffered (with the end mark of a clean shutdown) and close the file."""
        if clean and self._file is not None:
            self._put(END, b"")
        self.flush()
        self._close_file()

    def _close_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass


class RecordReader:
    """Reads a recording's header, then its records one at a time (:meth:`peek`, :meth:`next`)."""

    def __init__(self, file: IO[bytes], name: str = "recording") -> None:
        self._file = file
        self.name = name
        head = file.read(len(MAGIC) + _FILE_HEAD.size)
        if len(head) < len(MAGIC) + _FILE_HEAD.size or not head.startswith(MAGIC):
            raise RecordingError(f"{name} is not a pystack recording (pystack run --record)")
        version, length = _FILE_HEAD.unpack_from(head, len(MAGIC))
        if version != VERSION:
            raise RecordingError(f"{name} is a recording of format {version}; this pystack reads format {VERSION}")
        try:
            self.header: dict[str, Any] = json.loads(file.read(length))
        except ValueError:
            raise RecordingError(f"{name}: its header is damaged") from None
        self._next: Record | None = None
        self.records = 0
        self.cut_short = False
        """True once the end was reached without the clean-shutdown mark (a crash, a kill -9, a full disk)."""
        self.ended = False

    def peek(self) -> Record | None:
        """The next record, left to be read; None at the end."""
        if self._next is None and not self.ended:
            self._next = self._read()
        return self._next

    def next(self) -> Record | None:
        record = self.peek()
        self._next = None
        if record is not None:
            self.records += 1
        return record

    def _read(self) -> Record | None:
        head = self._file.read(_HEAD.size)
        if len(head) < _HEAD.size:
            self.ended = self.cut_short = True
            return None
        kind, length = _HEAD.unpack(head)
        if length > MAX_RECORD:
            raise RecordingError(f"{self.name}: record {self.records + 1} claims {length} bytes: the file is damaged")
        body = self._file.read(length)
        if len(body) < length:
            self.ended = self.cut_short = True
            return None
        if kind == END:
            self.ended = True
            return None
        return Record(kind, memoryview(body))


def time_of(body: memoryview) -> float:
    """The time that leads an ``F``, ``E``, ``T`` or ``Z`` record."""
    return float(_TIME.unpack_from(body)[0])


def frame_in(body: memoryview) -> tuple[float, int, memoryview]:
    now, flags = _TIME_FLAGS.unpack_from(body)
    return now, flags, body[_TIME_FLAGS.size:]


def echo(body: memoryview) -> tuple[float, memoryview]:
    return time_of(body), body[_TIME.size:]


def frame_out(body: memoryview) -> tuple[int, memoryview]:
    return _U32.unpack_from(body)[0], body[_U32.size:]


def session(body: memoryview) -> tuple[int, int, memoryview]:
    number, asked = _SESSION.unpack_from(body)
    return number, asked, body[_SESSION.size:]


def call(body: memoryview) -> tuple[str, list[Any]]:
    data = json.loads(bytes(body))
    return str(data["call"]), list(data["args"])


# ---------------------------------------------------------------------- configuration as JSON


def config_to_json(config: Any) -> dict[str, Any]:
    """A (nested) configuration dataclass as JSON-ready values; bytes as ``{"hex": ...}``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[f.name] = config_to_json(value)
        elif isinstance(value, (bytes, bytearray)):
            out[f.name] = {"hex": bytes(value).hex()}
        elif isinstance(value, enum.Enum):
            out[f.name] = value.value
        else:
            out[f.name] = value
    return out


def config_from_json(cls: type, data: dict[str, Any], unknown: list[str] | None = None, prefix: str = "") -> Any:
    """The dataclass ``cls`` made from :func:`config_to_json`'s output. A setting this pystack does not
    have is skipped and named in ``unknown``; one it has and the data lacks keeps its default (a recording
    made before the setting existed)."""
    defaults = cls()
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for name, value in data.items():
        if name not in names:
            if unknown is not None:
                unknown.append(prefix + name)
            continue
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            kwargs[name] = config_from_json(type(default), value, unknown, f"{prefix}{name}.")
        elif isinstance(value, dict) and set(value) == {"hex"}:
            kwargs[name] = bytes.fromhex(value["hex"])
        elif isinstance(default, enum.Enum):
            kwargs[name] = type(default)(value)
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
