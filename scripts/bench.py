"""``make bench``: how far pystack is from the kernel, and from the least a Python program can do.

Every row is measured in the same run for each system, each in its own throwaway namespaces (docs/lab.md):
  pystack  the daemon on its TAP (single-namespace lab shape), its servers: echo, discard, HTTP;
  kernel   the Linux stack itself, over a veth pair between two namespaces (the ceiling), with Python servers;
  floor    scripts/floor.py, a bare Python loop that swaps fields of ARP and echo requests on a TAP (ping only);
  pytcp    PyTCP 3.0.9's daemon (ping, and the same program), on a Python 3.14 that scripts/pytcp_python.py makes
           once from Debian sid's packages (or PYTCP_PYTHON names); its rows say "not run: why" when there is none;
  pystack6, kernel6, floor6  pystack, the kernel and the floor again over IPv6 (2001:db8::2): ``ping -6`` (and
           ``curl -6``), their rows printed beside the IPv4 ones with "-6" in the label, and the IPv6/IPv4 ratios
           of pystack and of the floor (what the kernel's own IPv6 path adds over a TAP) in a note.
Rows:
  ping     RTT median and p99 at 56 and 1472 bytes (``ping -i 0.002``, in rounds that take turns between the
           targets), flood ping packets/s and loss;
  TCP      (scripts/bench_tcp.py) curl download and upload MB/s of a 200 MiB file, SHA-256 checked, TAP offload
           on and again at plain MTU 1500 frames with offloads off (pystack also with ``--cpu 0``); pystack's
           download again while it writes ``--pcap FILE.pcapng`` and while it writes ``--record FILE``; new HTTP
           connections per second (serial and 50 concurrent; pystack serial also with ``--busy-poll 0``);
           pystack's CPU seconds per GB moved;
  UDP      (scripts/bench_udp.py) echoed datagrams per second, 1 and 32 in flight;
  idle     (scripts/bench_idle.py) 10,000 idle TCP connections held, and memory per connection;
  wire     (scripts/bench_matrix.py) a 20 MiB download through the impaired wire at 0/1/5% loss and +0/20 ms RTT;
  program  (scripts/bench_same_program.py) scripts/socket_program.py, a client on the stdlib socket API, unmodified
           on the kernel, under ``pystack exec`` and on PyTCP's drop-in: upload, download, connect+close rate and
           request/response latency against the same kernel servers.
Prints one table, a line per figure with pystack / kernel, and writes every figure to bench-results.json.
Each row is bounded in time; one that fails prints "failed: why" and the others go on. ``--quick`` skips the
slow rows (plain frames, the matrix) and measures the rest more briefly; ``--only GROUPS`` runs just those
groups of rows (e.g. ``--only program``); ``--transfers-only`` keeps the TCP rows to the downloads and uploads
(``--only ping,tcp --transfers-only``: the IPv4 and IPv6 rows side by side, in a few minutes). A measurement, never
an assertion:
the exit status only says whether everything could be measured.
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

import bench_idle
import bench_matrix
import bench_pytcp
import bench_same_program
import bench_table
import bench_tcp
import bench_udp

from pystack_lab import bench_lab, lab

SIZES = (56, 1472)
SIZES6 = (56, 1452)
"""IPv6's header is 20 bytes longer than IPv4's: 1452 data bytes fill a 1500-byte packet as 1472 do over IPv4."""
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
    with bench_lab.kernel_pair() as pair:
        yield pair.near, {}


@contextlib.contextmanager
def pystack6_target() -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    extra: dict[str, Any] = {}
    with lab.namespace() as ns, lab.pystack_daemon(ns, *bench_lab.PYSTACK6_FLAGS, quiet_ipv6=False) as daemon:
        bench_lab.wait_ipv6(daemon)
        yield ns, extra
        extra["counters"] = daemon.stop()


@contextlib.contextmanager
def kernel6_target() -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    with bench_lab.kernel_pair(ipv6=True) as pair:
        yield pair.near, {}


@contextlib.contextmanager
def floor_target(ipv6: bool = False) -> Iterator[tuple[lab.Namespace, dict[str, Any]]]:
    """``ipv6``: the floor answers 2001:db8::2 too (neighbour solicitations and echo requests), the kernel side
    of the TAP has 2001:db8::1 without DAD's wait."""
    with lab.namespace() as ns:
        proc = ns.spawn([sys.executable, str(lab.REPO / "scripts" / "floor.py"), "--tap", lab.TAP,
                         "--address", lab.STACK_IP, *(("--address6", lab.STACK_IP6) if ipv6 else ())],
                        stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until ready or exit; the floor starts in well under a second
        if "ready" not in line:
            raise lab.LabError(f"floor did not start: {line}{proc.stderr.read()}")
        if ipv6:
            ns.add_address6(lab.TAP, lab.HOST_ADDRESS6)
        else:
            ns.disable_ipv6(lab.TAP)
        ns.add_address(lab.TAP, lab.HOST_ADDRESS)
        ns.link_up(lab.TAP)
        yield ns, {}


TARGETS: dict[str, Callable[[], contextlib.AbstractContextManager[tuple[lab.Namespace, dict[str, Any]]]]] = {
    "kernel": kernel_target,
    "pystack": pystack_target,
    "floor": floor_target,
    "pytcp": bench_pytcp.pytcp_target,
    "kernel6": kernel6_target,
    "pystack6": pystack6_target,
    "floor6": lambda: floor_target(ipv6=True),
}
IPV6_TARGETS = ("kernel6", "pystack6", "floor6")


def destination(name: str) -> tuple[str, tuple[int, ...]]:
    """Where a target's pings go, and their sizes."""
    return (lab.STACK_IP6, SIZES6) if name in IPV6_TARGETS else (lab.STACK_IP, SIZES)


def rtt_samples(ns: lab.Namespace, size: int, count: int, dst: str = lab.STACK_IP) -> dict[str, Any]:
    """``count`` pings of ``size`` bytes 2 ms apart: the counts and every reply's RTT (ms)."""
    return lab.ping(ns, dst, count=count, size=size, interval=0.002, wait=1,
                    deadline=count * 0.002 + 15)


def rtt_summary(size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and p99 over the replies of every run (rounds of one target pooled)."""
    rtts = [r for run in runs for r in run["rtts"]]
    return {
        "size": size, "transmitted": sum(run["transmitted"] for run in runs),
        "received": sum(run["received"] for run in runs), "rounds": len(runs),
        "round_medians_ms": [statistics.median(run["rtts"]) if run["rtts"] else None for run in runs],
        "median_ms": statistics.median(rtts) if rtts else None,
        "p99_ms": lab.percentile(rtts, 99) if rtts else None,
    }


def flood(ns: lab.Namespace, count: int, deadline: int, dst: str = lab.STACK_IP) -> dict[str, Any]:
    started = time.monotonic()
    result = lab.ping(ns, dst, count=count, size=56, interval=0, wait=1, deadline=deadline,
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


PING_ROUNDS = 8
"""The RTT pings of each target are taken in this many rounds, the targets taking turns (each round in a
fresh lab), so that a slow spell of the machine (its wake-up latency swings by 2x from minute to minute
here) falls on every target alike instead of on whichever was measured then; the replies are pooled.
With 4 rounds one slow round still moved a target's median by 10-20% (the floor's round medians ranged
over 38-54 us within one run); 8 shorter rounds spread the spells more evenly for the same pings."""


WARM_UP_PINGS = 50


def measure_all(names: list[str], count: int, flood_count: int, flood_deadline: int,
                rounds: int = PING_ROUNDS) -> list[dict[str, Any]]:
    """The ping rows of every target: RTTs in ``rounds`` interleaved rounds, the flood once per target."""
    rows: dict[str, dict[str, Any]] = {name: {"target": name} for name in names}
    samples: dict[str, list[list[dict[str, Any]]]] = {name: [[] for _ in SIZES] for name in names}
    sizes = {name: destination(name)[1] for name in names}
    per_round = max(1, count // rounds)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []  # who goes first rotates
        for name in order:
            row = rows[name]
            if "error" in row:
                continue
            print(f"[{name}] ping round {r + 1} of {rounds}: building the lab and measuring ...", flush=True)
            dst = destination(name)[0]
            try:
                with TARGETS[name]() as (ns, extra):
                    # Warm-up, untimed: ARP resolved, and 50 pings at the timed pace so that no target's
                    # first replies (a Python program's code paths run for the first time) are in the figures.
                    lab.ping(ns, dst, count=3, interval=0.05)
                    lab.ping(ns, dst, count=WARM_UP_PINGS, interval=0.002)
                    for i, size in enumerate(sizes[name]):
                        samples[name][i].append(rtt_samples(ns, size, per_round, dst))
                    if r == rounds - 1:
                        row["flood"] = flood(ns, flood_count, flood_deadline, dst)
                row.update(extra)
            except Exception as exc:  # a measurement: report what failed and go on with the other targets
                row["error"] = f"{type(exc).__name__}: {exc}"
                print(f"[{name}] could not be measured: {row['error']}", file=sys.stderr)
    for name, row in rows.items():
        if "error" not in row:
            row["rtt"] = [rtt_summary(size, samples[name][i]) for i, size in enumerate(sizes[name])]
    return [rows[name] for name in names]


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


GROUPS = {"ping": "targets", "tcp": "tcp_targets", "udp": "udp_targets", "idle": "idle_targets",
          "wire": "wire_targets", "program": "program_targets"}
"""The groups of rows ``--only`` names, and the option that lists each group's targets."""


def _skipped(names: list[str], why: str = "skipped") -> list[dict[str, Any]]:
    return [{"target": n, "skipped": why} for n in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="skip the slow rows (plain frames, the loss x delay matrix); fewer pings and runs")
    parser.add_argument("--count", type=int, default=None, help="pings per size for the RTT figures (1000)")
    parser.add_argument("--flood-count", type=int, default=None, help="flood pings (10000)")
    parser.add_argument("--flood-deadline", type=int, default=30, help="seconds a flood may last at most")
    parser.add_argument("--targets", default="kernel,pystack,floor,kernel6,pystack6,floor6",
                        help="ping targets ('' for none); pytcp is added when PYTCP_PYTHON is set")
    parser.add_argument("--tcp-targets", default="kernel,pystack,kernel6,pystack6", help="TCP targets ('' for none)")
    parser.add_argument("--transfers-only", action="store_true",
                        help="TCP: the download and upload rows alone (offload on, and plain frames unless --quick)")
    parser.add_argument("--tcp-mib", type=int, default=200, help="size of the file downloaded and uploaded")
    parser.add_argument("--tcp-runs", type=int, default=None,
                        help="timed transfers per direction (median; fewer when one takes long; 3)")
    parser.add_argument("--serial", type=int, default=500, help="requests of the serial connection test")
    parser.add_argument("--concurrent", type=int, default=2000, help="requests of the concurrent test")
    parser.add_argument("--concurrency", type=int, default=50, help="client threads of the concurrent test")
    parser.add_argument("--udp-targets", default="kernel,pystack", help="UDP echo targets ('' for none)")
    parser.add_argument("--udp-seconds", type=float, default=3.0, help="seconds per UDP echo figure")
    parser.add_argument("--idle-targets", default="kernel,pystack", help="idle-connection targets ('' for none)")
    parser.add_argument("--idle", type=int, default=10_000, help="idle TCP connections to hold")
    parser.add_argument("--wire-targets", default="kernel,cubic,pystack",
                        help="loss x delay matrix targets ('' for none)")
    parser.add_argument("--wire-mib", type=int, default=20, help="size of the matrix's download")
    parser.add_argument("--wire-max-time", type=float, default=15.0, help="seconds per matrix cell at most")
    parser.add_argument("--program-targets", default="kernel,pystack,pytcp",
                        help="targets of the same program ('' for none)")
    parser.add_argument("--program-seconds", type=float, default=None, help="seconds per test of the program (3)")
    parser.add_argument("--only", default=None, help=f"comma-separated groups of rows to run, of {','.join(GROUPS)}")
    parser.add_argument("--output", type=Path, default=lab.REPO / "bench-results.json")
    args = parser.parse_args()
    if args.only is not None:
        only = [g for g in args.only.split(",") if g]
        unknown = sorted(set(only) - set(GROUPS))
        if unknown:
            parser.error(f"--only: unknown group {', '.join(unknown)} (groups: {', '.join(GROUPS)})")
        for group, dest in GROUPS.items():
            if group not in only:
                setattr(args, dest, "")
    program_seconds = args.program_seconds or (2.0 if args.quick else 3.0)
    count = args.count or (300 if args.quick else 1000)
    flood_count = args.flood_count or (3000 if args.quick else 10000)
    tcp_runs = args.tcp_runs or (1 if args.quick else 3)
    reason = lab.missing_prerequisites(("ip", "ping", "curl"))
    if reason:
        print(f"bench: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    load_before = os.getloadavg()
    machine_before, ours_before = cpu_seconds_machine_and_ours()
    names = [n for n in args.targets.split(",") if n]
    program_names = [n for n in args.program_targets.split(",") if n]
    pytcp_python, pytcp_why = bench_pytcp.interpreter() if names or "pytcp" in program_names else (None, None)
    if pytcp_python and "pytcp" not in names and names:
        names.append("pytcp")
    rows = measure_all(names, count, flood_count, args.flood_deadline)

    plan = bench_tcp.Plan(runs=tcp_runs, serial=args.serial, concurrent=args.concurrent,
                          concurrency=args.concurrency)
    tcp_rows: list[dict[str, Any]] = []
    tcp_names = [n for n in args.tcp_targets.split(",") if n]
    if tcp_names:
        print(f"making a {args.tcp_mib} MiB random file ...", flush=True)
        with bench_tcp.bench_files(args.tcp_mib) as files:
            tcp_rows = [bench_tcp.measure(name, files, plan, plain=not args.quick, transfers_only=args.transfers_only)
                        for name in tcp_names]
        if args.quick:
            for row in tcp_rows:
                row.update({k: {"skipped": "--quick"} for k in (*bench_tcp.PLAIN_ROWS, *bench_tcp.PINNED_ROWS,
                                                                *bench_tcp.CAPTURES)})

    udp_rows = [bench_udp.measure(n, seconds=args.udp_seconds) for n in args.udp_targets.split(",") if n]
    idle_rows = [bench_idle.measure(n, count=args.idle) for n in args.idle_targets.split(",") if n]
    wire_names = [n for n in args.wire_targets.split(",") if n]
    wire_rows: list[dict[str, Any]] = []
    if args.quick:
        wire_rows = _skipped(wire_names, "--quick")
    elif wire_names:
        with bench_matrix.wire_file(args.wire_mib) as (root, size):
            wire_rows = [bench_matrix.measure(n, root, size, args.wire_max_time) for n in wire_names]

    program_rows = [bench_same_program.measure(n, program_seconds) for n in program_names]

    load_after = os.getloadavg()
    machine_after, ours_after = cpu_seconds_machine_and_ours()
    wall = time.monotonic() - started
    others = max(0.0, (machine_after - machine_before) - (ours_after - ours_before))
    others_share = others / (wall * (os.cpu_count() or 1))

    rows4, rows6 = bench_table.by_family(rows, IPV6_TARGETS)
    tcp_rows4, tcp_rows6 = bench_table.by_family(tcp_rows, bench_tcp.IPV6_TARGETS)
    lines = bench_table.beside_ipv6(bench_table.ping_lines(rows4), bench_table.ping_lines(rows6))
    lines += bench_table.beside_ipv6(
        bench_table.tcp_lines(tcp_rows4, args.tcp_mib, args.concurrency, bench_tcp.BUSY_POLL_US),
        bench_table.tcp_lines(tcp_rows6, args.tcp_mib, args.concurrency, bench_tcp.BUSY_POLL_US))
    lines += bench_table.udp_lines(udp_rows, bench_udp.WINDOWS, bench_udp.SIZE)
    lines += bench_table.idle_lines(idle_rows, bench_idle.kernel_bytes_per_conn(idle_rows))
    lines += bench_table.matrix_lines([r for r in wire_rows if not r.get("skipped")], args.wire_mib,
                                      bench_matrix.LOSSES, bench_matrix.RTTS, bench_matrix.cell_key)
    lines += bench_table.program_lines(program_rows)
    notes = []
    for row in tcp_rows + idle_rows:
        if row.get("note"):
            notes.append(f"note, {row['target']}: {row['note']}")
    if args.quick:
        notes.append("--quick: plain-frame and capture TCP rows and the loss x delay matrix skipped; 1 run per "
                     "transfer")
    family_ratios = bench_table.ipv6_ratios(lines, "pystack")
    if family_ratios:
        notes.append(f"pystack IPv6/IPv4 (-6 line / its IPv4 line; the aim is within 10%): {family_ratios}")
    floor_ratios = bench_table.ipv6_ratios(lines, "floor")
    if floor_ratios:
        notes.append(f"floor IPv6/IPv4 (the same bare loop for both: the kernel's IPv6 path over a TAP): "
                     f"{floor_ratios}")
    if pytcp_why:
        notes.append(f"pytcp: not run: {pytcp_why}")
    elif "pytcp" in names or "pytcp" in program_names:
        notes.append("pytcp: PyTCP 3.0.9's daemon, console log off (scripts/pytcp_daemon.py); ping and program rows "
                     "only: TCP, UDP and idle rows need servers it does not have")
    if program_rows:
        notes.append(f"program: scripts/socket_program.py unmodified on each stack, {program_seconds:g} s per test, "
                     "against kernel servers (scripts/socket_program_servers.py); one run each")
    if "pytcp" in names or "pytcp" in program_names:
        notes.append("pystack/pytcp: the aim is 10x PyTCP: >= 10x for rates, <= 0.10x for times")
    if any(not r.get("skipped") for r in wire_rows):
        notes.append(f"wire: through pystack_lab/impaired_wire.py (a Python relay, the same for every column), loss "
                     f"each way, delay half each way, one download each, cut at {args.wire_max_time:g} s (*); "
                     "kernel = its default congestion control, cubic = the kernel with cubic")
    if idle_rows:
        notes.append("idle memory: pystack = growth of the daemon's VmRSS; kernel = slab growth of its run minus "
                     "pystack's run (same client sockets) plus its Python server's RSS growth")
    notes.append("pystack/kernel: lower is better for RTT, CPU and memory, higher for the rest. "
                 "MB = 10^6 bytes, GB = 10^9.")
    print()
    print(bench_table.render(lines, notes))
    if others_share > BUSY_SHARE:
        print(f"note: other programs used {100 * others_share:.0f}% of this machine's CPU during the bench "
              f"({others:.0f} CPU-s in {wall:.0f} s): the figures are lower and noisier than on a quiet machine")
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in load_after],
                    "other_programs_cpu_seconds": round(others, 1),
                    "other_programs_cpu_share": round(others_share, 3)},
        "source": source_version(),
        "sysctl": {"net.ipv4.tcp_congestion_control": Path("/proc/sys/net/ipv4/tcp_congestion_control")
                   .read_text().strip()},
        "method": {
            "rtt": f"ping -c {max(1, count // PING_ROUNDS)} -i 0.002 -s SIZE in {PING_ROUNDS} rounds per target, the "
                   "targets taking turns, each round in a fresh lab; median and nearest-rank p99 of the pooled "
                   "per-reply time=",
            "flood": f"ping -f -q -c {flood_count} -s 56 -w {args.flood_deadline}; pkt/s = received / "
                     "ping's reported time",
            "tcp_servers": "pystack: pystack run --http DIR --echo --discard on its TAP; kernel: "
                           "scripts/bench_kernel_server.py (http.server, HTTP/1.1, backlog 1024, POST /sha256) "
                           "across a veth pair; clients in the namespace of the kernel side",
            "ipv6": "the -6 lines: pystack run --address6 2001:db8::2/64 --host-address6 2001:db8::1/64 (the TAP's "
                    "kernel side keeps IPv6), timed once the address passed DAD; the kernel's veth pair with "
                    "2001:db8::1/64 and 2001:db8::2/64 (nodad); ping -6 of 56 and 1452 B (a 1500-byte packet, as "
                    "1472 B over IPv4), curl -6 -g of http://[2001:db8::2]/; the ping rounds take turns with the "
                    "IPv4 targets",
            "download": f"curl -o /dev/null -w %{{speed_download}} of a {args.tcp_mib} MiB random file, up to "
                        f"{tcp_runs} runs, median; one untimed download first, its SHA-256 checked",
            "upload": f"curl --data-binary @FILE http://IP/sha256 ({args.tcp_mib} MiB), %{{speed_upload}}, up to "
                      f"{tcp_runs} runs, median; every answer checked against the file's SHA-256",
            "plain": "download and upload again in a second lab: pystack run --no-offload (plain frames on the "
                     "TAP); the kernel's veth pair with TSO/GSO/GRO/checksum offloads off on both ends",
            "connections": f"scripts/bench_http_client.py in the client namespace: GET of a 1 KiB file, a new "
                           f"http.client connection each, {args.serial} serial and {args.concurrent} from "
                           f"{args.concurrency} threads, {plan.conn_rounds} rounds each, median round; "
                           "the clock starts after 5 warm-up requests",
            "cpu": "pystack daemon utime+stime from /proc/PID/stat around the timed transfers, s per GB moved "
                   "(= ms per MB); the kernel's CPU is not measured (n/a)",
            "udp": f"scripts/bench_udp.py client in the client namespace: {bench_udp.SIZE} B datagrams with "
                   f"N in flight for {args.udp_seconds:g} s, each checked by sequence number; pystack run --echo, "
                   "kernel: a recvfrom/sendto loop (bench_udp.py server)",
            "idle": f"scripts/bench_idle.py client: {args.idle} connections to port 9 in batches of 250, checked "
                    "ESTABLISHED (TCP_INFO); pystack run --discard: growth of its VmRSS; kernel: "
                    "bench_idle.py server (selectors), slab growth minus pystack run's, plus its RSS growth",
            "wire": f"scripts/bench_matrix.py: curl of a {args.wire_mib} MiB file through the impaired wire "
                    f"(relay queue 10,000 frames), loss both ways, RTT added half each way, max "
                    f"{args.wire_max_time:g} s per cell; pystack run --no-offload; kernel: bench_kernel_server.py "
                    "with the default congestion control and with cubic",
            "program": f"scripts/socket_program.py (stdlib socket API only), {program_seconds:g} s per test: "
                       "upload = rounds of an 8-byte length and that many bytes to a counting discard server, "
                       "each answered with the count; download = recv_into from a source server; connect = "
                       "connect and close to the echo server in a loop (at most 5000); latency = 64 B "
                       "request/response on one connection (at most 5000, after 20 untimed). kernel: program and "
                       "servers across a veth pair; pystack: pystack exec -- socket_program.py, the servers on "
                       "the TAP's kernel side; pytcp: PyTCP's daemon on tap0, the program under "
                       "scripts/pytcp_exec.py by its Python 3.14",
        },
        "seconds": round(time.monotonic() - started, 1),
        "targets": rows,
        "tcp": tcp_rows,
        "udp": udp_rows,
        "idle": idle_rows,
        "wire": wire_rows,
        "program": program_rows,
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.output} ({results['seconds']} s)")
    failed = any("error" in r for r in rows + udp_rows + idle_rows + wire_rows + tcp_rows)
    failed = failed or any("error" in r.get(k, {}) for r in tcp_rows for k in bench_tcp.ROWS)
    failed = failed or any("error" in r.get(k, {}) for r in udp_rows for k in r if k.startswith("window"))
    failed = failed or any("error" in c for r in wire_rows for c in r.get("cells", {}).values())
    failed = failed or any("error" in r or any("error" in r.get(t, {}) for t in bench_same_program.TESTS)
                           for r in program_rows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
