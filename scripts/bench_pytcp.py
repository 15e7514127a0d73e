"""PyTCP 3.0.9 as a target of ``make bench``: its daemon on a TAP, answering ping and serving ``pytcp.socket``.

PyTCP needs Python >= 3.14, which Debian 12 does not ship: scripts/pytcp_python.py makes one from Debian sid's
packages in a cache outside the repository (once; later runs find it), or ``PYTCP_PYTHON=/path/to/python``
names an interpreter that imports pytcp. When neither works the rows say ``not run`` and why.

Its daemon (scripts/pytcp_daemon.py: ``python -m pytcp.daemon`` with its per-frame console log off) runs on
TAP ``tap0`` (PyTCP opens only interfaces named ``tap*`` or ``tun*``) at 192.0.2.2/24 in a fresh namespace, the
kernel's side at 192.0.2.1/24, IPv4 only (``--no-ip6``: the kernel's side has no IPv6, and PyTCP's wait for
SLAAC doubles its start-up, to about 24 s). It answers ARP and ping itself; programs use it through its
``pytcp.socket`` drop-in, whose control socket is in a private directory (``PYTCP_DAEMON_SOCKET``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytcp_python

from pystack_lab import lab

ENV = "PYTCP_PYTHON"
TAP = "tap0"
SCRIPTS = Path(__file__).resolve().parent


@functools.cache
def interpreter() -> tuple[str | None, str | None]:
    """An interpreter that runs PyTCP and None, or None and why there is none: ``$PYTCP_PYTHON``, else the one
    scripts/pytcp_python.py makes (asked once per run)."""
    named = os.environ.get(ENV)
    if named:
        why = pytcp_python.works(Path(named))
        return (named, None) if why is None else (None, f"{ENV}={named} does not run PyTCP: {why}")
    try:
        return str(pytcp_python.ensure(pytcp_python.cache_dir())), None
    except pytcp_python.SetupError as exc:
        return None, f"no Python 3.14 for PyTCP: {exc}"
    except Exception as exc:  # the bench goes on without PyTCP, saying why
        return None, f"no Python 3.14 for PyTCP: {type(exc).__name__}: {exc}"


@contextlib.contextmanager
def pytcp_target(ready_timeout: float = 45.0) -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    """PyTCP's daemon in a fresh namespace; yields once it answers a ping and its control socket is there
    (its start-up probes, RFC 5227's among them, take about 12 s). ``extra["ipc_socket"]`` is the socket."""
    python, why = interpreter()
    if python is None:
        raise lab.LabError(f"not run: {why}")
    with lab.namespace() as ns, tempfile.TemporaryDirectory(prefix="pystack-pytcp-") as tmp, \
            open(Path(tmp) / "daemon.log", "w+") as log:
        ipc = Path(tmp) / "pytcp.sock"
        proc = ns.spawn([python, str(SCRIPTS / "pytcp_daemon.py"), "-i", TAP, "--ip4-address", lab.STACK_ADDRESS,
                         "--no-ip6", "--ipc-socket", str(ipc)], stdout=log, stderr=subprocess.STDOUT)

        def failed(what: str) -> lab.LabError:
            log.seek(0)
            return lab.LabError(f"PyTCP {what}: {log.read()[-300:]}")

        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                ns.wait_for_link(TAP, 0.5)
                break
            except lab.LabError:
                if proc.poll() is not None:
                    raise failed(f"exited with status {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise failed(f"made no TAP {TAP} in {ready_timeout:.0f} s") from None
        ns.disable_ipv6(TAP)
        ns.add_address(TAP, lab.HOST_ADDRESS)
        ns.link_up(TAP)
        while not (ipc.exists() and lab.ping(ns, lab.STACK_IP, count=1, wait=1)["received"]):
            if proc.poll() is not None:
                raise failed(f"exited with status {proc.returncode}")
            if time.monotonic() > deadline:
                raise failed(f"did not answer ping and serve {ipc.name} within {ready_timeout:.0f} s")
            time.sleep(0.2)
        yield ns, {"daemon": [python, "scripts/pytcp_daemon.py"], "ipc_socket": str(ipc)}
