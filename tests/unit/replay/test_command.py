"""``pystack replay FILE`` as a user (or ``git bisect run``) calls it: its line and its exit status."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from pystack.cli import main
from pystack.replay import format as fmt

CASE = Path(__file__).parent / "data" / "lossy_download.rec.gz"


def _case(tmp_path: Path, alter_frame: int | None = None) -> Path:
    """The regression case unpacked, with the ``alter_frame``-th recorded sent frame's last byte changed."""
    reader = fmt.RecordReader(io.BytesIO(gzip.decompress(CASE.read_bytes())))
    out = io.BytesIO()
    writer = fmt.RecordWriter(out, reader.header)
    sent = 0
    while (record := reader.next()) is not None:
        body = bytearray(record.body)
        if record.kind == fmt.FRAME_OUT:
            sent += 1
            if sent == alter_frame:
                body[-1] ^= 0xFF
        writer._put(record.kind, bytes(body))
    writer._put(fmt.END, b"")  # the clean end, as close() writes it (which would close ``out`` too)
    writer.flush()
    path = tmp_path / "case.rec"
    path.write_bytes(out.getvalue())
    return path


def test_an_identical_replay_says_so_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(_case(tmp_path))]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("replayed ") and out.endswith(" frames, identical")


def test_a_divergence_is_shown_decoded_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(_case(tmp_path, alter_frame=30))]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("diverged at frame 30, t=")
    assert lines[1].startswith("  expected: ") and lines[2].startswith("  got:      ")
    assert lines[3].startswith("  first difference at byte ")


def test_what_is_not_a_recording_is_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.rec"
    bogus.write_bytes(b"hello")
    assert main(["replay", str(bogus)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pystack: error: {bogus} is not a pystack recording (pystack run --record)"
