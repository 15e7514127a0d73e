"""pystack without root: on a TAP made for the user (``ip tuntap add mode tap user N``), and on a TAP
descriptor that root opened and handed over (``--fd N``). In both, ``pystack exec`` runs as nobody,
exchanges TCP with a kernel echo server, and answers the kernel's ping.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all"]
PROGRAMS = Path(__file__).resolve().parent / "programs"
ECHO_PORT = 7000
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
PROGRAM = (
    "import json, os, socket, sys\n"
    f"s = socket.create_connection(({lab.HOST_IP!r}, {ECHO_PORT}), timeout=20)\n"
    "s.sendall(b'from an unprivileged pystack\\n')\n"
    "print(json.dumps({'uid': os.geteuid(), 'echo': s.makefile().readline()}), flush=True)\n"
    "sys.stdin.readline()\n")
"""A TCP exchange with the kernel, then it waits (answering ping) until the test writes a line."""


def _kernel_side(ns: lab.Namespace) -> None:
    ns.add_address(lab.TAP, lab.HOST_ADDRESS)
    ns.link_up(lab.TAP)
    ns.disable_ipv6(lab.TAP)
    echo = ns.spawn(["python3", str(PROGRAMS / "echo_servers.py"), lab.HOST_IP, "--threads", str(ECHO_PORT)],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"


OPEN_TUN = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs none /dev/net && mknod -m 666 /dev/net/tun c 10 200 && exec "$@"', "sh"]
"""/dev/net/tun as distributions make it, open to every user (mode 0666): here it is 0600, so the test
gives the user such a node in a private mount namespace of that one command, changing nothing else."""


def _run_as_nobody(ns: lab.Namespace, link: Sequence[str], pass_fds: tuple[int, ...] = (),
                   prefix: Sequence[str] = ()) -> None:
    """pystack exec as nobody: its TCP exchange, the kernel's ping while it runs, exit status 0."""
    proc = ns.spawn([*prefix, *AS_NOBODY, *lab.pystack_command(), "exec", *link, "--address", lab.STACK_ADDRESS,
                     "-q", "--", "-c", PROGRAM], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True, pass_fds=pass_fds)
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not box or not box[0].strip():
        proc.kill()
        pytest.fail(f"no answer from the program: status {proc.wait()}, stderr {proc.stderr.read()}")  # type: ignore[union-attr]
    assert json.loads(box[0]) == {"uid": NOBODY, "echo": "from an unprivileged pystack\n"}
    ping = lab.ping(ns, lab.STACK_IP, count=3)
    assert ping["received"] == 3, ping["output"]
    out, err = proc.communicate("\n", timeout=30)
    assert proc.returncode == 0, err


def test_a_tap_made_for_the_user_needs_no_root(daemon_ready: None, ns: lab.Namespace, require_tools: Any) -> None:
    require_tools("setpriv")
    made = ns.run(["ip", "tuntap", "add", "dev", lab.TAP, "mode", "tap", "user", str(NOBODY)])
    assert made.returncode == 0, made.stderr
    _kernel_side(ns)
    _run_as_nobody(ns, ["--tap", lab.TAP], prefix=OPEN_TUN)


def test_a_tap_descriptor_handed_over_needs_no_root(daemon_ready: None, ns: lab.Namespace, require_tools: Any) -> None:
    """Root opens the TAP (it lives while the descriptor does) and hands it to pystack as --fd."""
    require_tools("setpriv")

    def open_tap() -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", lab.TAP.encode(), IFF_TAP | IFF_NO_PI))
        return fd

    fd = ns.call_in(open_tap)  # TUNSETIFF makes the device in the opener's namespace
    try:
        _kernel_side(ns)
        _run_as_nobody(ns, ["--fd", str(fd)], pass_fds=(fd,))
    finally:
        os.close(fd)


def test_without_root_a_tap_of_someone_else_is_refused(daemon_ready: None, ns: lab.Namespace,
                                                       require_tools: Any) -> None:
    require_tools("setpriv")
    assert ns.run(["ip", "tuntap", "add", "dev", lab.TAP, "mode", "tap"]).returncode == 0  # root's
    proc = ns.run([*OPEN_TUN, *AS_NOBODY, *lab.pystack_command(), "exec", "--tap", lab.TAP,
                   "--address", lab.STACK_ADDRESS, "--", "-c", "pass"], timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "needs root" in proc.stderr
