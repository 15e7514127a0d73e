"""``pystack run --record FILE``: a stack that writes down everything that enters it.

:class:`RecordedStack` is a :class:`~pystack.stack.Stack` whose entry points (the ones the poll loop,
the set-up and the services call) each write a record (pystack.replay.format) and then do what a Stack
does. The run's randomness is pinned first: the RNG is seeded and TCP's ISN secret chosen, and both go in
the header. The built-in services' sessions are wrapped so that what they hand to TCP is recorded too
(their files, and an HTTP Date header, are not the core's to reproduce).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import sys
import time
from typing import IO, Callable

from pystack import __version__
from pystack.apps.services import Services, SessionFactory, start_services
from pystack.apps.stream_server import StreamSession
from pystack.config import HttpConfig, StackConfig
from pystack.replay import format as fmt
from pystack.stack import Stack
from pystack.wire.gso import GsoFrame
from pystack.wire.virtio import PartialChecksumFrame

# The set-up calls a recording holds (``C`` records), by name: pystack.replay.replay makes them again.
CONFIGURE = "configure"
DECONFIGURE = "deconfigure"
START_IPV6 = "start_ipv6"
ADD_ADDRESS6 = "add_address6"
REMOVE_ADDRESS6 = "remove_address6"
GATEWAY6 = "gateway6"
OFFLOAD = "offload"
SERVICES = "services"


class RecordedStack(Stack):
    """A Stack that records each call into it before serving it (see the module's docstring)."""

    def __init__(self, mac: bytes, config: StackConfig, rng: random.Random, writer: fmt.RecordWriter) -> None:
        super().__init__(mac, config, rng=rng)
        self.recording = writer
        # The two entry points a Stack chooses per instance (by medium, fast paths): wrapped as they are.
        self._core_echo = self.answer_echo
        self.answer_echo = self._recorded_echo
        self._core_receive = self.receive_frame
        self.receive_frame = self._recorded_receive
        self._receiving = False

    def _recorded_echo(self, frame: bytes | memoryview, now: float) -> bytes | None:
        """Ping's lane. Only an answered request is recorded (with its reply): a frame it declines goes
        on to receive_frame, which records it (and asks the lane again itself)."""
        reply = self._core_echo(frame, now)
        if reply is not None and not self._receiving:
            self.recording.echo(now, frame)
            self.recording.frame_out(reply, 0)
        return reply

    def _recorded_receive(self, frame: bytes | memoryview, now: float) -> None:
        self.recording.frame_in(now, frame, fmt.PARTIAL_CHECKSUM if type(frame) is PartialChecksumFrame else 0)
        self._receiving = True
        try:
            self._core_receive(frame, now)
        finally:
            self._receiving = False

    def handle_timer(self, now: float) -> None:
        self.recording.timer(now)
        super().handle_timer(now)

    def get_timer(self) -> float | None:
        self.recording.get_timer()
        return super().get_timer()

    def begin_batch(self) -> None:
        self.recording.begin_batch()
        super().begin_batch()

    def end_batch(self, now: float) -> None:
        self.recording.end_batch(now)
        super().end_batch(now)

    def frames_to_send(self) -> list[bytes]:
        frames = super().frames_to_send()
        out = self.recording.frame_out
        for frame in frames:
            out(frame, frame.gso_size if type(frame) is GsoFrame else 0)
        return frames

    # ------------------------------------------------------------------ set-up calls

    def configure(self, address: int, prefix_len: int, gateway: int | None, now: float) -> None:
        self.recording.call(CONFIGURE, address, prefix_len, gateway, now)
        super().configure(address, prefix_len, gateway, now)

    def deconfigure(self) -> None:
        self.recording.call(DECONFIGURE)
        super().deconfigure()

    def start_ipv6(self, now: float) -> None:
        self.recording.call(START_IPV6, now)
        super().start_ipv6(now)

    def add_address6(self, address: int, prefix_len: int, now: float) -> None:
        self.recording.call(ADD_ADDRESS6, address, prefix_len, now)
        super().add_address6(address, prefix_len, now)

    def remove_address6(self, address: int, now: float) -> None:
        self.recording.call(REMOVE_ADDRESS6, address, now)
        super().remove_address6(address, now)

    @property
    def gateway6(self) -> int | None:
        return self.nd.gateway

    @gateway6.setter
    def gateway6(self, gateway: int | None) -> None:
        self.recording.call(GATEWAY6, gateway)
        self.nd.gateway = gateway

    def enable_segmentation_offload(self, max_segment: int = 65535 - 20 - 60) -> None:
        self.recording.call(OFFLOAD, max_segment)
        super().enable_segmentation_offload(max_segment)


class _RecordedSession:
    """A built-in service's session whose every answer to its StreamServer is recorded."""

    __slots__ = ("inner", "number", "writer")

    def __init__(self, inner: StreamSession, number: int, writer: fmt.RecordWriter) -> None:
        self.inner = inner
        self.number = number
        self.writer = writer

    @property
    def wants_input(self) -> bool:
        answer = bool(self.inner.wants_input)
        self.writer.session(self.number, fmt.WANTS_INPUT, answer)
        return answer

    @property
    def has_output(self) -> bool:
        answer = bool(self.inner.has_output)
        self.writer.session(self.number, fmt.HAS_OUTPUT, answer)
        return answer

    @property
    def closing(self) -> bool:
        answer = bool(self.inner.closing)
        self.writer.session(self.number, fmt.CLOSING, answer)
        return answer

    @closing.setter
    def closing(self, value: bool) -> None:
        self.inner.closing = value

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> None:
        self.inner.eof_received()

    def pull(self, limit: int) -> bytes:
        data = self.inner.pull(limit)
        self.writer.session(self.number, fmt.PULL, data)
        return data

    def close(self) -> None:
        self.inner.close()


class Recording:
    """One ``--record FILE``: the file, its header, the stack that writes to it."""

    def __init__(self, path: str, mac: bytes, config: StackConfig, start: float, seed: int | None = None,
                 opener: Callable[[str], IO[bytes]] | None = None, limit: int | None = None) -> None:
        if config.tcp.isn_secret is None:  # the ISNs (and SYN cookies) must come out the same in the replay
            config = dataclasses.replace(config, tcp=dataclasses.replace(config.tcp, isn_secret=os.urandom(16)))
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(63)
        self.path = path
        try:
            file = opener(path) if opener is not None else open(path, "wb", buffering=0)  # it writes 1 MiB at once
        except OSError as exc:
            raise fmt.RecordingError(f"cannot write the recording {path}: {exc.strerror}") from None
        header = {"pystack": __version__, "mac": mac.hex(), "seed": self.seed, "start": start, "wall": time.time(),
                  "config": fmt.config_to_json(config), "command": " ".join(sys.argv[1:])}
        self.writer = fmt.RecordWriter(file, header, limit=limit)
        self.stack = RecordedStack(mac, config, random.Random(self.seed), self.writer)
        self._numbers = itertools.count()

    def start_services(self, services: Services, http_config: HttpConfig) -> list[str]:
        """Start the built-in services (pystack.apps.services), their sessions recorded."""
        self.writer.call(SERVICES, {"echo": services.echo, "discard": services.discard,
                                    "http_port": services.http_port})
        return start_services(self.stack, services, http_config, self._sessions)

    def _sessions(self, service: str, port: int, factory: SessionFactory) -> SessionFactory:
        writer = self.writer
        numbers = self._numbers

        def recorded() -> StreamSession:
            return _RecordedSession(factory(), next(numbers), writer)

        return recorded

    @property
    def failed(self) -> str | None:
        """Why the recording stopped early (a write failed), if it did."""
        return self.writer.failed

    def close(self) -> None:
        self.writer.close()
