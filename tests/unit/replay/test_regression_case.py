"""A recording of real traffic as a regression case: a 96 KiB download the kernel's curl took from the daemon
through 8 % nftables loss each way, with two pings first (made by scripts/make_replay_case.py, which keeps a
run that needed both fast retransmissions and timeouts). Replayed, pystack must still send every frame it
sent then. A change meant to alter what pystack sends fails this test: make the recording again."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import dpkt
import dpkt.pcapng
import pytest

from pystack.replay.replay import replay

CASE = Path(__file__).parent / "data" / "lossy_download.rec.gz"


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast-paths", "layered"])
def test_the_recorded_lossy_download_replays_identical(fast_paths: bool) -> None:
    with gzip.open(CASE) as fh:
        result = replay(fh, stack={"fast_paths": fast_paths})
    assert result.identical, result.summary()
    assert not result.cut_short and not result.unknown_settings
    counters = result.stack.counters
    # What the recording was chosen for happened again: both ways of loss recovery, and ping's answers.
    assert counters["tcp.fast_retransmits"] > 0 and counters["tcp.timeouts"] > 0
    assert counters["icmp.echo_replies_sent"] == 2
    assert result.frames > 96 * 1024 // 1448  # every data segment at least


def test_a_changed_retransmission_rule_shows_in_the_regression_case() -> None:
    with gzip.open(CASE) as fh:
        result = replay(fh, tcp={"dupack_threshold": 4})
    assert result.divergence is not None
    assert "192.0.2.2.80 > 192.0.2.1." in result.summary()


def test_a_replay_traces_what_the_recorded_run_did(tmp_path: Path) -> None:
    trace = tmp_path / "replayed.jsonl"
    with gzip.open(CASE) as fh:
        result = replay(fh, trace=str(trace))
    assert result.identical
    events = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
    recoveries = [e for e in events if e["name"] == "tcp:congestion" and e["data"]["event"] == "recovery"]
    assert len(recoveries) == result.stack.counters["tcp.fast_retransmits"]
    assert len([e for e in events if e["name"] == "tcp:rto"]) == result.stack.counters["tcp.timeouts"]
    assert all(e["time"] >= 0 for e in events)


def test_a_replay_writes_the_capture_the_run_did_not(tmp_path: Path) -> None:
    """--pcap of a replay: every frame in and out at its recorded time, each sent one with its reason."""
    capture = tmp_path / "replayed.pcapng"
    with gzip.open(CASE) as fh:
        result = replay(fh, pcap=str(capture))
    assert result.identical
    with open(capture, "rb") as fh:
        packets = list(dpkt.pcapng.Reader(fh))
    assert len(packets) > result.frames  # what came in, and what went out
    times = [ts for ts, _buf in packets]
    assert times == sorted(times) and times[-1] - times[0] > 0.1
    comments = _comments(capture)
    sent = [c for c in comments if c is not None]
    assert len(sent) == result.frames  # the replay sent what the run sent, each with its reason
    retransmissions = [c for c in sent if "retransmission" in c]
    assert len(retransmissions) == result.stack.counters["tcp.retransmits"] > 0


def _comments(path: Path) -> list[str | None]:
    """The comment of each Enhanced Packet Block (None without one), read with dpkt."""
    data = path.read_bytes()
    out: list[str | None] = []
    offset = 0
    while offset < len(data):
        block_type, total = struct.unpack_from("<II", data, offset)
        if block_type == dpkt.pcapng.PCAPNG_BT_EPB:
            block = dpkt.pcapng.EnhancedPacketBlockLE(data[offset:offset + total])
            texts = [o.data.decode() for o in block.opts if o.code == dpkt.pcapng.PCAPNG_OPT_COMMENT]
            out.append(texts[0] if texts else None)
        offset += total
    return out
