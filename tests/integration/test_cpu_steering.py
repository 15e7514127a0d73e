"""``pystack run --cpu N``: pinned to CPU N, the TAP's receive work steered (RPS) to the others, and TCP
still moves every byte (plain frames, where the steering matters most)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, curl, random_file, sha256_file

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")]


def test_cpu_flag_pins_steers_and_serves(start_stack: Callable[..., lab.Daemon], www: Path, tmp_path: Path) -> None:
    daemon = start_stack("--no-offload", "--cpu", "0", "--http", str(www))
    assert "cpu 0 (kernel work on 1" in daemon.stderr(), daemon.stderr()
    assert os.sched_getaffinity(daemon.pid) == {0}
    mask = daemon.ns.run(["cat", f"/sys/class/net/{lab.TAP}/queues/rx-0/rps_cpus"], check=True).stdout
    assert int(mask.strip().replace(",", ""), 16) == sum(1 << c for c in os.sched_getaffinity(0) - {0}), mask
    want = random_file(www / "file.bin", 20 * MiB)
    out = tmp_path / "got.bin"
    proc = curl(daemon.ns, "-o", str(out), "-w", "%{http_code}", f"{HTTP_URL}/file.bin", timeout=120)
    assert proc.stdout == "200" and sha256_file(out) == want, proc.stdout


def test_cpu_out_of_range_is_one_line(daemon_ready: None, ns: lab.Namespace) -> None:
    proc = ns.run([*lab.pystack_command(), "run", "--tap", lab.TAP, "--address", lab.STACK_ADDRESS,
                   "--cpu", "4096"])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--cpu" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
