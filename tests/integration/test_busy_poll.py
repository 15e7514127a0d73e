"""``pystack run --busy-poll USEC``: the loop polls instead of sleeping after traffic, and the daemon still
answers everything: ping and HTTP keep-alive and new connections, every byte checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import lab
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
