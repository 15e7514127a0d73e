"""``pystack ss`` and ``pystack stats`` against a running daemon, over its control socket."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, random_file

pytestmark = pytest.mark.integration

WAIT = 30.0
"""Seconds a poll for a state may take before the test fails instead of hanging."""


def pystack(ns: lab.Namespace, *args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """A pystack client command in ``ns`` (as ``user``, through setpriv, when given)."""
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    return ns.run([*prefix, *lab.pystack_command(), *args], timeout=60)


def _poll(fn: Callable[[], dict | None], what: str) -> dict:
    deadline = time.monotonic() + WAIT
    while (found := fn()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT} s: {what}")
        time.sleep(0.2)
    return found


def _download_row(ns: lab.Namespace) -> dict | None:
    """pystack's row of the connection curl downloads on, from ``pystack ss -ti --json``, if there is one."""
    proc = pystack(ns, "ss", "-ti", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    for row in rows:
        if row["local"] == f"{lab.STACK_IP}:80" and row["peer"].startswith(f"{lab.HOST_IP}:"):
            return row
    return None


def test_ss_shows_a_download_in_flight_with_cwnd_and_srtt(start_stack: Callable[..., lab.Daemon],
                                                          require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("curl")
    www = tmp_path / "www"
    www.mkdir()
    random_file(www / "f.bin", 8 * MiB)
    daemon = start_stack("--http", str(www))
    # A slow reader keeps the connection open (and pystack's send queue full) while we look.
    curl = daemon.ns.spawn(["curl", "-sS", "--noproxy", "*", "--limit-rate", "256k", "-o", "/dev/null",
                            f"{HTTP_URL}/f.bin"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        row = _poll(lambda: _download_row(daemon.ns), "pystack ss shows curl's connection")
        assert row["state"] == "ESTABLISHED", row
        info = row["info"]
        assert info["cwnd"] >= info["snd_mss"] > 0 and info["srtt"] >= 0 and info["rto"] > 0, info
        assert info["bytes_acked"] > 0 and row["send_q"] > 0, row  # data went out, more waits
        text = pystack(daemon.ns, "ss", "-ti", "-n")
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.startswith("tcp ") and f"{lab.HOST_IP}:" in ln)
        assert lines[i].split()[1] == "ESTAB" and f"{lab.STACK_IP}:80" in lines[i], text.stdout
        assert " cwnd:" in lines[i + 1] and " rtt:" in lines[i + 1], text.stdout
        listening = pystack(daemon.ns, "ss", "-tl")
        assert f"{lab.STACK_IP}:http" in listening.stdout or "0.0.0.0:http" in listening.stdout, listening.stdout
    finally:
        lab.stop_process(curl)
    assert daemon.alive()


def test_stats_and_their_rates(start_stack: Callable[..., lab.Daemon]) -> None:
    daemon = start_stack("--echo")
    lab.ping(daemon.ns, lab.STACK_IP, count=3, interval=0.2)
    proc = pystack(daemon.ns, "stats", "--json")
    assert proc.returncode == 0, proc.stderr
    counters = json.loads(proc.stdout)
    assert counters["icmp.echo_replies_sent"] >= 3
    proc = pystack(daemon.ns, "stats", "--watch", "--interval", "0.3", "--count", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("--- ") == 2 and "control.requests" in proc.stdout, proc.stdout


def test_only_root_is_answered_and_a_refusal_is_counted(start_stack: Callable[..., lab.Daemon],
                                                       require_tools: Callable[..., None]) -> None:
    require_tools("setpriv")
    daemon = start_stack()
    proc = pystack(daemon.ns, "ss", user=65534)
    assert proc.returncode == 1 and "only root" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    counters = daemon.stop()
    assert counters.get("drop.control.not_root") == 1, counters


def test_two_namespaces_each_with_a_daemon_on_pst0_answer_for_themselves(
        start_stack: Callable[..., lab.Daemon], tmp_path: Path) -> None:
    first = start_stack("--echo")
    with lab.namespace() as other_ns, lab.pystack_daemon(other_ns, "--discard", workdir=tmp_path):
        for ns, port in ((first.ns, "0.0.0.0:7"), (other_ns, "0.0.0.0:9")):
            proc = pystack(ns, "ss", "-tln")
            assert proc.returncode == 0 and port in proc.stdout, (ns, proc.stdout, proc.stderr)


def test_without_a_daemon_ss_says_so_in_one_line(ns: lab.Namespace) -> None:
    proc = pystack(ns, "ss")
    assert proc.returncode == 1, proc
    assert proc.stderr.strip().splitlines() == [
        "pystack: error: no pystack daemon listens on @pystack/pst0 in this network namespace "
        "(pystack run --tap or --tun NAME listens on @pystack/NAME)"]


def test_a_program_under_pystack_exec_is_seen_by_ss(daemon_ready: None, ns: lab.Namespace) -> None:
    program = "import socket, time\ns = socket.socket()\ns.bind(('', 8080))\ns.listen()\ntime.sleep(60)\n"
    proc = ns.spawn([*lab.pystack_command(), "exec", "--tap", lab.TAP, "--address", lab.STACK_ADDRESS,
                     "--host-address", lab.HOST_ADDRESS, "--quiet", "--", "-c", program],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def listening() -> dict | None:
            out = pystack(ns, "ss", "-tl", "--json")
            rows = json.loads(out.stdout) if out.returncode == 0 else []
            return next((r for r in rows if r["local"] == "0.0.0.0:8080"), None)

        row = _poll(listening, "pystack ss shows the program's listening socket")
        assert row["state"] == "LISTEN", row
    finally:
        lab.stop_process(proc)
