"""The "same program" rows of ``make bench``: scripts/socket_program.py, unmodified, on three stacks.

The program (upload, download, connect-and-close rate, request/response latency; see its docstring) talks to
the kernel servers of scripts/socket_program_servers.py; only the stack under its ``socket`` module changes:
  kernel   the program in one namespace, the servers in another, over a veth pair;
  pystack  ``pystack exec --tap pst0 --address 192.0.2.2/24 --host-address 192.0.2.1/24 -- socket_program.py``,
           the servers on the kernel's side of the TAP, in the same namespace;
  pytcp    PyTCP 3.0.9's daemon on its TAP (scripts/bench_pytcp.py), the program run by PyTCP's interpreter
           under scripts/pytcp_exec.py (``pytcp.socket`` in place of ``socket``), the servers as for pystack.
The program prints which ``socket`` module it ran on, and a row whose module is not the target's fails: the
figures are those of the stack named. Each target is one lab, bounded in time; one that fails records why
and the others still run.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_pytcp

from pystack_lab import bench_lab, lab

SCRIPTS = Path(__file__).resolve().parent
PROGRAM = SCRIPTS / "socket_program.py"
SERVERS = SCRIPTS / "socket_program_servers.py"
TESTS = ("upload", "download", "connect", "latency")
MODULE: dict[str, Callable[[str], bool]] = {
    "kernel": lambda path: path == socket.__file__,  # this interpreter's standard library
    "pystack": lambda path: "/pystack/socket" in path,
    "pytcp": lambda path: "/pytcp/socket/" in path,
}
"""Whether the path of the ``socket`` module the program ran on is the target's."""


class NotRun(Exception):
    """The target cannot be run on this machine (why): its row says ``not run``, it is not a failure."""


@dataclass
class Lab:
    """Where the program runs (``argv`` before its own arguments, in ``client``) and the servers' address."""

    client: lab.Namespace
    server_ip: str
    argv: list[str]
    info: dict[str, Any]


def _servers(ns: lab.Namespace) -> None:
    bench_lab.spawn_ready(ns, [sys.executable, str(SERVERS)], "the program's kernel servers")


@contextlib.contextmanager
def kernel_lab() -> Iterator[Lab]:
    with bench_lab.kernel_pair() as pair:
        _servers(pair.far)
        yield Lab(pair.near, lab.STACK_IP, [sys.executable, str(PROGRAM)], {})


@contextlib.contextmanager
def pystack_lab() -> Iterator[Lab]:
    with lab.namespace() as ns:
        _servers(ns)  # bound to every address: up before the TAP that pystack exec makes
        argv = [*lab.pystack_command(), "exec", "--tap", lab.TAP, "--address", lab.STACK_ADDRESS,
                "--host-address", lab.HOST_ADDRESS, "--quiet", "--no-control", "--", str(PROGRAM)]
        yield Lab(ns, lab.HOST_IP, argv, {})


@contextlib.contextmanager
def pytcp_lab() -> Iterator[Lab]:
    python, why = bench_pytcp.interpreter()
    if python is None:
        raise NotRun(why)
    with bench_pytcp.pytcp_target() as (ns, extra):
        _servers(ns)
        argv = ["env", f"PYTCP_DAEMON_SOCKET={extra['ipc_socket']}", python, str(SCRIPTS / "pytcp_exec.py"),
                str(PROGRAM)]
        yield Lab(ns, lab.HOST_IP, argv, {"interpreter": python})


LABS: dict[str, Callable[[], contextlib.AbstractContextManager[Lab]]] = {
    "kernel": kernel_lab,
    "pystack": pystack_lab,
    "pytcp": pytcp_lab,
}


def measure(name: str, seconds: float) -> dict[str, Any]:
    """One target's row: the program's figures per test (``{"error": why}`` for a test that failed), or the
    row's ``error`` when the lab or the program as a whole failed."""
    print(f"[{name}] the same program: building the lab and running it ...", flush=True)
    row: dict[str, Any] = {"target": name}
    bound = 4 * (seconds + 15) + 30  # each test's time, its slowest call's timeout, and start-up
    try:
        with LABS[name]() as where:
            argv = [*where.argv, "--server", where.server_ip, "--seconds", f"{seconds:g}"]
            proc = where.client.run(argv, timeout=bound)
            row.update(where.info)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise lab.LabError(f"the program exited with status {proc.returncode}: {tail[:200]}")
        lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        if not lines:
            raise lab.LabError(f"the program printed no figures: {proc.stderr.strip()[-200:]}")
        got = json.loads(lines[-1])
        module = str(got.get("socket_module"))
        if not MODULE[name](module):
            raise lab.LabError(f"the program ran on {module}, not {name}'s socket module")
        row.update(got)
    except NotRun as exc:
        return {"target": name, "skipped": f"not run: {exc}"}
    except subprocess.TimeoutExpired:
        row["error"] = f"the program did not finish in {bound:.0f} s"
    except lab.LabError as exc:
        row["error"] = str(exc)
    except Exception as exc:  # a measurement: say why, go on with the other targets
        row["error"] = f"{type(exc).__name__}: {exc}"
    if "error" in row:
        print(f"[{name}] the same program could not be measured: {row['error']}", file=sys.stderr, flush=True)
    for test in TESTS:
        part = row.get(test)
        if isinstance(part, dict) and "error" in part:
            print(f"[{name}] the same program, {test} failed: {part['error']}", file=sys.stderr, flush=True)
    return row
