"""The daemon's life cycle: ready line, signals, counters out, persistent TAP devices."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_with_status_zero_and_counters(start_stack: Callable[..., lab.Daemon],
                                                    signum: signal.Signals) -> None:
    daemon = start_stack()
    result = lab.ping(daemon.ns, lab.STACK_IP, count=2, interval=0.1)
    assert result["received"] == 2, result["output"]
    os.kill(daemon.pid, signum)
    assert daemon.proc.wait(10) == 0, daemon.stderr()
    counters = daemon.stop()  # already exited: only collects the stats file
    assert daemon.returncode == 0
    raw = json.loads(daemon.stats_path.read_text())
    assert raw == counters and all(isinstance(v, int) for v in raw.values()), raw
    assert counters["frames_in"] >= 3 and counters["frames_out"] >= 3, counters  # ARP + 2 echo each way
    assert "frames_in" in daemon.stderr() and "Traceback" not in daemon.stderr(), daemon.stderr()


def test_attaches_to_a_persistent_tap_again_and_again(daemon_ready: None, ns: lab.Namespace) -> None:
    """A TAP made beforehand (as `ip tuntap add` would) is reused; it outlives each run and serves the next."""
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tap")
    index = ns.index(lab.TAP)
    for run in range(2):
        with lab.pystack_daemon(ns) as daemon:
            result = lab.ping(ns, lab.STACK_IP, count=2, interval=0.1)
            assert result["received"] == 2, f"run {run}: {result['output']}\n{daemon.stderr()}"
        assert daemon.returncode == 0, daemon.stderr()
        assert ns.index(lab.TAP) == index, "the persistent TAP was replaced or removed"


def test_ready_line_at_every_log_level(daemon_ready: None, ns: lab.Namespace) -> None:
    with lab.pystack_daemon(ns, "--log-level", "warning", ready_timeout=5) as daemon:
        assert lab.ping(ns, lab.STACK_IP, count=1)["received"] == 1, daemon.stderr()
