#!/usr/bin/env python3
"""The soak: minutes of mixed traffic against the pystack daemon, watching memory and every table.

``make soak`` (or ``python scripts/soak.py [--minutes 10]``, as root) builds a lab namespace, starts
the daemon with its echo, discard and HTTP services, and keeps the kernel busy with it: ping (small
and fragmented), UDP echo, HTTP downloads and uploads checked by SHA-256, connections that are
opened and aborted with RST, and some that are opened and left to close. Every few seconds it samples
the daemon's resident memory (``/proc/PID/status`` VmRSS) and its counters and table sizes. It fails
(exit status 1) if memory keeps growing (the median of the last third of the samples above the
middle third's by more than the allowed noise), if any table is ever beyond its bound, if any check
of the traffic fails, or if the daemon counts an internal error. It prints a summary either way.

Counters and table sizes come from the daemon itself, run through ``pystack_lab.observer`` (the
real ``pystack.cli.main`` with a thread writing a snapshot of counters, table sizes and their
configured bounds every interval), as in the hostile integration tests.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import secrets
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pystack_lab import bench_lab, lab
from pystack_lab.observer import check_bounds, observed_daemon, read_snapshot

# --- the soak itself (runs as root, builds its own namespace) ----------------------------------------


def growth_verdict(samples: list[float], noise_mib: float = 8.0, noise_ratio: float = 0.05) -> tuple[bool, str]:
    """Memory keeps growing when the last third's median is above the middle third's by more than the
    noise (``noise_mib`` or ``noise_ratio`` of it, whichever is larger). The first third is warm-up."""
    n = len(samples)
    if n < 6:
        return False, f"too few samples ({n}) to judge"
    middle = statistics.median(samples[n // 3:2 * n // 3])
    last = statistics.median(samples[2 * n // 3:])
    allowed = max(noise_mib, noise_ratio * middle)
    ok = last - middle <= allowed
    return ok, (f"median RSS middle third {middle:.1f} MiB, last third {last:.1f} MiB "
                f"(growth {last - middle:+.1f} MiB, allowed {allowed:.1f})")


class Tally:
    """Outcomes of one kind of traffic, shared by its worker thread and the report."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = 0
        self.failed = 0
        self.bytes = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def success(self, nbytes: int = 0) -> None:
        with self.lock:
            self.ok += 1
            self.bytes += nbytes

    def failure(self, why: str) -> None:
        with self.lock:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(why)

    def line(self) -> str:
        return (f"  {self.name:<16} ok {self.ok:>6}  failed {self.failed:>4}  {self.bytes / MiB:10.1f} MiB"
                + (f"  first errors: {self.errors}" if self.errors else ""))


MiB = 1024 * 1024


class Traffic:
    """The mixed traffic: one thread per kind, each looping until ``stop`` is set."""

    def __init__(self, lab: Any, ns: Any, www: Path, files: dict[str, str], rng: random.Random) -> None:
        self.lab, self.ns, self.www, self.files, self.rng = lab, ns, www, files, rng
        self.stop = threading.Event()
        self.tallies = {name: Tally(name) for name in
                        ("ping", "ping_fragmented", "udp_echo", "tcp_echo", "http_download", "http_upload",
                         "connect_abort", "connect_close", "closed_port")}

    def run(self) -> list[threading.Thread]:
        threads = []
        for name in self.tallies:
            if name == "ping_fragmented":
                continue  # the ping worker does both
            t = threading.Thread(target=self._loop, args=(name,), name=f"soak-{name}", daemon=True)
            t.start()
            threads.append(t)
        return threads

    def _loop(self, name: str) -> None:
        work = getattr(self, name)
        tally = self.tallies[name]
        while not self.stop.is_set():
            try:
                work(tally)
            except Exception as exc:  # recorded; the soak reports and fails on it
                tally.failure(repr(exc))
                self.stop.wait(0.5)

    def _curl(self, *args: str, timeout: int = 60, text: bool = True) -> subprocess.CompletedProcess[Any]:
        return self.ns.run(["curl", "-sS", "--noproxy", "*", "--connect-timeout", "10", "--max-time",
                            str(timeout), *args], timeout=timeout + 15, text=text)

    def ping(self, tally: Tally) -> None:
        for size, key in ((56, "ping"), (self.rng.choice((1472, 4000, 8000)), "ping_fragmented")):
            got = self.lab.ping(self.ns, self.lab.STACK_IP, count=5, size=size, interval=0.1, wait=2)
            t = self.tallies[key]
            for _ in range(got["received"]):
                t.success(size)
            for _ in range(got["transmitted"] - got["received"]):
                t.failure(f"lost an echo of {size} bytes")

    def udp_echo(self, tally: Tally) -> None:
        sock = self.ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.settimeout(2.0)
            for _ in range(20):
                data = self.rng.randbytes(self.rng.choice((1, 100, 1400, 3000, 8000)))
                sock.sendto(data, (self.lab.STACK_IP, 7))
                try:
                    got = sock.recv(65535)
                except TimeoutError:
                    tally.failure(f"no echo of {len(data)} bytes")
                    continue
                if got == data:
                    tally.success(len(data))
                else:
                    tally.failure("echo differs")
                self.stop.wait(0.02)
        finally:
            sock.close()

    def tcp_echo(self, tally: Tally) -> None:
        sock = self.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(30)
            sock.connect((self.lab.STACK_IP, 7))
            data = self.rng.randbytes(self.rng.randint(1, 300_000))
            sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
            sender.start()
            got = bytearray()
            while len(got) < len(data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            sender.join(30)
            if got == data:
                tally.success(len(data))
            else:
                tally.failure(f"echoed {len(got)} of {len(data)} bytes, or different ones")
        finally:
            sock.close()

    def http_download(self, tally: Tally) -> None:
        name = self.rng.choice(sorted(self.files))
        proc = self._curl(f"http://{self.lab.STACK_IP}/{name}", timeout=120, text=False)
        if proc.returncode != 0:
            tally.failure(f"curl {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}")
        elif hashlib.sha256(proc.stdout).hexdigest() != self.files[name]:
            tally.failure(f"{name}: SHA-256 differs")
        else:
            tally.success(len(proc.stdout))

    def http_upload(self, tally: Tally) -> None:
        name = self.rng.choice(sorted(self.files))
        proc = self._curl("-T", str(self.www / name), "-X", "POST", f"http://{self.lab.STACK_IP}/sha256",
                          timeout=120)
        if proc.returncode != 0:
            tally.failure(f"curl {proc.returncode}: {proc.stderr.strip()}")
        elif proc.stdout.strip() != self.files[name]:
            tally.failure(f"{name}: pystack's SHA-256 differs")
        else:
            tally.success((self.www / name).stat().st_size)

    def connect_abort(self, tally: Tally) -> None:
        """Open, send half a request, and abort with RST (SO_LINGER 0)."""
        sock = self.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect((self.lab.STACK_IP, 80))
        sock.sendall(b"GET /" + self.rng.choice(sorted(self.files)).encode() + b" HTTP/1.1\r\nHost: x\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        tally.success()
        self.stop.wait(0.05)

    def connect_close(self, tally: Tally) -> None:
        """Open and close at once (FIN), or after a whole request without reading the answer."""
        sock = self.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect((self.lab.STACK_IP, self.rng.choice((80, 9))))
        if self.rng.random() < 0.5:
            sock.sendall(b"GET /" + self.rng.choice(sorted(self.files)).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.close()
        tally.success()
        self.stop.wait(0.05)

    def closed_port(self, tally: Tally) -> None:
        sock = self.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect((self.lab.STACK_IP, 8080))
            tally.failure("a closed port accepted")
        except ConnectionRefusedError:
            tally.success()
        finally:
            sock.close()
        self.stop.wait(0.2)


def soak_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--sample", type=float, default=3.0, help="seconds between samples (default 3)")
    parser.add_argument("--rss-ceiling", type=float, default=200.0, help="MiB the daemon may never exceed")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    why = lab.missing_prerequisites(("ip", "ping", "curl"))
    if why:
        print(f"soak: cannot run: {why}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    print(f"soak: {args.minutes:g} minutes of mixed traffic, sampling every {args.sample:g} s (seed {seed})",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="pystack-soak-") as tmp, lab.namespace("pst-soak") as ns:
        work = Path(tmp)
        www = work / "www"
        www.mkdir()
        files = {}
        for size in (0, 1, 1000, 65_536, 300_000, 1 * MiB, 4 * MiB):
            data = rng.randbytes(size)
            (www / f"f{size}.bin").write_bytes(data)
            files[f"f{size}.bin"] = hashlib.sha256(data).hexdigest()
        with observed_daemon(ns, "--echo", "--discard", "--http", str(www), workdir=work,
                             interval=min(1.0, args.sample)) as (daemon, snap_path):
            return _soak(lab, ns, daemon, snap_path, www, files, rng, args)


def _soak(lab: Any, ns: Any, daemon: Any, snap_path: Path, www: Path, files: dict[str, str],
          rng: random.Random, args: argparse.Namespace) -> int:
    traffic = Traffic(lab, ns, www, files, rng)
    threads = traffic.run()
    start = time.monotonic()
    end = start + args.minutes * 60
    rss: list[float] = []
    problems: list[str] = []
    worst: dict[str, int] = {}
    bounds: dict[str, int] = {}
    last_print = start
    snap: dict[str, Any] | None = None
    try:
        while time.monotonic() < end:
            time.sleep(args.sample)
            if not daemon.alive():
                problems.append(f"the daemon died: {daemon.stderr()[-2000:]}")
                break
            rss.append(bench_lab.rss_bytes(daemon.pid) / MiB)
            if rss[-1] > args.rss_ceiling:
                problems.append(f"RSS {rss[-1]:.1f} MiB over the {args.rss_ceiling:g} MiB ceiling")
            snap = read_snapshot(snap_path)
            if snap is not None:
                for p in check_bounds(snap):
                    if p not in problems:
                        problems.append(p)
                bounds = snap.get("bounds", bounds)
                for k, v in snap.get("sizes", {}).items():
                    worst[k] = max(worst.get(k, 0), v)
            if time.monotonic() - last_print >= 60:
                last_print = time.monotonic()
                done = sum(t.ok for t in traffic.tallies.values())
                print(f"  {(last_print - start) / 60:4.1f} min: RSS {rss[-1]:.1f} MiB, {done} operations, "
                      f"connections {snap and snap['sizes'].get('tcp_connections')}", flush=True)
    finally:
        traffic.stop.set()
        for t in threads:
            t.join(150)
    counters = daemon.stop()
    elapsed = time.monotonic() - start
    grew_ok, growth = growth_verdict(rss)
    if not grew_ok:
        problems.append(f"memory keeps growing: {growth}")
    internal = counters.get("drop.internal_error", 0)
    if internal:
        problems.append(f"{internal} internal errors")
    for tally in traffic.tallies.values():
        allowed = 0.01 * (tally.ok + tally.failed) if tally.name.startswith(("ping", "udp")) else 0
        if tally.failed > allowed:
            problems.append(f"{tally.name}: {tally.failed} failures")
    print(f"\nsoak summary ({elapsed / 60:.1f} min)")
    print("traffic:")
    for tally in traffic.tallies.values():
        print(tally.line())
    print(f"memory: {len(rss)} samples, first {rss[0] if rss else 0:.1f} MiB, max {max(rss, default=0):.1f} MiB, "
          f"last {rss[-1] if rss else 0:.1f} MiB; {growth}")
    print("tables (largest seen / bound):")
    for name, value in sorted(worst.items()):
        print(f"  {name:<24} {value:>8} / {bounds.get(name, '-')}")
    drops = sorted(((k, v) for k, v in counters.items() if k.startswith("drop.")), key=lambda kv: -kv[1])
    print(f"internal errors: {internal}; frames in {counters.get('frames_in', 0)}, out "
          f"{counters.get('frames_out', 0)}; drops by reason: "
          + (", ".join(f"{k[5:]} {v}" for k, v in drops) or "none"))
    if problems:
        print("SOAK FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("soak passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    return soak_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
