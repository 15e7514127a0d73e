"""Faults on the path (issue 6): through the impaired wire, a transfer either completes intact or
fails with a clear error within a bounded time; never a hang, never wrong bytes.

Two cases, both in the relay lab of tcp_lab (pystack's TAP in namespace R, bridged by the impaired
wire to the kernel in namespace P):

- a bad path (20 % loss, 50 ms +- 10 ms delay, 25 % reordering, 1 % duplication, 0.1 % corruption,
  each way, seeded): a curl download and a curl upload of 256 KiB each end within curl's
  ``--max-time``, either with the right SHA-256 or with a curl error that says why;
- a path cut mid-download (the relay stopped): curl fails with its timeout, and pystack gives up
  on the connection with ETIMEDOUT after its retransmissions (RFC 9293 3.8.3, RFC 1122 4.2.3.5 R2).
  The default (15 retransmissions, minutes of backoff, like Linux) is shortened with the daemon's
  own ``--tcp-max-retries 3``; the daemon runs under pystack_lab.observer so that the test
  sees its counters and connections while it runs.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import hostile_lab as hl
from pystack_lab import impaired_wire as iw
from pystack_lab import lab, observer
from tcp_lab import HTTP_URL, random_file, relay_lab, sha256_file

pytestmark = pytest.mark.integration

KiB = 1024
SIZE = 256 * KiB
MAX_TIME = 120
"""curl's --max-time: the bound on each transfer."""
CLEAN_FAILURES = {6: "could not resolve", 7: "could not connect", 18: "partial file", 28: "timed out",
                  52: "empty reply", 55: "send failure", 56: "receive failure (reset)"}
"""curl exit codes that are a clear, expected error on a path this bad (anything else fails the test)."""
SHORT_RETRIES = 3


def run_curl(ns: lab.Namespace, *args: str, max_time: int = MAX_TIME) -> tuple[int, str, str, float]:
    """curl in ``ns`` bounded by ``--max-time``; a curl that outlives it by 30 s is a hang and fails
    the test. Returns (exit status, stdout, stderr, seconds)."""
    argv = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "40", "--max-time", str(max_time), *args]
    t0 = time.monotonic()
    try:
        proc = ns.run(argv, timeout=max_time + 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"curl hung past --max-time {max_time}: {argv}")
    return proc.returncode, proc.stdout, proc.stderr.strip(), time.monotonic() - t0


def judge(what: str, rc: int, stderr: str, seconds: float, intact: bool) -> str:
    """Intact on success, a known clear error otherwise; returns a line for the report."""
    if rc == 0:
        assert intact, f"{what}: curl succeeded with wrong bytes or a wrong answer"
        return f"{what}: intact in {seconds:.1f} s"
    assert rc in CLEAN_FAILURES, f"{what}: curl exit {rc} is not a clean failure: {stderr}"
    assert stderr, f"{what}: curl failed ({rc}) without saying why"
    return f"{what}: failed cleanly in {seconds:.1f} s, curl {rc} ({CLEAN_FAILURES[rc]}): {stderr}"


@pytest.mark.parametrize("seed", [11, 12])
def test_bad_path_transfers_are_intact_or_fail_cleanly(daemon_ready: None, tmp_path: Path, seed: int) -> None:
    """256 KiB down and 256 KiB up through 20 % loss, 50 +- 10 ms delay, 25 % reordering, 1 %
    duplication and 0.1 % corruption each way: each ends within --max-time, intact or with a clear
    curl error; the daemon lives on."""
    bad = iw.Impairment(loss=20, delay=50, jitter=10, reorder=25, duplicate=1, corrupt=0.1)
    www = tmp_path / "www"
    www.mkdir()
    want_down = random_file(www / "down.bin", SIZE)
    up = tmp_path / "up.bin"
    want_up = random_file(up, SIZE)
    got = tmp_path / "got.bin"
    report = []
    with relay_lab("--http", str(www), impairment=bad, seed=seed, workdir=tmp_path) as rl:
        rc, out, err, secs = run_curl(rl.p, "-o", str(got), "-w", "%{http_code} %{size_download}",
                                      f"{HTTP_URL}/down.bin")
        intact = out.split() == ["200", str(SIZE)] and sha256_file(got) == want_down
        report.append(judge("download", rc, err, secs, intact))
        rc, out, err, secs = run_curl(rl.p, "--data-binary", f"@{up}", "-w", "%{http_code}", f"{HTTP_URL}/sha256")
        report.append(judge("upload", rc, err, secs, out == want_up + "\n200"))
        assert rl.daemon.alive(), rl.daemon.stderr()
    counters = rl.daemon.counters or {}
    c = rl.wire.counters()
    print(f"\nbad path, seed {seed}:\n  " + "\n  ".join(report)
          + f"\n  wire dropped {c['a_to_b']['dropped']}/{c['a_to_b']['received']} from pystack, "
          f"{c['b_to_a']['dropped']}/{c['b_to_a']['received']} from the kernel; pystack retransmits "
          f"{counters.get('tcp.retransmits', 0)}, timeouts {counters.get('tcp.timeouts', 0)}")
    for d in ("a_to_b", "b_to_a"):  # the path really was this bad
        assert c[d]["dropped"] > 0 and c[d]["reordered"] > 0, c
    assert counters.get("drop.internal_error", 0) == 0, counters


def observed_command(snapshot: Path) -> list[str]:
    """The daemon run through pystack_lab.observer (snapshots of counters and tables)."""
    return observer.observe_command(snapshot, 0.25)


def test_cut_path_curl_times_out_and_pystack_gives_up(daemon_ready: None, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A rate-limited download is cut mid-way by stopping the relay: curl ends with its timeout
    (exit 28) holding part of the file, and pystack, its retransmissions unanswered, ends the
    connection with ETIMEDOUT (counted) and holds no connection afterwards."""
    www = tmp_path / "www"
    www.mkdir()
    size = 8 * 1024 * KiB
    random_file(www / "big.bin", size)
    got = tmp_path / "got.bin"
    snapshot_path = tmp_path / "snapshot.json"
    monkeypatch.setattr(lab, "pystack_command", lambda: observed_command(snapshot_path))
    with relay_lab("--http", str(www), "--tcp-max-retries", str(SHORT_RETRIES), impairment=iw.Impairment(),
                   seed=5, workdir=tmp_path) as rl:
        observed = hl.Observed(rl.daemon, snapshot_path)
        curl = hl.spawn_curl(rl.p, "-o", str(got), "--limit-rate", "1M", f"{HTTP_URL}/big.bin", timeout=20)
        deadline = time.monotonic() + 15
        while not (got.exists() and got.stat().st_size >= 512 * KiB):
            assert curl.poll() is None and time.monotonic() < deadline, "the download did not get going"
            time.sleep(0.05)
        assert observed.snapshot()["sizes"]["tcp_established"] == 1
        rl.wire.stop()  # the cut: nothing crosses any more, either way
        cut_at = time.monotonic()
        curl_secs = gave_up_secs = None
        deadline = cut_at + 90
        while curl_secs is None or gave_up_secs is None:  # both ends give up, each within a bound
            snap: dict[str, Any] = observed.snapshot()
            if gave_up_secs is None and snap["counters"].get("tcp.error.ETIMEDOUT", 0) \
                    and snap["sizes"]["tcp_connections"] == 0:
                gave_up_secs = time.monotonic() - cut_at
            if curl_secs is None and curl.poll() is not None:
                curl_secs = time.monotonic() - cut_at
            assert time.monotonic() < deadline, \
                f"no give-up within 90 s: curl {curl.poll()}, pystack {snap['counters']} {snap['sizes']}"
            time.sleep(0.1)
        rc, _out, err = hl.finish(curl, timeout=10)
        partial = got.stat().st_size
        assert rc == 28, f"curl exit {rc}: {err}"  # CURLE_OPERATION_TIMEDOUT, a clear error
        assert 512 * KiB <= partial < size
        assert rl.daemon.alive(), rl.daemon.stderr()
    counters = snap["counters"]
    print(f"\ncut path: curl gave up {curl_secs:.1f} s after the cut with {partial} of {size} bytes "
          f"({err.strip()}); pystack ended the connection with ETIMEDOUT {gave_up_secs:.1f} s after "
          f"the cut, after {counters.get('tcp.timeouts', 0)} RTO timeouts (max_retries {SHORT_RETRIES})")
    assert counters["tcp.error.ETIMEDOUT"] == 1, counters
    assert counters.get("tcp.timeouts", 0) > SHORT_RETRIES, counters
    assert counters.get("drop.internal_error", 0) == 0, counters
