"""``pystack exec``: an unmodified Python program, run in this process, whose sockets are pystack's.

The stack is set up as for ``pystack fetch`` (the TAP, DHCP or a static address, the DNS servers), its
loop runs in its own thread, :mod:`pystack.socket` takes the place of ``socket`` in ``sys.modules``, and
the program runs as ``python SCRIPT``, ``python -m MODULE`` or ``python -c CODE`` would run it. The exit
status is the program's.

AF_INET6 works once the stack has IPv6 up (the session brings it up, as fetch's does). What cannot be
covered: code that opens kernel sockets through ``_socket`` directly, or C extensions that make their
own; subprocesses (a new interpreter has the kernel's ``socket`` again).
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

from pystack.api import tls
from pystack.api.names import Names
from pystack.dns import servers as nameservers
from pystack.dns.hosts import HostsTable
from pystack.tools.narrator import Narrator
from pystack.tools.session import ClientSession, Setup

KEEP_KERNEL_SOCKETS = ("pystack", "pyroute2")
"""Packages whose modules keep the kernel's socket module: pystack's own link and set-up."""


class ProgramError(ValueError):
    """The program part of the command line is not SCRIPT, -m MODULE or -c CODE."""


@dataclass
class Program:
    """What to run: exactly one of ``script``, ``module`` and ``code``, with its arguments."""

    script: str | None = None
    module: str | None = None
    code: str | None = None
    args: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, argv: Sequence[str]) -> Program:
        words = list(argv)
        if words and words[0] == "--":
            words = words[1:]
        if not words:
            raise ProgramError("give the program to run: SCRIPT, -m MODULE or -c CODE (after --)")
        first, rest = words[0], words[1:]
        if first in ("-m", "-c"):
            if not rest:
                raise ProgramError(f"{first} needs {'a module name' if first == '-m' else 'the code to run'}")
            return cls(module=rest[0], args=rest[1:]) if first == "-m" else cls(code=rest[0], args=rest[1:])
        if first.startswith("-"):
            raise ProgramError(f"unknown program option {first!r}: give SCRIPT, -m MODULE or -c CODE")
        if not os.path.isfile(first):
            raise ProgramError(f"no such script: {first}")
        return cls(script=first, args=rest)

    def describe(self) -> str:
        what = self.script or (f"-m {self.module}" if self.module else f"-c {self.code!r}")
        return " ".join([what, *self.args])


OVERRIDDEN = ("socket", "create_connection", "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
              "gethostbyaddr", "getnameinfo", "getfqdn", "has_dualstack_ipv6")
"""What pystack.socket has of its own (the rest of it is the stdlib module's)."""


def put_pystack_socket_in_place() -> list[str]:
    """``socket`` is pystack.socket from now on, and ``ssl.SSLContext.wrap_socket`` takes its sockets
    (pystack/api/tls.py). Modules imported already (asyncio, logging.handlers ...,
    for the set-up) that hold the kernel's socket module, or one of the functions pystack.socket replaces,
    get pystack's in its place, so that they too make pystack sockets. They are rebound, not imported
    again: a second asyncio would not match its C accelerator's first (``_asyncio`` raises the first's
    CancelledError). Returns the modules changed."""
    import socket as kernel_socket

    import pystack.socket as ours

    ours_for = {id(kernel_socket): ours}
    for name in OVERRIDDEN:
        ours_for[id(getattr(kernel_socket, name))] = getattr(ours, name)
    sys.modules["socket"] = ours
    tls.install()  # ssl's wrap_socket: TLS over a MemoryBIO for pystack sockets
    changed = []
    for name, module in list(sys.modules.items()):
        if module is None or module is ours or name.partition(".")[0] in KEEP_KERNEL_SOCKETS or name == "socket":
            continue
        try:
            namespace = vars(module)
        except TypeError:
            continue
        found = {key: ours_for[id(value)] for key, value in list(namespace.items()) if id(value) in ours_for}
        if found:
            namespace.update(found)
            changed.append(name)
    return changed


def run_program(program: Program) -> int:
    """Run it as the interpreter would, in this thread; its exit status. Waits for its non-daemon threads."""
    status = 0
    try:
        if program.module is not None:
            sys.argv = [program.module, *program.args]
            sys.path.insert(0, os.getcwd())
            runpy.run_module(program.module, run_name="__main__", alter_sys=True)
        elif program.code is not None:
            sys.argv = ["-c", *program.args]
            sys.path.insert(0, "")
            main = sys.modules["__main__"] = types.ModuleType("__main__")
            exec(compile(program.code, "<string>", "exec"), main.__dict__)
        else:
            assert program.script is not None
            sys.argv = [program.script, *program.args]
            sys.path.insert(0, os.path.dirname(os.path.abspath(program.script)))
            runpy.run_path(program.script, run_name="__main__")
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        status = 130
    except BaseException as exc:  # the program's own failure: its traceback, as python prints it
        traceback.print_exception(type(exc), exc, _program_frames(exc.__traceback__))
        status = 1
    for thread in threading.enumerate():  # as the interpreter does before it exits
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    return status


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _program_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the program's first frame on (without runpy's and ours)."""
    here = os.path.dirname(__file__)
    ours = (runpy.__file__, "<frozen runpy>")
    while tb is not None and (tb.tb_frame.f_code.co_filename.startswith(here)
                              or tb.tb_frame.f_code.co_filename in ours):
        tb = tb.tb_next
    return tb


def exec_program(setup: Setup, program: Program, hosts_file: str, narrator: Narrator) -> int:
    """Set the stack up, run ``program`` over it, take the stack down; the program's exit status."""
    session = ClientSession(setup, narrator)
    try:
        session.open()
        session.configure()
        rt = session.runtime
        assert rt is not None
        # The session's current servers before every lookup: the lease's and the routers' (RDNSS) as they change.
        names = Names(rt, session.dns_to_ask, HostsTable.load(hosts_file), rng=session.rng)
        import pystack.socket

        pystack.socket.use(rt, names)
        session.stop_narrating_frames()
        dns = nameservers.texts(session.dns_to_ask())
        narrator.say(f"running {program.describe()} with pystack's sockets (DNS {dns}, hosts {hosts_file})")
        put_pystack_socket_in_place()
        status = run_program(program)
        narrator.say(f"the program exited with status {status}")
        return status
    finally:
        session.close()
