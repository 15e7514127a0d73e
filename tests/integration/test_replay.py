"""``--record`` and ``pystack replay``: a download curl takes from the daemon through nftables loss, recorded,
runs again on a fake clock with every frame identical (and writes the capture with reasons the run did not);
a TCP rule changed in the replay is caught at the first frame it changes. ``--trace`` of the same run tells
the losses TCP counted."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack.link.pcapng import LATER_PIECE
from pystack.replay.replay import replay
from pystack.tcp import events
from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, curl, nft_drops, nft_loss, random_file, sha256_file

pytestmark = pytest.mark.integration


def test_a_recorded_lossy_download_replays_identical_and_a_changed_rule_diverges(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("nft", "curl", "tshark")
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "f.bin", 2 * MiB)
    recording = tmp_path / "run.rec"
    trace = tmp_path / "run.jsonl"
    daemon = start_stack("--http", str(www), "--echo", "--record", str(recording), "--trace", str(trace))
    pinged = lab.ping(daemon.ns, lab.STACK_IP, count=3, interval=0.2)  # ping's lane is recorded too
    assert pinged["received"] == 3, pinged["output"]
    nft_loss(daemon.ns, lab.TAP, 3)
    got = tmp_path / "got.bin"
    for _attempt in range(4):  # offloaded super-frames are few: download again until the path lost some
        curl(daemon.ns, "-o", str(got), f"{HTTP_URL}/f.bin", timeout=240)
        assert sha256_file(got) == want
        drops = nft_drops(daemon.ns)
        if drops.get("in", 0) > 0:
            break
    counters = daemon.stop()
    assert daemon.returncode == 0, daemon.stderr()
    assert drops.get("in", 0) > 0 and counters.get("tcp.retransmits", 0) > 0, (drops, counters)

    # The command, as a user (or git bisect run) calls it: no root, no namespace; with the capture the run
    # did not write.
    replayed = tmp_path / "replayed.pcapng"
    proc = subprocess.run([*lab.pystack_command(), "replay", str(recording), "--pcap", str(replayed)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frames = int(proc.stdout.split()[1])
    assert proc.stdout.strip() == f"replayed {frames} frames, identical"
    assert frames > 2 * MiB // 65536  # at least the data, in offloaded super-frames of up to 64 KiB
    shark = daemon.ns.run(["tshark", "-n", "-r", str(replayed), "-Y", "frame.comment", "-T", "fields",
                           "-e", "frame.comment"], timeout=120)
    assert shark.returncode == 0, shark.stderr
    first_pieces = [c for c in shark.stdout.splitlines() if not c.endswith(LATER_PIECE)]
    assert len([c for c in first_pieces if "retransmission" in c]) == counters["tcp.retransmits"]

    changed = replay(str(recording), tcp={"initial_window_segments": 2})
    d = changed.divergence
    assert d is not None and 0 < d.frame <= frames
    assert changed.summary().startswith(f"diverged at frame {d.frame}, t=")
    assert "expected: 192.0.2.2.80 > 192.0.2.1." in changed.summary()  # the download is what changed

    lines = trace.read_text().splitlines()
    trace_events = [json.loads(line) for line in lines[1:]]
    recoveries = [e for e in trace_events if e["name"] == "tcp:" + events.CONGESTION and e["data"]["event"] == "recovery"]
    rtos = [e for e in trace_events if e["name"] == "tcp:" + events.RTO]
    assert len(recoveries) == counters.get("tcp.fast_retransmits", 0)
    assert len(rtos) == counters.get("tcp.timeouts", 0)
    assert any(e["name"] == "tcp:" + events.STATE and e["data"]["to"] == "ESTABLISHED" for e in trace_events)
