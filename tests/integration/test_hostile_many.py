"""Many connections (issue 6): thousands of concurrent idle TCP connections from the kernel to
pystack's echo service are all held, a random few still echo, and pystack's memory per connection
(VmRSS before and while they are held) stays under a generous ceiling.

The kernel side is a client program (this file run with ``client``, in the test's namespace, with
RLIMIT_NOFILE raised) that opens non-blocking sockets in batches and waits for each batch's
handshakes with a selector, bounded in time. The daemon is observed (pystack_lab.observer)
so the test reads pystack's own count of established connections.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import hostile_lab as hl
from pystack_lab import bench_lab, lab

pytestmark = pytest.mark.integration

ECHO_PORT = 7
PER_CONN_CEILING_KIB = 16.0
"""Resident memory one idle established connection may cost pystack (it measures about 2-3 KiB)."""
CHECKED = 10


class Client:
    """Drives the client program: one JSON answer per command line."""

    def __init__(self, ns: lab.Namespace, count: int, seed: int) -> None:
        self.proc = ns.spawn([sys.executable, str(Path(__file__).resolve()), "client", "--count", str(count),
                              "--seed", str(seed)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def answer(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                pytest.fail(f"the client did not answer within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            assert self.proc.stderr is not None
            pytest.fail(f"the client exited ({self.proc.returncode}): {self.proc.stderr.read()}")
        return json.loads(line)

    def command(self, line: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.answer(timeout)

    def close(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        answer = self.answer(timeout)
        self.proc.wait(15)
        return answer


@pytest.mark.parametrize("count", [2_000, 10_000])
def test_many_idle_connections_are_held_and_cheap(ns: lab.Namespace, tmp_path: Path, daemon_ready: None,
                                                  count: int) -> None:
    """``count`` concurrent idle connections to the echo service: pystack holds all of them
    established, 10 random ones still echo, each costs under PER_CONN_CEILING_KIB of RSS, and when
    the kernel closes them pystack's table empties."""
    with hl.observed_daemon(ns, "--echo", workdir=tmp_path) as daemon:
        time.sleep(1.0)  # let the daemon settle before the baseline
        rss_before = bench_lab.rss_bytes(daemon.pid) / 1024
        client = Client(ns, count, seed=count)
        held = client.answer(timeout=60 + count / 20)
        assert held["failed"] == 0 and held["held"] == count, held
        # The client counts a connection once the SYN-ACK is in, pystack once the client's last ACK is read:
        # on a loaded machine a few of those ACKs are still on their way when the client answers.
        deadline = time.monotonic() + 10
        while daemon.snapshot()["sizes"]["tcp_established"] < count and time.monotonic() < deadline:
            time.sleep(0.2)
        snap = daemon.check_bounds()
        rss_held = bench_lab.rss_bytes(daemon.pid) / 1024
        established = snap["sizes"]["tcp_established"]
        checked = client.command(f"check {CHECKED}", timeout=60)
        closed = client.close()
        deadline = time.monotonic() + 60
        while (after := daemon.snapshot())["sizes"]["tcp_connections"] > 0:
            assert time.monotonic() < deadline, f"connections left after every close: {after['sizes']}"
            time.sleep(0.5)
        assert daemon.daemon.alive(), daemon.daemon.stderr()
    per_conn = (rss_held - rss_before) / count
    print(f"\n{count} idle connections: opened in {held['seconds']:.1f} s, {established} established in pystack; "
          f"RSS {rss_before / 1024:.1f} MiB before, {rss_held / 1024:.1f} MiB held: {per_conn:.2f} KiB each; "
          f"{checked['echoed']}/{CHECKED} random ones echoed; closed in {closed['seconds']:.1f} s")
    assert established == count, snap["sizes"]
    assert checked["echoed"] == CHECKED, checked
    assert per_conn < PER_CONN_CEILING_KIB, f"{per_conn:.2f} KiB per connection"
    assert rss_held / 1024 < hl.RSS_CEILING_MIB
    assert after["counters"].get("drop.internal_error", 0) == 0, after["counters"]


# --- the client program (runs in the namespace) -----------------------------------------------------


def _client_main(argv: list[str]) -> int:
    """Open ``--count`` connections to pystack's echo port in batches of non-blocking connects, say
    how many are held, then answer ``check K`` (echo over K random ones) until stdin closes."""
    import argparse
    import errno
    import random
    import resource
    import secrets
    import socket

    parser = argparse.ArgumentParser(prog="test_hostile_many client")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--batch-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        hard = want  # root may raise the hard limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def say(**answer: Any) -> None:
        print(json.dumps(answer), flush=True)

    socks: list[socket.socket] = []
    failed: list[str] = []
    t0 = time.monotonic()
    sel = selectors.DefaultSelector()
    while len(socks) + len(failed) < args.count:
        pending = {}
        for _ in range(min(args.batch, args.count - len(socks) - len(failed))):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((lab.STACK_IP, ECHO_PORT))
            if err not in (0, errno.EINPROGRESS):
                failed.append(errno.errorcode.get(err, str(err)))
                s.close()
                continue
            pending[s.fileno()] = s
            sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + args.batch_timeout
        while pending and time.monotonic() < deadline:
            for key, _ev in sel.select(max(0.0, deadline - time.monotonic())):
                s = pending.pop(key.fd)
                sel.unregister(s)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    failed.append(errno.errorcode.get(err, str(err)))
                    s.close()
                else:
                    socks.append(s)
        for s in pending.values():
            sel.unregister(s)
            s.close()
            failed.append("batch timeout")
    say(held=len(socks), failed=len(failed), reasons=sorted(set(failed))[:5], seconds=time.monotonic() - t0)

    rng = random.Random(args.seed)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd != "check":
            say(error=f"unknown command {line.strip()!r}")
            continue
        echoed, errors = 0, []
        for s in rng.sample(socks, min(int(arg), len(socks))):
            token = secrets.token_bytes(64)
            try:
                s.settimeout(10)
                s.sendall(token)
                back = b""
                while len(back) < len(token):
                    chunk = s.recv(len(token) - len(back))
                    if not chunk:
                        break
                    back += chunk
                echoed += back == token
            except OSError as exc:
                errors.append(repr(exc))
        say(echoed=echoed, errors=errors[:5])

    t0 = time.monotonic()
    for s in socks:
        s.close()
    say(closed=len(socks), seconds=time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        sys.exit(_client_main(sys.argv[2:]))
    sys.exit("usage: test_hostile_many.py client --count N [--seed S] [--batch B]")
