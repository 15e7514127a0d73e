"""The TCP rows of ``make bench``: curl and a Python HTTP client against pystack and against the kernel.

Two targets, each in throwaway namespaces (docs/lab.md), with the same client commands for both:
  pystack  ``pystack run --http DIR --echo --discard`` on its TAP; the kernel's curl in the same namespace;
  kernel   scripts/bench_kernel_server.py (``python3 -m http.server`` plus ``POST /sha256``) in one namespace,
           curl in another, over a veth pair.
Two more, ``pystack6`` and ``kernel6``, are the same over IPv6 (2001:db8::2, ``curl -6``), for the download and
upload rows only.
Rows: download and upload MB/s of a 200 MiB file (curl; SHA-256 checked), new connections per second for
short GETs of a 1 KiB file (serial and 50 concurrent, scripts/bench_http_client.py run in the client
namespace), and pystack's CPU time per MB moved (utime+stime of the daemon from /proc/PID/stat around the
transfers); pystack's download again while it writes a pcapng capture (--pcap) and a recording (--record). Every row is bounded in time and fails on its own: ``{"error": why}`` instead of figures.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pystack_lab import bench_lab, lab


SCRIPTS = Path(__file__).resolve().parent
PORT = 80
BIG = "big.bin"
SMALL = "small.bin"
MB = 1_000_000  # curl's speed_* are bytes/s; MB/s here are decimal megabytes, like curl's own meter
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Files:
    """What the servers serve: a big random file (download and upload body) and a 1 KiB one."""

    root: Path
    big_size: int
    big_sha256: str
    small_sha256: str

    @property
    def big(self) -> Path:
        return self.root / BIG


@contextlib.contextmanager
def bench_files(big_mib: int) -> Iterator[Files]:
    """Random content (so no layer can compress it), in RAM (tmpfs) when there is one; removed afterwards."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(tempfile.mkdtemp(prefix="pystack-bench-", dir=base))
    try:
        hasher = hashlib.sha256()
        with open(root / BIG, "wb") as fh:
            for _ in range(big_mib):
                chunk = os.urandom(1 << 20)
                hasher.update(chunk)
                fh.write(chunk)
        small = os.urandom(1024)
        (root / SMALL).write_bytes(small)
        os.chmod(root, 0o755)
        yield Files(root, big_mib << 20, hasher.hexdigest(), hashlib.sha256(small).hexdigest())
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Target:
    """A server ready at ``ip:PORT``, and the namespace where the clients run."""

    client: lab.Namespace
    ip: str
    pid: int | None = None
    """The pystack daemon's PID (its CPU time is read); None for the kernel."""
    info: dict[str, Any] = field(default_factory=dict)


def congestion_control(ns: lab.Namespace) -> str:
    return ns.read_proc("/proc/sys/net/ipv4/tcp_congestion_control")


@contextlib.contextmanager
def pystack_target(files: Files, offload: bool = True, cpu: int | None = None,
                   busy_poll: int | None = None, capture: str | None = None, ipv6: bool = False) -> Iterator[Target]:
    """``capture``: a key of CAPTURES, the daemon writing that file (next to the served files, in RAM when
    they are; removed with the lab). ``ipv6``: served and reached at 2001:db8::2."""
    flags = ((() if offload else ("--no-offload",)) + (() if cpu is None else ("--cpu", str(cpu)))
             + (() if busy_poll is None else ("--busy-poll", str(busy_poll)))
             + (bench_lab.PYSTACK6_FLAGS if ipv6 else ()))
    with contextlib.ExitStack() as stack:
        written: Path | None = None
        if capture is not None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="pystack-capture-", dir=files.root.parent))
            flag, name = CAPTURES[capture]
            written = Path(tmp) / name
            flags += (flag, str(written))
        ns = stack.enter_context(lab.namespace())
        daemon = stack.enter_context(lab.pystack_daemon(ns, "--http", f"{files.root}:{PORT}", "--echo",
                                                        "--discard", *flags, quiet_ipv6=not ipv6))
        if ipv6:
            bench_lab.wait_ipv6(daemon)
        target = Target(ns, bench_lab.address(ipv6), daemon.pid,
                        {"tcp_congestion_control": {"client (kernel curl)": congestion_control(ns)},
                         "ready_line": next((x for x in daemon.lines if "ready" in x), None)})
        yield target
        target.info["tap_kernel_side"] = {k: v for k, v in ns.link_stats(lab.TAP).items()
                                          if k in ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped")}
        counters = daemon.stop()
        target.info["counters"] = bench_lab.counters_of(counters, "tcp")
        if written is not None:
            target.info["capture_bytes"] = written.stat().st_size if written.exists() else None


@contextlib.contextmanager
def kernel_target(files: Files, offload: bool = True, ipv6: bool = False) -> Iterator[Target]:
    """With ``offload`` False the veth pair carries plain frames: TSO/GSO, GRO and checksum offload off on both
    ends (bench_lab.kernel_pair), so the kernel cuts and acknowledges MTU-sized segments itself. ``ipv6``:
    served and reached at 2001:db8::2."""
    with bench_lab.kernel_pair(offload, ipv6) as pair:
        near, far = pair.near, pair.far
        server_ip = bench_lab.address(ipv6)
        proc = far.spawn([sys.executable, str(SCRIPTS / "bench_kernel_server.py"), "--bind", server_ip,
                          "--port", str(PORT), "--directory", str(files.root)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 15)
        line = proc.stderr.readline() if ready else ""
        if "ready" not in line:
            raise lab.LabError(f"kernel HTTP server did not start: {line.strip() or 'no ready line in 15 s'}")
        yield Target(near, server_ip, None, {"tcp_congestion_control": {
            "client (curl)": congestion_control(near), "server": congestion_control(far)}, **pair.info})


TARGETS: dict[str, Callable[..., contextlib.AbstractContextManager[Target]]] = {
    "kernel": kernel_target,
    "pystack": pystack_target,
    "kernel6": functools.partial(kernel_target, ipv6=True),
    "pystack6": functools.partial(pystack_target, ipv6=True),
}
IPV6_TARGETS = ("kernel6", "pystack6")
"""Over IPv6: the transfer rows only (offload on, and plain frames), beside the IPv4 ones."""


# --- measurements ---


class Failed(Exception):
    """A row could not be measured; the message is the why printed in the table."""


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of every thread of ``pid`` so far (proc(5), fields 14 and 15)."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def curl(target: Target, args: list[str], max_time: float) -> tuple[str, list[str]]:
    """Run curl in the client namespace; return its body output and the fields of its last ``-w`` line."""
    argv = ["curl", "-sS", "--connect-timeout", "10", "--max-time", str(max_time),
            *(("-6", "-g") if ":" in target.ip else ()), *args]  # -g: the brackets of an IPv6 URL are no glob
    try:
        proc = target.client.run(argv, timeout=max_time + 15)
    except subprocess.TimeoutExpired:
        raise Failed(f"curl did not finish in {max_time + 15:.0f} s") from None
    if proc.returncode != 0:
        raise Failed(f"curl exit {proc.returncode}: {proc.stderr.strip()[:120]}")
    body, _, last = proc.stdout.rpartition("\n")
    return body, last.split()


def url(target: Target, path: str) -> str:
    host = f"[{target.ip}]" if ":" in target.ip else target.ip
    return f"http://{host}:{PORT}{path}"


def answers(target: Target, files: Files) -> None:
    """One short GET first: a server that does not answer fails every row in seconds, not in minutes."""
    try:
        _, w = curl(target, ["-o", "/dev/null", "-w", "\n%{http_code}", url(target, f"/{SMALL}")], 10)
    except Failed as exc:
        raise Failed(f"no HTTP answer: {exc}") from None
    if w != ["200"]:
        raise Failed(f"GET /{SMALL} answered {w}")


def _transfer_runs(target: Target, runs: int, budget: float,
                   once: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Repeat one timed transfer up to ``runs`` times (fewer once ``budget`` seconds are spent): median MB/s,
    and pystack's CPU seconds per MB over all of them."""
    started = time.monotonic()
    done: list[dict[str, Any]] = []
    cpu_before = cpu_seconds(target.pid)
    while len(done) < runs and (not done or time.monotonic() - started < budget):
        done.append(once())
    cpu = None if cpu_before is None else cpu_seconds(target.pid) - cpu_before  # type: ignore[operator]
    moved = sum(r["bytes"] for r in done)
    wall = sum(r["seconds"] for r in done)
    result: dict[str, Any] = {
        "mb_per_s": round(statistics.median(r["mb_per_s"] for r in done), 2),
        "bytes_timed": moved,
        "runs": done,
    }
    if cpu is not None:
        result["cpu_seconds"] = round(cpu, 2)
        result["cpu_ms_per_mb"] = round(1000 * cpu / (moved / MB), 2)
        result["cpu_busy_pct"] = round(100 * cpu / wall, 1) if wall else None
    return result


def download(target: Target, files: Files, runs: int, max_time: float, budget: float) -> dict[str, Any]:
    """curl GET of the big file: one untimed run whose SHA-256 is checked, then timed runs to /dev/null."""
    with tempfile.TemporaryDirectory(prefix="pystack-dl-", dir=files.root.parent) as tmp:
        copy = Path(tmp) / "copy"
        _, w = curl(target, ["-o", str(copy), "-w", "\n%{http_code}", url(target, f"/{BIG}")], max_time)
        if w != ["200"]:
            raise Failed(f"check download answered {w}")
        hasher = hashlib.sha256()
        with open(copy, "rb") as fh:
            while chunk := fh.read(1 << 20):
                hasher.update(chunk)
        if hasher.hexdigest() != files.big_sha256:
            raise Failed(f"downloaded {copy.stat().st_size} bytes with the wrong SHA-256")

    def once() -> dict[str, Any]:
        _, w = curl(target, ["-o", "/dev/null", "-w", "\n%{http_code} %{size_download} %{speed_download} "
                             "%{time_total}", url(target, f"/{BIG}")], max_time)
        if len(w) != 4 or w[0] != "200" or int(w[1]) != files.big_size:
            raise Failed(f"timed download answered {w}")
        return {"bytes": int(w[1]), "mb_per_s": round(float(w[2]) / MB, 2), "seconds": float(w[3])}

    result = _transfer_runs(target, runs, budget, once)
    result["sha256_checked"] = True
    return result


def upload(target: Target, files: Files, runs: int, max_time: float, budget: float) -> dict[str, Any]:
    """curl POST of the big file to /sha256; every answer must be the file's SHA-256."""

    def once() -> dict[str, Any]:
        body, w = curl(target, ["--data-binary", f"@{files.big}", "-H", "Content-Type: application/octet-stream",
                                "-w", "\n%{http_code} %{size_upload} %{speed_upload} %{time_total}",
                                url(target, "/sha256")], max_time)
        if len(w) != 4 or w[0] != "200" or int(w[1]) != files.big_size:
            raise Failed(f"upload answered {w}")
        if body.strip() != files.big_sha256:
            raise Failed(f"upload answered SHA-256 {body.strip()[:16]}..., not the file's")
        return {"bytes": int(w[1]), "mb_per_s": round(float(w[2]) / MB, 2), "seconds": float(w[3])}

    result = _transfer_runs(target, runs, budget, once)
    result["sha256_checked"] = True
    return result


def connections(target: Target, files: Files, requests: int, concurrency: int, rounds: int,
                deadline: float) -> dict[str, Any]:
    """scripts/bench_http_client.py in the client namespace, ``rounds`` times: the median round's new
    connections per second for short GETs, and pystack's CPU milliseconds per request over all rounds."""
    argv = [sys.executable, str(SCRIPTS / "bench_http_client.py"), "--host", target.ip, "--port", str(PORT),
            "--path", f"/{SMALL}", "--sha256", files.small_sha256, "--requests", str(requests),
            "--concurrency", str(concurrency), "--timeout", "10", "--deadline", str(deadline)]
    done: list[dict[str, Any]] = []
    cpu_before = cpu_seconds(target.pid)
    for _ in range(rounds):
        try:
            proc = target.client.run(argv, timeout=deadline + 60)
        except subprocess.TimeoutExpired:
            raise Failed(f"the HTTP client did not finish in {deadline + 60:.0f} s") from None
        if proc.returncode != 0:
            raise Failed(f"HTTP client exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        if not got["ok"]:
            raise Failed(f"no request succeeded: {got['errors']}")
        done.append(got)
        if got["stopped_at_deadline"]:
            break  # one slow round is enough to know; the bench stays bounded
    result: dict[str, Any] = {
        "per_second": statistics.median(r["per_second"] for r in done),
        "requests": requests, "concurrency": concurrency, "rounds": done,
    }
    failed = sum(sum(r["errors"].values()) for r in done)
    if failed or any(r["stopped_at_deadline"] for r in done):
        result["note"] = (f"{failed} requests failed"
                          f"{', stopped at the deadline' if done[-1]['stopped_at_deadline'] else ''}")
    if cpu_before is not None:
        cpu = cpu_seconds(target.pid) - cpu_before  # type: ignore[operator]
        result["cpu_seconds"] = round(cpu, 2)
        result["cpu_ms_per_request"] = round(1000 * cpu / sum(r["ok"] + r["warm_up"] for r in done), 3)
    return result


@dataclass
class Plan:
    """How much of each row to measure (defaults: the brief of ``make bench``)."""

    runs: int = 3
    transfer_max_time: float = 60.0
    transfer_budget: float = 25.0
    serial: int = 500
    concurrent: int = 2000
    concurrency: int = 50
    conn_rounds: int = 3
    conn_deadline: float = 30.0


ROWS = ("download", "upload", "conn_serial", "conn_concurrent", "download_plain", "upload_plain",
        "download_plain_cpu", "upload_plain_cpu", "conn_serial_busy", "download_pcap", "download_record")
PLAIN_ROWS = ("download_plain", "upload_plain")
"""Measured in a lab of their own with offloads off: pystack --no-offload, the veth pair without TSO/GSO/GRO."""
PINNED_ROWS = ("download_plain_cpu", "upload_plain_cpu")
"""pystack only, plain frames again in a third lab with ``--cpu 0``: pystack on CPU 0, the kernel's processing
of the frames it writes steered to the other CPUs (RPS). Needs at least 2 CPUs."""
CAPTURES = {"download_pcap": ("--pcap", "run.pcapng"), "download_record": ("--record", "run.rec")}
"""pystack only, offload on as in the ``download`` row beside them: the daemon writing a pcapng capture with
every frame's reason, or a recording for ``pystack replay``, while curl downloads."""
BUSY_POLL_US = 0
"""``--busy-poll`` of the lab that measures ``conn_serial_busy`` (pystack only). The default, auto, polls
while frames follow each other closely (serial clients wait on every answer, so a loop that does not sleep
between the frames of one exchange saves a wake-up each); this row shows the loop that always sleeps."""


def measure(name: str, files: Files, plan: Plan, plain: bool = True, transfers_only: bool = False) -> dict[str, Any]:
    """Every TCP row for one target; a row that fails records its why and the others still run.

    The default rows run in one lab (TAP offload on, as ``pystack run`` starts); with ``plain`` the download
    and upload are measured again in a second lab at plain MTU-sized frames, beside them. ``transfers_only``
    (and the IPv6 targets): those four rows alone.
    """
    transfers_only = transfers_only or name in IPV6_TARGETS
    print(f"[{name}] TCP: building the lab and measuring ...", flush=True)
    row: dict[str, Any] = {"target": name}

    def transfer(kind: Callable[..., dict[str, Any]]) -> Callable[[Target], dict[str, Any]]:
        return lambda t: kind(t, files, plan.runs, plan.transfer_max_time, plan.transfer_budget)

    steps: dict[str, Callable[[Target], dict[str, Any]]] = {
        "download": transfer(download),
        "upload": transfer(upload),
        "conn_serial": lambda t: connections(t, files, plan.serial, 1, plan.conn_rounds,
                                            plan.conn_deadline),
        "conn_concurrent": lambda t: connections(t, files, plan.concurrent, plan.concurrency,
                                                plan.conn_rounds, plan.conn_deadline),
    }
    if transfers_only:
        steps = {k: v for k, v in steps.items() if k in ("download", "upload")}
    try:
        row.update(_in_lab(name, files, True, steps))
        if "error" in row:
            print(f"[{name}] TCP could not be measured: {row['error']}", file=sys.stderr, flush=True)
        internal = row.get("counters", {}).get("drop.internal_error")
        if internal:
            row["note"] = f"pystack counted {internal} internal errors (drop.internal_error)"
    except Exception as exc:
        row["error"] = _why(exc)
        print(f"[{name}] TCP could not be measured: {row['error']}", file=sys.stderr, flush=True)
    if plain:
        print(f"[{name}] TCP, plain frames (offloads off): building the lab and measuring ...", flush=True)
        try:
            got = _in_lab(name, files, False, {"download_plain": transfer(download),
                                                "upload_plain": transfer(upload)})
            row["plain_lab"] = {k: v for k, v in got.items() if k not in PLAIN_ROWS}
            for key in PLAIN_ROWS:
                row[key] = got[key] if key in got else {"error": got.get("error", "not run")}
            internal = got.get("counters", {}).get("drop.internal_error")
            if internal:
                row["note"] = f"pystack counted {internal} internal errors (drop.internal_error), plain frames"
        except Exception as exc:  # the lab itself failed: both plain rows say why
            for key in PLAIN_ROWS:
                row.setdefault(key, {"error": _why(exc)})
            print(f"[{name}] TCP plain frames could not be measured: {_why(exc)}", file=sys.stderr, flush=True)
    if plain and name == "pystack" and not transfers_only and len(os.sched_getaffinity(0)) >= 2:
        print(f"[{name}] TCP, plain frames, --cpu 0: building the lab and measuring ...", flush=True)
        try:
            got = _in_lab(name, files, False, {"download_plain_cpu": transfer(download),
                                                "upload_plain_cpu": transfer(upload)}, cpu=0)
            for key in PINNED_ROWS:
                row[key] = got[key] if key in got else {"error": got.get("error", "not run")}
        except Exception as exc:
            for key in PINNED_ROWS:
                row.setdefault(key, {"error": _why(exc)})
            print(f"[{name}] TCP plain frames --cpu 0 could not be measured: {_why(exc)}", file=sys.stderr, flush=True)
    if plain and name == "pystack" and not transfers_only:
        for key, (flag, _file) in CAPTURES.items():
            print(f"[{name}] TCP download with {flag}: building the lab and measuring ...", flush=True)
            try:
                got = _in_lab(name, files, True, {key: transfer(download)}, capture=key)
                row[key] = got.get(key, {"error": got.get("error", "not run")})
                row[key]["capture_bytes"] = got.get("capture_bytes")
            except Exception as exc:
                row[key] = {"error": _why(exc)}
                print(f"[{name}] TCP download with {flag} could not be measured: {_why(exc)}", file=sys.stderr,
                      flush=True)
    if name == "pystack" and not transfers_only:
        print(f"[{name}] new connections, --busy-poll {BUSY_POLL_US}: building the lab and measuring ...", flush=True)
        try:
            got = _in_lab(name, files, True, {"conn_serial_busy": lambda t: connections(
                t, files, plan.serial, 1, plan.conn_rounds, plan.conn_deadline)}, busy_poll=BUSY_POLL_US)
            row["conn_serial_busy"] = got.get("conn_serial_busy", {"error": got.get("error", "not run")})
        except Exception as exc:
            row["conn_serial_busy"] = {"error": _why(exc)}
            print(f"[{name}] new connections with --busy-poll could not be measured: {_why(exc)}", file=sys.stderr,
                  flush=True)
    return row


def _in_lab(name: str, files: Files, offload: bool,
            steps: dict[str, Callable[[Target], dict[str, Any]]], **flags: Any) -> dict[str, Any]:
    """Build one lab, run ``steps`` in it (each failing on its own), tear it down; the rows and the lab's info.
    ``flags``: pystack_target's options (``cpu``, ``busy_poll``, ``capture``), for pystack only."""
    out: dict[str, Any] = {}
    with TARGETS[name](files, offload, **flags) as target:
        lab.ping(target.client, target.ip, count=3, interval=0.05)  # ARP resolved before anything is timed
        try:
            answers(target, files)
        except Failed as exc:  # every row of this lab fails at once; the lab is still torn down (counters)
            out["error"] = str(exc)
            steps = {}
        for key, step in steps.items():
            started = time.monotonic()
            try:
                out[key] = step(target)
            except Exception as exc:  # a measurement: say why, go on with the next row
                out[key] = {"error": _why(exc)}
                print(f"[{name}] {key} failed: {out[key]['error']}", file=sys.stderr, flush=True)
            out[key]["wall_seconds"] = round(time.monotonic() - started, 1)
            if target.pid is not None and not _alive(target.pid):
                raise Failed(f"the pystack daemon died during {key}")
    out.update(target.info)
    return out


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, Failed) else f"{type(exc).__name__}: {exc}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
