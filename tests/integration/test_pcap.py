"""``--pcap`` writes a capture that tcpdump, an independent reader, can parse."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration


def test_tcpdump_reads_the_echo_exchange(start_stack: Callable[..., lab.Daemon], tmp_path: Path) -> None:
    pcap = tmp_path / "capture.pcap"
    daemon = start_stack("--pcap", str(pcap))
    result = lab.ping(daemon.ns, lab.STACK_IP, count=3, interval=0.2)
    assert result["received"] == 3, result["output"]
    counters = daemon.stop()
    assert daemon.returncode == 0, daemon.stderr()

    proc = daemon.ns.run(["tcpdump", "-nn", "-r", str(pcap)], timeout=20)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    requests = [ln for ln in lines if re.search(rf"IP {lab.HOST_IP} > {lab.STACK_IP}: ICMP echo request", ln)]
    replies = [ln for ln in lines if re.search(rf"IP {lab.STACK_IP} > {lab.HOST_IP}: ICMP echo reply", ln)]
    assert len(requests) >= 3 and len(replies) >= 3, proc.stdout
    # Every frame pystack read or wrote is in the file, no more and no fewer.
    assert len(lines) == counters["frames_in"] + counters["frames_out"], (proc.stdout, counters)
    assert any(f"ARP, Reply {lab.STACK_IP} is-at" in ln for ln in lines), proc.stdout
