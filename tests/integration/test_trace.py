"""``--trace FILE.jsonl`` on a client command: ``pystack fetch`` from the kernel's http.server writes its
connection's course, and a trace that cannot be written is one line. (``pystack run --trace`` through loss is
in test_replay.py, beside the recording of the same run.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pystack.tcp import events
from pystack_lab import lab
from tcp_lab import kernel_http_server

pytestmark = pytest.mark.integration


def test_fetch_traces_its_connection_from_handshake_to_close(tap: lab.Namespace, tmp_path: Path) -> None:
    ns = tap
    (tmp_path / "page").write_bytes(b"hello\n" * 20000)
    kernel_http_server(ns, tmp_path, 8000)
    trace = tmp_path / "fetch.jsonl"
    proc = ns.run([*lab.pystack_command(), "fetch", f"http://{lab.HOST_IP}:8000/page", "--tap", lab.TAP,
                   "--address", lab.STACK_ADDRESS, "--quiet", "-o",
                   str(tmp_path / "got"), "--trace", str(trace)], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "got").read_bytes() == b"hello\n" * 20000
    lines = trace.read_text().splitlines()
    assert "JSON lines" in json.loads(lines[0])["format"]
    trace_events = [json.loads(line) for line in lines[1:]]
    assert {e["conn"].split("-")[1] for e in trace_events} == {f"{lab.HOST_IP}:8000"}
    states = [e["data"]["to"] for e in trace_events if e["name"] == "tcp:" + events.STATE]
    assert states[:2] == ["SYN_SENT", "ESTABLISHED"] and states[-1] in ("TIME_WAIT", "CLOSED"), states
    assert [e["time"] for e in trace_events] == sorted(e["time"] for e in trace_events)


def test_a_trace_that_cannot_be_written_is_one_line(daemon_ready: None, ns: lab.Namespace, tmp_path: Path) -> None:
    proc = ns.run([*lab.pystack_command(), "fetch", f"http://{lab.HOST_IP}/", "--tap", lab.TAP, "--address",
                   lab.STACK_ADDRESS, "--trace", str(tmp_path / "no" / "such" / "dir.jsonl")], timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("pystack: error: cannot write the trace"), proc.stderr
    assert "Traceback" not in proc.stderr
