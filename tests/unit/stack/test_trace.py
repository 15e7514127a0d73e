"""``--trace``: TCP's connection events through its context's one hook, written as bounded JSON lines."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pystack.config import StackConfig
from pystack.tcp import events, why
from pystack.tcp.config import TcpConfig
from pystack.trace import TraceError, TraceWriter

from .conftest import A_IP, B_IP, connected, make_pair, transfer


def _lossy_transfer(tmp_path: Path, sack: bool, loss: float = 0.03, buffer_bytes: int = 64 * 1024,
                    sizes: list[int] | None = None):
    """A sends 300 kB to B, losing ``loss`` of A's data segments, then both close; A traced."""
    drops = random.Random(7)

    def fault(sender: int, frame: bytes) -> list[bytes]:
        if sender == 0 and len(frame) > 200 and drops.random() < loss:
            return []
        return [frame]

    a, b, wire = make_pair(StackConfig(tcp=TcpConfig(sack=sack)))
    wire.fault = fault
    path = tmp_path / "a.jsonl"
    writer = TraceWriter(str(path), wire.clock.now, a.counters, buffer_bytes=buffer_bytes)
    writer.attach(a.tcp)
    client, server = connected(a, b, wire)
    data = random.Random(3).randbytes(300_000)
    assert transfer(client, server, wire, data,
                    None if sizes is None else lambda: sizes.append(path.stat().st_size)) == data
    client.close(wire.clock.now)
    server.close(wire.clock.now)
    wire.run(duration=1.0)
    writer.close()
    lines = path.read_text().splitlines()
    return a, json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


@pytest.mark.parametrize("sack", [True, False], ids=["sack", "newreno"])
def test_a_lossy_transfer_traces_its_states_losses_and_congestion_events(tmp_path: Path, sack: bool) -> None:
    a, head, trace = _lossy_transfer(tmp_path, sack)
    assert "JSON lines" in head["format"]
    names = [e["name"] for e in trace]
    assert all(e["conn"].startswith("192.0.2.2:") and e["conn"].endswith("-192.0.2.1:80") for e in trace)
    assert [e["time"] for e in trace] == sorted(e["time"] for e in trace)
    states = [(e["data"]["from"], e["data"]["to"]) for e in trace if e["name"] == "tcp:" + events.STATE]
    assert states[:2] == [("CLOSED", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED")]
    assert states[2] == ("ESTABLISHED", "FIN_WAIT_1") and states[-1][1] == "TIME_WAIT"
    assert all(before[1] == after[0] for before, after in zip(states, states[1:]))  # one chain, none missed
    congestion = [e["data"] for e in trace if e["name"] == "tcp:" + events.CONGESTION]
    recoveries = [c for c in congestion if c["event"] == "recovery"]
    assert len(recoveries) == a.counters["tcp.fast_retransmits"] > 0
    assert len([c for c in congestion if c["event"] == "rto"]) == a.counters.get("tcp.timeouts", 0)
    assert len([e for e in trace if e["name"] == "tcp:" + events.RTO]) == a.counters.get("tcp.timeouts", 0)
    assert all(c["cwnd"] > 0 and c["ssthresh"] > 0 for c in congestion)
    losses = [e["data"] for e in trace if e["name"] == "tcp:" + events.LOSS]
    fast_rules = (why.FAST_DUPACKS, why.FAST_SACK, why.FAST_PROBE)
    assert len([x for x in losses if x["rule"] in fast_rules]) == a.counters["tcp.fast_retransmits"]
    assert all(x["end"] != x["seq"] for x in losses)
    if sack:
        assert any(x["rule"] == why.SACK_HOLE for x in losses) or len(recoveries) == len(losses)
    # A loss found is followed by its recovery event (fast retransmit enters recovery at once).
    first_loss = names.index("tcp:" + events.LOSS)
    assert names[first_loss + 1] == "tcp:" + events.CONGESTION
    windows = [e["data"] for e in trace if e["name"] == "tcp:" + events.WINDOW]
    assert windows and all(w["from"] != w["to"] for w in windows)


def test_the_trace_goes_to_the_file_as_it_grows_not_at_the_end(tmp_path: Path) -> None:
    sizes: list[int] = []
    _a, _head, trace = _lossy_transfer(tmp_path, True, buffer_bytes=512, sizes=sizes)
    assert len(trace) > 20
    assert len(set(sizes) - {0}) >= 2  # flushed while the transfer ran, more than once


def test_an_untraced_stack_has_no_hook(tmp_path: Path) -> None:
    a, _b, _wire = make_pair()
    assert a.tcp.trace is None


def test_a_failed_write_stops_the_trace_and_counts_what_is_lost(tmp_path: Path) -> None:
    a, head, trace = _lossy_transfer(tmp_path, True)
    writer = TraceWriter("/dev/full", 0.0, a.counters, buffer_bytes=1)  # every flush fails: ENOSPC
    before = a.counters.get("drop.trace.events_lost", 0)
    writer.attach(a.tcp)
    client = a.tcp.connect(A_IP, B_IP, 81, 1.0)
    writer.close()
    assert a.counters["drop.trace.events_lost"] > before
    client.abort(2.0)


def test_a_trace_that_cannot_be_opened_says_so_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot write the trace"):
        TraceWriter(str(tmp_path / "no" / "such" / "dir.jsonl"), 0.0)
