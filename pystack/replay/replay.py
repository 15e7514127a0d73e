"""``pystack replay FILE``: run the core again on a fake clock, from a recording, and compare every frame.

A fresh :class:`~pystack.stack.Stack` is built from the header (MAC, configuration, RNG seed) and handed
the recorded calls in their order, at their times; the services answer from the recorded sessions. The
core is deterministic given those, so each frame it sends must be the recorded one, byte for byte (and
with the same segmentation-offload size). The first that is not, or a frame sent that the recording
lacks, or one the recording has and the replay does not send, ends the replay with a
:class:`Divergence`; a service asked something the recording does not answer is one too.

A test may change the configuration (``tcp=`` and ``stack=`` overrides) to see where a rule changes what
is sent: the replay then stops at the first frame the change made different.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
from collections import deque
from dataclasses import dataclass
from typing import IO, Any

from pystack.apps.services import Services, SessionFactory, start_services
from pystack.apps.stream_server import StreamSession
from pystack.config import StackConfig
from pystack.medium import Medium
from pystack.replay import format as fmt
from pystack.replay import record as calls
from pystack.replay.describe import describe, first_difference
from pystack.link.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter
from pystack.link.pcapng import PcapngWriter
from pystack.reasons import explain_frames
from pystack.stack import Stack
from pystack.trace import TraceWriter
from pystack.wire.gso import GsoFrame
from pystack.wire.virtio import PartialChecksumFrame

_ASKED = {fmt.WANTS_INPUT: "wants_input", fmt.HAS_OUTPUT: "has_output", fmt.CLOSING: "closing", fmt.PULL: "pull"}


@dataclass
class Divergence:
    """Where the replay first differed from the recording."""

    frame: int
    """The number of the sent frame (from 1) where it happened."""
    time: float
    """Seconds since the recording began (the time of the last call before it)."""
    record: int
    """The number of the record (from 1) being replayed."""
    expected: bytes | None
    """The recorded frame (None: the recording sent none here)."""
    got: bytes | None
    """The replay's frame (None: it sent none)."""
    note: str = ""
    """What differed, when it is not a frame (a service's question)."""
    ethernet: bool = True
    """Whether the frames have an Ethernet header (False on the IP medium)."""

    def describe(self) -> str:
        lines = [f"diverged at frame {self.frame}, t={self.time:.6f} s (record {self.record})"
                 + (f": {self.note}" if self.note else "")]
        if self.expected is not None or self.got is not None:
            lines.append(f"  expected: {self._frame(self.expected)}")
            lines.append(f"  got:      {self._frame(self.got)}")
        if self.expected is not None and self.got is not None:
            lines.append(f"  {first_difference(self.expected, self.got, self.ethernet)}")
        return "\n".join(lines)

    def _frame(self, frame: bytes | None) -> str:
        return describe(frame, self.ethernet) if frame is not None else "no frame"


@dataclass
class ReplayResult:
    frames: int
    """Sent frames found identical."""
    records: int
    divergence: Divergence | None
    cut_short: bool
    """The recording ended without its clean-shutdown mark (compared up to its last whole record)."""
    unknown_settings: list[str]
    """Settings of the recording this pystack does not have (skipped)."""
    stack: Stack

    @property
    def identical(self) -> bool:
        return self.divergence is None

    def summary(self) -> str:
        if self.divergence is not None:
            return self.divergence.describe()
        return f"replayed {self.frames} frames, identical"


class _ReplayedSession:
    """A service's session that answers its StreamServer from the recording."""

    __slots__ = ("replayer", "number")

    def __init__(self, replayer: Replayer, number: int) -> None:
        self.replayer = replayer
        self.number = number

    @property
    def wants_input(self) -> bool:
        return self.replayer.session_answer(self.number, fmt.WANTS_INPUT) == b"\x01"

    @property
    def has_output(self) -> bool:
        return self.replayer.session_answer(self.number, fmt.HAS_OUTPUT) == b"\x01"

    @property
    def closing(self) -> bool:
        return self.replayer.session_answer(self.number, fmt.CLOSING) == b"\x01"

    @closing.setter
    def closing(self, value: bool) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        pass

    def pull(self, limit: int) -> bytes:
        data = self.replayer.session_answer(self.number, fmt.PULL)
        return data if data is not None else b""

    def close(self) -> None:
        pass


class Replayer:
    """Replays the records of ``reader`` into a fresh stack (see the module's docstring)."""

    def __init__(self, reader: fmt.RecordReader, tcp: dict[str, Any] | None = None,
                 stack: dict[str, Any] | None = None) -> None:
        header = reader.header
        self.reader = reader
        self.unknown: list[str] = []
        try:
            config = fmt.config_from_json(StackConfig, header["config"], self.unknown)
            mac = bytes.fromhex(header["mac"])
            seed = int(header["seed"])
            self.start = float(header["start"])
            self.wall = float(header.get("wall", 0.0))
            """The wall clock when the recording began (a capture's timestamps start there)."""
        except (KeyError, TypeError, ValueError) as exc:
            raise fmt.RecordingError(f"{reader.name}: its header does not describe a stack ({exc})") from None
        try:
            if tcp:
                config = dataclasses.replace(config, tcp=dataclasses.replace(config.tcp, **tcp))
            if stack:
                config = dataclasses.replace(config, **stack)
        except (TypeError, ValueError) as exc:
            raise fmt.RecordingError(f"the settings to change are refused: {exc}") from None
        self.config = config
        self.stack = Stack(mac, config, rng=random.Random(seed))
        self.now = self.start
        self.sent = 0
        self.pending: deque[bytes] = deque()
        """Frames the replay's stack sent that are still to be compared."""
        self.divergence: Divergence | None = None
        self._numbers = itertools.count()
        self.capture: PcapWriter | PcapngWriter | None = None

    def capture_to(self, writer: PcapWriter | PcapngWriter) -> None:
        """Write the frames in and out as the run's ``--pcap`` would have (a .pcapng with every sent frame's
        reason), at the recorded times."""
        self.capture = writer
        explain_frames(self.stack, writer)

    def _stamp(self, now: float) -> int:
        return int((self.wall + now - self.start) * 1e9)

    def run(self) -> ReplayResult:
        reader = self.reader
        stack = self.stack
        while self.divergence is None:
            record = reader.next()
            if record is None:
                break
            kind, body = record
            if kind == fmt.FRAME_IN:
                now, flags, frame = fmt.frame_in(body)
                self.now = now
                data = bytes(frame)
                if flags & fmt.PARTIAL_CHECKSUM:
                    data = PartialChecksumFrame(data)
                if self.capture is not None:
                    self.capture.write(data, self._stamp(now))
                stack.receive_frame(data, now)
            elif kind == fmt.FRAME_OUT:
                gso_size, frame = fmt.frame_out(body)
                self._compare(bytes(frame), gso_size)
            elif kind == fmt.GET_TIMER:
                stack.get_timer()
            elif kind == fmt.BEGIN_BATCH:
                stack.begin_batch()
            elif kind == fmt.END_BATCH:
                self.now = now = fmt.time_of(body)
                stack.end_batch(now)
            elif kind == fmt.TIMER:
                self.now = now = fmt.time_of(body)
                stack.handle_timer(now)
            elif kind == fmt.ECHO:
                now, frame = fmt.echo(body)
                self.now = now
                if self.capture is not None:
                    self.capture.write(frame, self._stamp(now))
                reply = stack.answer_echo(bytes(frame), now)
                if reply is not None:
                    self.pending.append(reply)
                else:  # the lane declined (fast paths off, say): the loop hands the frame on, as a run would
                    stack.receive_frame(bytes(frame), now)
            elif kind == fmt.CALL:
                self._call(*fmt.call(body))
            elif kind == fmt.SESSION:
                number, asked, _answer = fmt.session(body)
                self._diverge(f"the recording has session {number}'s answer to {_ASKED.get(asked, '?')}, "
                              "which the replay's services did not ask")
            else:
                raise fmt.RecordingError(f"{reader.name}: record {reader.records} is of an unknown kind {kind}")
        if self.divergence is None and not reader.cut_short:
            self.pending.extend(stack.frames_to_send())
            if self.pending:
                self._diverge("", None, self.pending.popleft())
        return ReplayResult(self.sent, reader.records, self.divergence, reader.cut_short, self.unknown, stack)

    def _compare(self, expected: bytes, gso_size: int) -> None:
        pending = self.pending
        if not pending:
            pending.extend(self.stack.frames_to_send())
            if not pending:
                self._diverge("", expected, None)
                return
        got = pending.popleft()
        got_gso = got.gso_size if type(got) is GsoFrame else 0
        if got != expected:
            self._diverge("", expected, bytes(got))
        elif got_gso != gso_size:
            self._diverge(f"the same bytes, but offloaded in pieces of {got_gso} instead of {gso_size}",
                          expected, bytes(got))
        else:
            self.sent += 1
            if self.capture is not None:
                self.capture.write(got, self._stamp(self.now))

    def _diverge(self, note: str, expected: bytes | None = None, got: bytes | None = None) -> None:
        if self.divergence is None:
            self.divergence = Divergence(self.sent + 1, self.now - self.start, self.reader.records, expected, got,
                                         note, self.config.medium is Medium.ETHERNET)

    def _call(self, name: str, args: list[Any]) -> None:
        stack = self.stack
        if name == calls.CONFIGURE:
            stack.configure(*args)
        elif name == calls.DECONFIGURE:
            stack.deconfigure()
        elif name == calls.START_IPV6:
            stack.start_ipv6(*args)
        elif name == calls.ADD_ADDRESS6:
            stack.add_address6(*args)
        elif name == calls.REMOVE_ADDRESS6:
            stack.remove_address6(*args)
        elif name == calls.GATEWAY6:
            stack.gateway6 = args[0]
        elif name == calls.OFFLOAD:
            stack.enable_segmentation_offload(*args)
        elif name == calls.SERVICES:
            spec = args[0]
            start_services(stack, Services(echo=bool(spec["echo"]), discard=bool(spec["discard"]),
                                           http_port=spec["http_port"]), self.config.http, self._sessions)
        else:
            raise fmt.RecordingError(f"{self.reader.name}: a set-up call this pystack does not know: {name}")

    def _sessions(self, service: str, port: int, factory: SessionFactory) -> SessionFactory:
        numbers = self._numbers

        def replayed() -> StreamSession:
            return _ReplayedSession(self, next(numbers))

        return replayed

    def session_answer(self, number: int, asked: int) -> bytes | None:
        """The recorded answer of session ``number`` to ``asked``, if that is the next record; otherwise
        the replay has diverged (None, and the run stops after the call being replayed)."""
        if self.divergence is not None:
            return None
        record = self.reader.peek()
        if record is not None and record.kind == fmt.SESSION:
            got_number, got_asked, answer = fmt.session(record.body)
            if (got_number, got_asked) == (number, asked):
                self.reader.next()
                return bytes(answer)
        if record is None and self.reader.cut_short:
            return None  # the recording ends here: nothing after this can be compared
        self._diverge(f"session {number} was asked {_ASKED[asked]}, where the recording has "
                      f"{_next_record(record)}")
        return None


def _next_record(record: fmt.Record | None) -> str:
    if record is None:
        return "nothing more"
    if record.kind == fmt.SESSION:
        number, asked, _answer = fmt.session(record.body)
        return f"session {number}'s answer to {_ASKED.get(asked, '?')}"
    return f"a record of kind {chr(record.kind)}"


def replay(file: IO[bytes] | str, tcp: dict[str, Any] | None = None, stack: dict[str, Any] | None = None,
           trace: str | None = None, pcap: str | None = None) -> ReplayResult:
    """Replay the recording ``file`` (a path or an open binary file); ``tcp`` and ``stack``: settings of
    TcpConfig and StackConfig to change from the recorded ones; ``trace``: write the replayed connections'
    events there (pystack.trace), on the recording's clock; ``pcap``: write the frames there, as ``--pcap``
    does (a .pcapng with why each was sent), up to a divergence."""
    if isinstance(file, str):
        try:
            fh: IO[bytes] = open(file, "rb")
        except OSError as exc:
            raise fmt.RecordingError(f"cannot read {file}: {exc.strerror}") from None
        with fh:
            return _run(fmt.RecordReader(fh, file), tcp, stack, trace, pcap)
    return _run(fmt.RecordReader(file), tcp, stack, trace, pcap)


def _run(reader: fmt.RecordReader, tcp: dict[str, Any] | None, stack: dict[str, Any] | None,
         trace: str | None, pcap: str | None) -> ReplayResult:
    replayer = Replayer(reader, tcp, stack)
    with contextlib.ExitStack() as cleanup:
        if trace is not None:
            writer = TraceWriter(trace, replayer.start, replayer.stack.counters)  # TraceError: one line
            cleanup.callback(writer.close)
            writer.attach(replayer.stack.tcp, replayer.stack.tcp6)
        if pcap is not None:
            linktype = LINKTYPE_ETHERNET if replayer.config.medium is Medium.ETHERNET else LINKTYPE_RAW
            try:
                capture = (PcapngWriter(pcap, "replay", linktype) if pcap.endswith(".pcapng")
                           else PcapWriter(pcap, linktype))
            except OSError as exc:
                raise fmt.RecordingError(f"cannot write pcap file {pcap}: {exc.strerror}") from None
            cleanup.callback(capture.close)
            replayer.capture_to(capture)
        return replayer.run()
