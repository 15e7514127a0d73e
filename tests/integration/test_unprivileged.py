"""pystack without root: on a TAP or a TUN made for the user (``ip tuntap add mode tap|tun user N``), and
on a TAP or TUN descriptor that root opened and handed over (``--fd N``). In each, ``pystack exec`` runs as
nobody, exchanges TCP with a kernel echo server, and answers the kernel's ping; on a TUN (bare IP packets,
no Ethernet, no ARP) ``pystack run`` as nobody also serves the kernel's curl.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
import subprocess
import tempfile
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
IFF_TUN, IFF_TAP, IFF_NO_PI = 0x0001, 0x0002, 0x1000
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


def _open_device(ns: lab.Namespace, kind: int) -> int:
    """Root opens a TAP or TUN (``kind``) in ``ns``: it lives while the descriptor does."""

    def open_device() -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", lab.TAP.encode(), kind | IFF_NO_PI))
        return fd

    return ns.call_in(open_device)  # TUNSETIFF makes the device in the opener's namespace


def test_a_tap_descriptor_handed_over_needs_no_root(daemon_ready: None, ns: lab.Namespace, require_tools: Any) -> None:
    """Root opens the TAP and hands it to pystack as --fd."""
    require_tools("setpriv")
    fd = _open_device(ns, IFF_TAP)
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


def test_a_tun_made_for_the_user_needs_no_root(daemon_ready: None, ns: lab.Namespace, require_tools: Any) -> None:
    """--tun: bare IP packets, no Ethernet and no ARP; the same exchange and ping as on a TAP."""
    require_tools("setpriv")
    made = ns.run(["ip", "tuntap", "add", "dev", lab.TAP, "mode", "tun", "user", str(NOBODY)])
    assert made.returncode == 0, made.stderr
    _kernel_side(ns)
    _run_as_nobody(ns, ["--tun", lab.TAP], prefix=OPEN_TUN)


def test_a_tun_descriptor_handed_over_needs_no_root(daemon_ready: None, ns: lab.Namespace, require_tools: Any) -> None:
    """Root opens a TUN and hands it over: pystack finds it is one (TUNGETIFF) and speaks bare IP on it."""
    require_tools("setpriv")
    fd = _open_device(ns, IFF_TUN)
    try:
        _kernel_side(ns)
        _run_as_nobody(ns, ["--fd", str(fd)], pass_fds=(fd,))
    finally:
        os.close(fd)


def test_pystack_run_as_nobody_on_a_tun_serves_the_kernels_curl(daemon_ready: None, ns: lab.Namespace,
                                                                require_tools: Any) -> None:
    """The daemon on a TUN made for nobody: the kernel pings it and downloads a file over its TCP."""
    require_tools("setpriv", "curl")
    made = ns.run(["ip", "tuntap", "add", "dev", lab.TAP, "mode", "tun", "user", str(NOBODY)])
    assert made.returncode == 0, made.stderr
    ns.add_address(lab.TAP, lab.HOST_ADDRESS)
    ns.link_up(lab.TAP)
    ns.disable_ipv6(lab.TAP)
    with tempfile.TemporaryDirectory(prefix="pystack-tun-") as root:
        os.chmod(root, 0o755)  # nobody serves it
        body = os.urandom(3 << 20)
        Path(root, "file.bin").write_bytes(body)
        os.chmod(Path(root, "file.bin"), 0o644)
        daemon = lab.Daemon(ns, [*OPEN_TUN, *AS_NOBODY, *lab.pystack_command(), "run", "--tun", lab.TAP, "--address",
                                 lab.STACK_ADDRESS, "--http", f"{root}:8080", "--no-control"], Path(root, "none.json"))
        try:
            daemon.wait_ready(20)
            assert "TUN, bare IP packets (no Ethernet, no ARP)" in daemon.stderr()
            ping = lab.ping(ns, lab.STACK_IP, count=3)
            assert ping["received"] == 3, ping["output"]
            got = ns.run(["curl", "-sS", "--noproxy", "*", "--max-time", "60", f"http://{lab.STACK_IP}:8080/file.bin"],
                         timeout=90, text=False)
            assert got.returncode == 0, got.stderr
            assert hashlib.sha256(got.stdout).digest() == hashlib.sha256(body).digest()
            # And the other way: curl uploads the file, pystack answers its SHA-256.
            sent = ns.run(["curl", "-sS", "--noproxy", "*", "--max-time", "60", "--data-binary",
                           f"@{root}/file.bin", f"http://{lab.STACK_IP}:8080/sha256"], timeout=90)
            assert sent.returncode == 0, sent.stderr
            assert sent.stdout.split()[0] == hashlib.sha256(body).hexdigest()
        finally:
            daemon.stop()
    assert daemon.returncode == 0, daemon.stderr()
    # The counters it printed at exit: no ARP on a TUN, and the virtio-net offloads at work both ways.
    counters = dict(line.split() for line in daemon.stderr().split("pystack counters:\n")[1].splitlines())
    assert not [name for name in counters if name.startswith("arp.")]
    assert int(counters["gso_frames_out"]) > 0 and int(counters["link.super_frames_in"]) > 0


def test_a_tun_descriptor_is_not_taken_for_a_tap(daemon_ready: None, ns: lab.Namespace) -> None:
    fd = _open_device(ns, IFF_TUN)
    try:
        proc = ns.spawn([*lab.pystack_command(), "exec", "--fd", str(fd), "--medium", "ethernet", "--address",
                         lab.STACK_ADDRESS, "--", "-c", "pass"], stderr=subprocess.PIPE, text=True, pass_fds=(fd,))
        _out, err = proc.communicate(timeout=60)
    finally:
        os.close(fd)
    assert proc.returncode == 2, err
    assert err.strip() == (f"pystack: error: descriptor {fd} is {lab.TAP}, a TUN (IP packets), not the ethernet "
                           "medium asked for")
