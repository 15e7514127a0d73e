"""``make bench``: how far pystack is from the kernel, and from the least a Python program can do.

Three targets answer the kernel's ping, each in its own throwaway namespace (shared/lab.md):
  pystack  the daemon on its TAP (single-namespace lab shape);
  kernel   the Linux stack itself, over a veth pair between two namespaces (the ceiling);
  floor    scripts/floor.py, a bare Python loop that swaps fields of ARP and echo requests on a TAP.
For each: RTT median and p99 at 56 and 1472 bytes from per-reply times of ``ping -i 0.002``, then a
flood ping (``ping -f``) for packets/s and loss. Prints one table with ratios to the kernel and writes
bench-results.json. A measurement, never an assertion: the exit status only says whether it could measure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab  # noqa: E402

SIZES = (56, 1472)


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
    return f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"


def table(rows: list[dict[str, Any]]) -> str:
    kernel = next((r for r in rows if r["target"] == "kernel" and "error" not in r), None)
    head = (f"{'target':<8} {'bytes':>5} {'median ms':>10} {'p99 ms':>8} {'vs kernel':>9}   "
            f"{'flood pkt/s':>11} {'loss %':>7} {'vs kernel':>9}")
    lines = [head, "-" * len(head)]
    for row in rows:
        if "error" in row:
            why = [w for w in row["error"].splitlines() if w.strip()]
            lines.append(f"{row['target']:<8} (not measured: {why[-1].strip()[:100]})")
            continue
        for i, r in enumerate(row["rtt"]):
            k = kernel["rtt"][i] if kernel else {}
            line = (f"{row['target'] if i == 0 else '':<8} {r['size']:>5} {fmt(r['median_ms']):>10} "
                    f"{fmt(r['p99_ms']):>8} {ratio(r['median_ms'], k.get('median_ms')):>9}")
            if i == 0:
                fl = row["flood"]
                kf = kernel["flood"] if kernel else {}
                line += (f"   {fmt(fl['pps'], 'd'):>11} {fmt(fl['loss_pct'], '.2f'):>7} "
                         f"{ratio(fl['pps'], kf.get('pps')):>9}")
            lines.append(line)
    lines.append("RTT ratios: target / kernel (higher is slower); flood ratio: target / kernel (lower is slower).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="pings per size for the RTT figures")
    parser.add_argument("--flood-count", type=int, default=10000)
    parser.add_argument("--flood-deadline", type=int, default=30, help="seconds a flood may last at most")
    parser.add_argument("--targets", default="kernel,pystack,floor")
    parser.add_argument("--output", type=Path, default=lab.REPO / "bench-results.json")
    args = parser.parse_args()
    reason = lab.missing_prerequisites(("ip", "ping"))
    if reason:
        print(f"bench: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    rows = [measure(name, args.count, args.flood_count, args.flood_deadline)
            for name in args.targets.split(",")]
    print()
    print(table(rows))
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
        "method": {
            "rtt": f"ping -c {args.count} -i 0.002 -s SIZE; median and nearest-rank p99 of per-reply time=",
            "flood": f"ping -f -q -c {args.flood_count} -s 56 -w {args.flood_deadline}; pkt/s = received / "
                     "ping's reported time",
        },
        "seconds": round(time.monotonic() - started, 1),
        "targets": rows,
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.output} ({results['seconds']} s)")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
