"""Where pystack's time goes per segment: py-spy samples of the daemon during a bulk download and upload.

For each mode (TAP offload on, as ``pystack run`` starts, and ``--no-offload``) and each direction, a fresh
single-namespace lab runs ``pystack run --http DIR``; ``py-spy record --format raw`` samples the daemon while
the kernel's curl moves a random file ``--runs`` times (GET, then ``POST /sha256``). The raw output is folded stacks with a
count each; the innermost frame of a stack is where the sample was taken, so summing counts by innermost
function gives self time, and by every function on the stack (once per stack) total time. Prints the top
functions by self time per run, and writes the raw files and a JSON summary next to ``--out``.

Needs py-spy (``.venv/bin/pip install py-spy``); not part of ``make bench``: sampling slows the daemon.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import bench_tcp

from pystack_lab import lab

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def frame_name(frame: str, with_line: bool = False) -> str:
    """``func (path/to/file.py:123)`` -> ``dir/file.py:func`` (one row per function), or ``...:func:123``."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    short = "/".join(Path(path).parts[-2:]) if "pystack" in path else Path(path).name
    line = f":{m.group('line')}" if with_line and m.group("line") else ""
    return f"{short}:{m.group('func')}{line}"


def fold(raw: str) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    """Self samples per function and per line, and total samples per function, from py-spy's raw (collapsed
    stack) output; and the number of samples."""
    self_time: Counter[str] = Counter()
    self_lines: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        raw_frames = stack.split(";")[1:]  # the first entry names the thread
        if not raw_frames:
            continue
        frames = [frame_name(f) for f in raw_frames]
        samples += n
        self_time[frames[-1]] += n
        self_lines[frame_name(raw_frames[-1], with_line=True)] += n
        for name in set(frames):
            total[name] += n
    return self_time, self_lines, total, samples


def profile(files: bench_tcp.Files, offload: bool, direction: str, out: Path, rate: int,
            runs: int) -> dict[str, Any]:
    flags = () if offload else ("--no-offload",)
    raw_path = out / f"pyspy-{direction}-{'offload' if offload else 'plain'}.txt"
    with lab.namespace() as ns, lab.pystack_daemon(ns, "--http", f"{files.root}:80", *flags) as daemon:
        target = bench_tcp.Target(ns, lab.STACK_IP, daemon.pid)
        lab.ping(ns, lab.STACK_IP, count=3, interval=0.05)
        bench_tcp.answers(target, files)
        spy = subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record",
                                "--pid", str(daemon.pid), "--format", "raw", "--rate", str(rate),
                                "--nonblocking", "--output", str(raw_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # py-spy attached before the transfer starts
        started = time.monotonic()
        if direction == "download":
            result = bench_tcp.download(target, files, runs, 120, 300)
        else:
            result = bench_tcp.upload(target, files, runs, 120, 300)
        wall = time.monotonic() - started
        spy.send_signal(signal.SIGINT)  # as Ctrl-C: py-spy writes what it sampled and exits (SIGTERM would not)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            lab.stop_process(spy)
        if not raw_path.exists():
            assert spy.stderr is not None
            raise RuntimeError(f"py-spy wrote nothing: {spy.stderr.read().strip()[-300:]}")
    raw = raw_path.read_text() if raw_path.exists() else ""
    self_time, self_lines, total, samples = fold(raw)
    return {"direction": direction, "offload": offload, "mb_per_s_under_py_spy": result["mb_per_s"],
            "wall_seconds": round(wall, 1), "samples": samples, "raw": str(raw_path),
            "self": self_time.most_common(40), "self_lines": self_lines.most_common(40),
            "total": total.most_common(40)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--runs", type=int, default=3, help="transfers per direction and mode (more samples)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("/tmp/pystack-profile"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    with bench_tcp.bench_files(args.mib) as files:
        for offload in (True, False):
            for direction in ("download", "upload"):
                print(f"profiling {direction}, offload {'on' if offload else 'off'} ...", flush=True)
                try:
                    runs.append(profile(files, offload, direction, args.out, args.rate, args.runs))
                except Exception as exc:
                    runs.append({"direction": direction, "offload": offload, "error": f"{type(exc).__name__}: {exc}"})
                    print(f"  failed: {runs[-1]['error']}", file=sys.stderr)
    (args.out / "summary.json").write_text(json.dumps(runs, indent=1) + "\n")
    for run in runs:
        if "error" in run:
            continue
        print(f"\n{run['direction']}, offload {'on' if run['offload'] else 'off'}: {run['samples']} samples, "
              f"{run['mb_per_s_under_py_spy']} MB/s under py-spy")
        totals = dict(run["total"])
        print(f"  {'self %':>7} {'total %':>8}  function")
        for name, n in run["self"][:args.top]:
            print(f"  {100 * n / run['samples']:7.1f} {100 * totals.get(name, 0) / run['samples']:8.1f}  {name}")
        print("  top lines by self time: " + ", ".join(f"{name} {100 * n / run['samples']:.1f}%"
                                                       for name, n in run["self_lines"][:5]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
