"""``python -m pystack.conformance``: one verdict per script, the counts last, exit status 0 when it ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from pystack.conformance.__main__ import main
from pystack.conformance.runner import CORPUS_ENV

PASSING = """
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
"""


def test_every_script_gets_a_line_and_the_counts_come_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pass.pkt").write_text(PASSING)
    (tmp_path / "a" / "fail.pkt").write_text(PASSING.replace("<...>", "<mss 9>"))
    (tmp_path / "skip.pkt").write_text(PASSING + "   +0 epoll_create(1) = 5\n")
    (tmp_path / "garbled.pkt").write_text("   +0 socket(..., \n")
    (tmp_path / "notes.txt").write_text("not a script")
    assert main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split(":")[0] for line in lines[:-1]) == [
        "FAIL a/fail.pkt", "PASS a/pass.pkt", "SKIP garbled.pkt", "SKIP skip.pkt"]
    assert "runner cannot read it: line 1: unbalanced parentheses" in "\n".join(lines)
    assert lines[-1] == "1 passed, 1 failed, 2 skipped"


def test_a_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_without_a_corpus_it_says_so_and_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv(CORPUS_ENV, str(tmp_path / "absent"))
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("no packetdrill corpus at ")
