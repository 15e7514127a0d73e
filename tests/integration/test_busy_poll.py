"""``pystack run --busy-poll USEC|auto``: the loop polls instead of sleeping after traffic, and the daemon still
answers everything: ping and HTTP keep-alive and new connections, every byte checked. The default, auto,
polls only while frames follow each other closely: an idle daemon sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from pystack_lab.bench_lab import cpu_seconds
from tcp_lab import HTTP_URL, MiB, curl, random_file, sha256_file

pytestmark = [pytest.mark.integration]


def test_busy_poll_daemon_says_so_and_serves(start_stack: Callable[..., lab.Daemon], www: Path,
                                             tmp_path: Path) -> None:
    daemon = start_stack("--busy-poll", "500", "--http", str(www))
    assert "busy-poll 500 us" in daemon.stderr(), daemon.stderr()
    result = lab.ping(daemon.ns, lab.STACK_IP, count=20, interval=0.01)
    assert result["received"] == 20, result["output"]
    want = random_file(www / "file.bin", 4 * MiB)
    for i in range(5):  # separate connections, one after the other: the case busy polling is for
        out = tmp_path / f"got{i}.bin"
        proc = curl(daemon.ns, "-o", str(out), "-w", "%{http_code}", f"{HTTP_URL}/file.bin", timeout=60)
        assert proc.stdout == "200" and sha256_file(out) == want, proc.stdout


def test_default_polls_adaptively_and_sleeps_when_the_link_is_idle(start_stack: Callable[..., lab.Daemon],
                                                                  www: Path, tmp_path: Path) -> None:
    """auto is the default; after a burst of connections (the window grows to its limit) and then
    silence, the loop must go back to sleeping: two idle seconds cost far less than a second of CPU."""
    daemon = start_stack("--http", str(www))
    assert "busy-poll auto (up to 200 us)" in daemon.stderr(), daemon.stderr()
    want = random_file(www / "small.bin", 4096)
    for i in range(20):
        out = tmp_path / f"got{i}.bin"
        proc = curl(daemon.ns, "-o", str(out), "-w", "%{http_code}", f"{HTTP_URL}/small.bin", timeout=60)
        assert proc.stdout == "200" and sha256_file(out) == want, proc.stdout
    time.sleep(0.5)
    before = cpu_seconds(daemon.pid)
    time.sleep(2.0)
    spent = cpu_seconds(daemon.pid) - before
    assert spent < 0.5, f"an idle daemon used {spent:.2f} s of CPU in 2 s"


def test_busy_poll_0_always_sleeps_and_says_nothing(start_stack: Callable[..., lab.Daemon]) -> None:
    daemon = start_stack("--busy-poll", "0")
    assert "busy-poll" not in daemon.stderr(), daemon.stderr()
    result = lab.ping(daemon.ns, lab.STACK_IP, count=5, interval=0.01)
    assert result["received"] == 5, result["output"]
