"""PyTCP 3.0.9 as a ping target of ``make bench``, when an interpreter that can run it is named.

PyTCP needs Python >= 3.14, which Debian 12 does not ship; the bench neither downloads it nor an interpreter.
``PYTCP_PYTHON=/path/to/python3.14`` (with ``pytcp`` installed for it) turns its rows on. Its daemon,
``python -m pytcp.daemon -i TAP --ip4-address CIDR``, answers ARP and ping by itself; it has no servers of its
own (applications use its ``pytcp.socket`` drop-in against the daemon), so the rows that need a UDP echo, an
HTTP or a discard server are not run for it here. The figures measured for it on these machines by hand are
quoted in issue 5 (README, Performance).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from pystack_lab import lab


ENV = "PYTCP_PYTHON"
NOT_RUN = f"not run: {ENV} not set (PyTCP needs Python >= 3.14)"


def interpreter() -> str | None:
    return os.environ.get(ENV) or None


@contextlib.contextmanager
def pytcp_target(ready_timeout: float = 30.0) -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    """PyTCP's daemon on TAP pst0 at 192.0.2.2 in a fresh namespace, the kernel side at 192.0.2.1; yields
    once it answers a ping (its own start-up probes take a few seconds)."""
    python = interpreter()
    if python is None:
        raise lab.LabError(NOT_RUN)
    with lab.namespace() as ns, tempfile.TemporaryFile(mode="w+") as log:
        proc = ns.spawn([python, "-m", "pytcp.daemon", "-i", lab.TAP, "--ip4-address", lab.STACK_ADDRESS],
                        stdout=log, stderr=subprocess.STDOUT)

        def tail() -> str:
            log.seek(0)
            return log.read()[-300:]

        deadline = time.monotonic() + 15
        while True:
            try:
                ns.wait_for_link(lab.TAP, 0.5)
                break
            except lab.LabError:
                if proc.poll() is not None:
                    raise lab.LabError(f"PyTCP exited with status {proc.returncode}: {tail()}") from None
                if time.monotonic() > deadline:
                    raise lab.LabError(f"PyTCP made no TAP {lab.TAP} in 15 s: {tail()}") from None
        ns.disable_ipv6(lab.TAP)
        ns.add_address(lab.TAP, lab.HOST_ADDRESS)
        ns.link_up(lab.TAP)
        deadline = time.monotonic() + ready_timeout
        while not lab.ping(ns, lab.STACK_IP, count=1, wait=1)["received"]:
            if proc.poll() is not None:
                raise lab.LabError(f"PyTCP exited with status {proc.returncode}: {tail()}")
            if time.monotonic() > deadline:
                raise lab.LabError(f"PyTCP did not answer ping within {ready_timeout:.0f} s: {tail()}")
        yield ns, {"daemon": [python, "-m", "pytcp.daemon"]}
