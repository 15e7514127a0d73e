"""``make bench``: how far pystack is from the kernel, and from the least a Python program can do.

Three targets answer the kernel's ping, each in its own throwaway namespace (shared/lab.md):
  pystack  the daemon on its TAP (single-namespace lab shape);
  kernel   the Linux stack itself, over a veth pair between two namespaces (the ceiling);
  floor    scripts/floor.py, a bare Python loop that swaps fields of ARP and echo requests on a TAP.
For each: RTT median and p99 at 56 and 1472 bytes from per-reply times of ``ping -i 0.002``, then a
flood ping (``ping -f``) for packets/s and loss.
Then the TCP rows (scripts/bench_tcp.py), pystack against the kernel over a veth pair with the same client
commands: curl download and upload MB/s of a 200 MiB file (SHA-256 checked), new HTTP connections per
second (serial and 50 concurrent), and pystack's CPU time per MB moved.
Prints one table, a line per figure with pystack / kernel, and writes every figure to bench-results.json.
Each row is bounded in time; one that fails prints "failed: why" and the others go on. A measurement, never
an assertion: the exit status only says whether everything could be measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_tcp  # noqa: E402
import lab  # noqa: E402

SIZES = (56, 1472)
BUSY_SHARE = 0.10
"""Share of the machine's CPU time used by other programs during the bench above which it warns."""


def cpu_seconds_machine_and_ours() -> tuple[float, float]:
    """Busy CPU seconds of the whole machine (user, nice, system in /proc/stat), and of this process and its
    reaped children (the daemons, curl, clients): their difference is other people's work on these cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]]
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    return sum(fields) / os.sysconf("SC_CLK_TCK"), ours


@contextlib.contextmanager
def pystack_target() -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    extra: dict[str, Any] = {}
    with lab.namespace() as ns, lab.pystack_daemon(ns) as daemon:
        yield ns, extra
        extra["counters"] = daemon.stop()


@contextlib.contextmanager
def kernel_target() -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    with lab.namespace() as near, lab.namespace() as far:
        lab.veth(near, "veth0", far, "veth1")
        for ns, ifname, address in ((near, "veth0", lab.HOST_ADDRESS), (far, "veth1", lab.STACK_ADDRESS)):
            ns.disable_ipv6(ifname)
            ns.add_address(ifname, address)
            ns.link_up(ifname)
        yield near, {}


@contextlib.contextmanager
def floor_target() -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    with lab.namespace() as ns:
        proc = ns.spawn([sys.executable, str(lab.REPO / "scripts" / "floor.py"), "--tap", lab.TAP,
                         "--address", lab.STACK_IP], stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until ready or exit; the floor starts in well under a second
        if "ready" not in line:
            raise lab.LabError(f"floor did not start: {line}{proc.stderr.read()}")
        ns.disable_ipv6(lab.TAP)
        ns.add_address(lab.TAP, lab.HOST_ADDRESS)
        ns.link_up(lab.TAP)
        yield ns, {}


TARGETS: dict[str, Callable[[], contextlib.AbstractContextManager[tuple[lab.Namespace, dict[str, Any]]]]] = {
    "kernel": kernel_target,
    "pystack": pystack_target,
    "floor": floor_target,
}


def rtt_stats(ns: lab.Namespace, size: int, count: int) -> dict[str, Any]:
    result = lab.ping(ns, lab.STACK_IP, count=count, size=size, interval=0.002, wait=1,
                      deadline=count * 0.002 + 15)
    rtts = result["rtts"]
    return {
        "size": size, "transmitted": result["transmitted"], "received": result["received"],
        "median_ms": statistics.median(rtts) if rtts else None,
        "p99_ms": lab.percentile(rtts, 99) if rtts else None,
    }


def flood(ns: lab.Namespace, count: int, deadline: int) -> dict[str, Any]:
    started = time.monotonic()
    result = lab.ping(ns, lab.STACK_IP, count=count, size=56, interval=0, wait=1, deadline=deadline,
                      extra=["-f", "-q"])
    wall = time.monotonic() - started
    m = re.search(r"received.*time (\d+)ms", result["output"])
    elapsed = int(m.group(1)) / 1000 if m and int(m.group(1)) > 0 else wall
    sent, received = result["transmitted"], result["received"]
    return {
        "transmitted": sent, "received": received, "seconds": round(elapsed, 3),
        "pps": round(received / elapsed) if elapsed > 0 else None,
        "loss_pct": round(100 * (sent - received) / sent, 2) if sent else None,
    }


def measure(name: str, count: int, flood_count: int, flood_deadline: int) -> dict[str, Any]:
    print(f"[{name}] building the lab and measuring ...", flush=True)
    row: dict[str, Any] = {"target": name}
    try:
        with TARGETS[name]() as (ns, extra):
            lab.ping(ns, lab.STACK_IP, count=3, interval=0.05)  # warm-up: ARP resolved before timing
            row["rtt"] = [rtt_stats(ns, size, count) for size in SIZES]
            row["flood"] = flood(ns, flood_count, flood_deadline)
        row.update(extra)
    except Exception as exc:  # a measurement: report what failed and go on with the other targets
        row["error"] = f"{type(exc).__name__}: {exc}"
        print(f"[{name}] could not be measured: {row['error']}", file=sys.stderr)
    return row


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    r = a / b
    return f"{r:.1f}x" if r >= 1 else f"{r:.3f}x" if r < 0.01 else f"{r:.2f}x"


Cell = tuple[float | None, str | None]
"""A figure, or None with the reason it is missing (None, None: not measured for this target)."""


def _ping_cells(row: dict[str, Any] | None) -> dict[str, Cell]:
    if row is None:
        return {}
    if "error" in row:
        why = [w for w in row["error"].splitlines() if w.strip()][-1].strip()
        return {key: (None, why) for key, *_ in PING_METRICS}
    cells: dict[str, Cell] = {}
    for key, _label, _spec, get in PING_METRICS:
        cells[key] = (get(row), None)
    return cells


def _tcp_cells(row: dict[str, Any] | None) -> dict[str, Cell]:
    if row is None:
        return {}
    cells: dict[str, Cell] = {}
    for key, _label, _spec, step, field in TCP_METRICS:
        part = row if "error" in row else row.get(step, {"error": "not run"})
        if "error" in part:
            cells[key] = (None, part["error"])
        else:
            cells[key] = (part.get(field), None if field in part else "n/a")
    return cells


PING_METRICS: list[tuple[str, str, str, Callable[[dict[str, Any]], float | None]]] = [
    ("rtt56", "ping 56 B RTT median (ms)", ".3f", lambda r: r["rtt"][0]["median_ms"]),
    ("rtt56p99", "ping 56 B RTT p99 (ms)", ".3f", lambda r: r["rtt"][0]["p99_ms"]),
    ("rtt1472", "ping 1472 B RTT median (ms)", ".3f", lambda r: r["rtt"][1]["median_ms"]),
    ("rtt1472p99", "ping 1472 B RTT p99 (ms)", ".3f", lambda r: r["rtt"][1]["p99_ms"]),
    ("flood", "ping -f, 56 B (pkt/s)", "d", lambda r: r["flood"]["pps"]),
    ("floodloss", "ping -f loss (%)", ".2f", lambda r: r["flood"]["loss_pct"]),
]
TCP_METRICS: list[tuple[str, str, str, str, str]] = [
    ("down", "TCP download {mib} MiB (MB/s)", ".1f", "download", "mb_per_s"),
    ("up", "TCP upload {mib} MiB (MB/s)", ".1f", "upload", "mb_per_s"),
    ("serial", "HTTP new conn/s, serial", ".0f", "conn_serial", "per_second"),
    ("concurrent", "HTTP new conn/s, {conc} concurrent", ".0f", "conn_concurrent", "per_second"),
    ("cpudown", "CPU per MB, download (ms)", ".1f", "download", "cpu_ms_per_mb"),
    ("cpuup", "CPU per MB, upload (ms)", ".1f", "upload", "cpu_ms_per_mb"),
]
NO_RATIO = {"floodloss"}


def table(ping_rows: list[dict[str, Any]], tcp_rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """One table: a line per figure, a column per target, and pystack / kernel."""
    names = list(dict.fromkeys([r["target"] for r in ping_rows] + [r["target"] for r in tcp_rows]))
    names = [n for n in ("kernel", "pystack", "floor") if n in names] + \
        [n for n in names if n not in ("kernel", "pystack", "floor")]
    cells = {n: {**_ping_cells(next((r for r in ping_rows if r["target"] == n), None)),
                 **_tcp_cells(next((r for r in tcp_rows if r["target"] == n), None))} for n in names}
    metrics = [(k, label, spec) for k, label, spec, _ in PING_METRICS] + \
        [(k, label.format(**labels), spec) for k, label, spec, *_ in TCP_METRICS]
    head = f"{'':<34}" + "".join(f"{n:>10}" for n in names) + f"{'pystack/kernel':>16}"
    lines = [head, "-" * len(head)]
    for key, label, spec in metrics:
        if not any(key in cells[n] for n in names):
            continue
        line, whys = f"{label:<34}", []
        for n in names:
            if key not in cells[n]:  # not a figure of this target (the floor has no TCP)
                line += f"{'':>10}"
                continue
            value, why = cells[n][key]
            if value is not None:
                line += f"{fmt(value, spec):>10}"
            elif why == "n/a":
                line += f"{'n/a':>10}"
            elif why is not None:
                line += f"{'failed':>10}"
                whys.append(f"{n}: {why.splitlines()[0][:90]}")
            else:
                line += f"{'-':>10}"
        k, p = cells.get("kernel", {}).get(key, (None, None)), cells.get("pystack", {}).get(key, (None, None))
        line += f"{'' if key in NO_RATIO else ratio(p[0], k[0]):>16}"
        if whys:
            line += "   failed: " + "; ".join(whys)
        lines.append(line)
    for row in tcp_rows:
        if row.get("note"):
            lines.append(f"note, {row['target']}: {row['note']}")
    lines.append("pystack/kernel: lower is better for RTT and CPU, higher for pkt/s, MB/s and conn/s. "
                 "MB = 10^6 bytes.")
    return "\n".join(lines)


def source_version() -> dict[str, str | None]:
    """What was measured: the repository's commit (``-dirty`` when uncommitted changes were measured too)
    and where the daemon's interpreter imports pystack from (the checkout, unless PYTHONPATH says otherwise)."""
    found: dict[str, str | None] = {"commit": None, "package": None}
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc = subprocess.run(["git", "-C", str(lab.REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10)
        found["commit"] = proc.stdout.strip() or None
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc = subprocess.run([*lab.pystack_command()[:1], "-c", "import pystack; print(pystack.__file__)"],
                              capture_output=True, text=True, timeout=10)
        found["package"] = str(Path(proc.stdout.strip()).parent) if proc.returncode == 0 else None
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="pings per size for the RTT figures")
    parser.add_argument("--flood-count", type=int, default=10000)
    parser.add_argument("--flood-deadline", type=int, default=30, help="seconds a flood may last at most")
    parser.add_argument("--targets", default="kernel,pystack,floor", help="ping targets ('' for none)")
    parser.add_argument("--tcp-targets", default="kernel,pystack", help="TCP targets ('' for none)")
    parser.add_argument("--tcp-mib", type=int, default=200, help="size of the file downloaded and uploaded")
    parser.add_argument("--tcp-runs", type=int, default=3,
                        help="timed transfers per direction (median; fewer when one takes long)")
    parser.add_argument("--serial", type=int, default=500, help="requests of the serial connection test")
    parser.add_argument("--concurrent", type=int, default=2000, help="requests of the concurrent test")
    parser.add_argument("--concurrency", type=int, default=50, help="client threads of the concurrent test")
    parser.add_argument("--output", type=Path, default=lab.REPO / "bench-results.json")
    args = parser.parse_args()
    reason = lab.missing_prerequisites(("ip", "ping", "curl"))
    if reason:
        print(f"bench: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    load_before = os.getloadavg()
    machine_before, ours_before = cpu_seconds_machine_and_ours()
    rows = [measure(name, args.count, args.flood_count, args.flood_deadline)
            for name in args.targets.split(",") if name]
    plan = bench_tcp.Plan(runs=args.tcp_runs, serial=args.serial, concurrent=args.concurrent,
                          concurrency=args.concurrency)
    tcp_rows: list[dict[str, Any]] = []
    tcp_names = [n for n in args.tcp_targets.split(",") if n]
    if tcp_names:
        print(f"making a {args.tcp_mib} MiB random file ...", flush=True)
        with bench_tcp.bench_files(args.tcp_mib) as files:
            tcp_rows = [bench_tcp.measure(name, files, plan) for name in tcp_names]
    load_after = os.getloadavg()
    machine_after, ours_after = cpu_seconds_machine_and_ours()
    wall = time.monotonic() - started
    others = max(0.0, (machine_after - machine_before) - (ours_after - ours_before))
    others_share = others / (wall * (os.cpu_count() or 1))
    print()
    print(table(rows, tcp_rows, {"mib": str(args.tcp_mib), "conc": str(args.concurrency)}))
    if others_share > BUSY_SHARE:
        print(f"note: other programs used {100 * others_share:.0f}% of this machine's CPU during the bench "
              f"({others:.0f} CPU-s in {wall:.0f} s): the figures are lower and noisier than on a quiet machine")
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in load_after],
                    "other_programs_cpu_seconds": round(others, 1),
                    "other_programs_cpu_share": round(others_share, 3)},
        "source": source_version(),
        "sysctl": {"net.ipv4.tcp_congestion_control": Path("/proc/sys/net/ipv4/tcp_congestion_control")
                   .read_text().strip()},
        "method": {
            "rtt": f"ping -c {args.count} -i 0.002 -s SIZE; median and nearest-rank p99 of per-reply time=",
            "flood": f"ping -f -q -c {args.flood_count} -s 56 -w {args.flood_deadline}; pkt/s = received / "
                     "ping's reported time",
            "tcp_servers": "pystack: pystack run --http DIR --echo --discard on its TAP; kernel: "
                           "scripts/bench_kernel_server.py (http.server, HTTP/1.1, backlog 1024, POST /sha256) "
                           "across a veth pair; clients in the namespace of the kernel side",
            "download": f"curl -o /dev/null -w %{{speed_download}} of a {args.tcp_mib} MiB random file, up to "
                        f"{args.tcp_runs} runs, median; one untimed download first, its SHA-256 checked",
            "upload": f"curl --data-binary @FILE http://IP/sha256 ({args.tcp_mib} MiB), %{{speed_upload}}, up to "
                      f"{args.tcp_runs} runs, median; every answer checked against the file's SHA-256",
            "connections": f"scripts/bench_http_client.py in the client namespace: GET of a 1 KiB file, a new "
                           f"http.client connection each, {args.serial} serial and {args.concurrent} from "
                           f"{args.concurrency} threads, {plan.conn_rounds} rounds each, median round; "
                           "the clock starts after 5 warm-up requests",
            "cpu": "pystack daemon utime+stime from /proc/PID/stat around the timed transfers, ms per MB moved; "
                   "the kernel's CPU is not measured (n/a)",
        },
        "seconds": round(time.monotonic() - started, 1),
        "targets": rows,
        "tcp": tcp_rows,
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.output} ({results['seconds']} s)")
    tcp_failed = any("error" in r or any("error" in r.get(k, {}) for k in bench_tcp.ROWS) for r in tcp_rows)
    return 1 if tcp_failed or any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
