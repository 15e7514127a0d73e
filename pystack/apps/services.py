"""The built-in services of ``pystack run`` (--echo, --discard, --http), started in one place and one order,
so that a replay (pystack.replay) starts the same listeners as the run it replays."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from pystack.apps.stream_server import DiscardSession, EchoSession, StreamServer, StreamSession
from pystack.apps.udp_echo import ECHO_PORT, UdpEcho
from pystack.config import HttpConfig
from pystack.stack import Stack

SessionFactory = Callable[[], StreamSession]
Sessions = Callable[[str, int, SessionFactory], SessionFactory]
"""``sessions(service, port, factory)``: the factory a StreamServer is to use instead of ``factory``
(a recording wraps each session, a replay answers from the recording)."""

DISCARD_PORT = 9


@dataclass(frozen=True)
class Services:
    """Which services to run: ``pystack run``'s --echo, --discard and --http DIR[:PORT]."""

    echo: bool = False
    discard: bool = False
    http_port: int | None = None
    http_root: str | None = None
    """The directory --http serves (not needed by a replay: its sessions' answers are recorded)."""


def _same(service: str, port: int, factory: SessionFactory) -> SessionFactory:
    return factory


def start_services(stack: Stack, services: Services, http_config: HttpConfig,
                   sessions: Sessions = _same) -> list[str]:
    """Listen for what ``services`` asks; what each is, for the ready line."""
    started = []
    if services.echo:
        UdpEcho(stack)
        StreamServer(stack, ECHO_PORT, sessions("echo", ECHO_PORT, EchoSession))
        started.append(f"echo on udp/tcp port {ECHO_PORT}")
    if services.discard:
        StreamServer(stack, DISCARD_PORT, sessions("discard", DISCARD_PORT, DiscardSession))
        started.append(f"discard on tcp port {DISCARD_PORT}")
    if services.http_port is not None:
        from pystack.apps.http_session import HttpSession, SmallFileCache

        root = services.http_root
        files = SmallFileCache(http_config)  # one per server: its sessions share what it holds

        def http() -> StreamSession:
            if root is None:
                raise RuntimeError("an http service without its directory can only replay its sessions")
            return HttpSession(root, http_config, files)

        StreamServer(stack, services.http_port, sessions("http", services.http_port, http))
        started.append(f"http on tcp port {services.http_port}"
                       + (f" from {os.path.abspath(root)}" if root is not None else ""))
    return started
