"""The loss x delay matrix of ``make bench``: a TCP download through the impaired wire (docs/lab.md).

This kernel has no netem, so loss and delay come from pystack_lab/impaired_wire.py, a Python relay bridging two
interfaces of namespace R with AF_PACKET sockets. The client (curl) is the kernel in namespace P
(192.0.2.1/24, veth vp0 <-> vr0 in R); the server at 192.0.2.2 is, in turn:
  pystack  ``pystack run --no-offload --http DIR`` on TAP pst0 in R (the relay drops GSO super-frames, so
           plain frames), the relay bridging pst0 and vr0;
  kernel   bench_kernel_server.py in namespace S on veth vs0 (192.0.2.2/24), its peer vx0 in R, the relay
           bridging vx0 and vr0, with the machine's default congestion control (bbr here);
  cubic    the same with cubic set on the server's sockets (TCP_CONGESTION): loss-based, and the same
           algorithm as pystack's default (RFC 9438).
Offloads are off on every veth end (impaired_wire.disable_offloads) so that the relay sees wire frames. Each
cell starts a fresh relay process with its impairment, both directions alike: ``loss`` percent of frames
dropped each way (data and ACKs), and ``rtt`` ms added to the round trip (half of it each way). The relay's
queue is made long enough (10,000 frames) that it adds no loss of its own. One curl download per cell,
bounded by ``--max-time``; a download cut by the bound still gives a rate (bytes received / seconds).
The relay is a Python program too: it caps both systems alike, so the clean cell is its ceiling, not theirs.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pystack_lab import bench_lab, impaired_wire, lab


SCRIPTS = Path(__file__).resolve().parent
PORT = 80
FILE = "wire.bin"
MB = 1_000_000
RELAY_LIMIT = 10_000
LOSSES = (0.0, 1.0, 5.0)
RTTS = (0.0, 20.0)


@dataclass
class Wire:
    """A lab ready for cells: the relay namespace and the two interfaces it bridges, the client namespace."""

    r: lab.Namespace
    p: lab.Namespace
    if_server: str
    if_client: str
    pid: int | None  # pystack's, for its CPU time
    info: dict[str, Any]


def _plain_veth(a: lab.Namespace, a_if: str, b: lab.Namespace, b_if: str) -> None:
    """A veth pair between two namespaces, up, without IPv6 chatter or offloads (the relay passes wire frames)."""
    lab.veth(a, a_if, b, b_if)
    for ns, ifname in ((a, a_if), (b, b_if)):
        ns.disable_ipv6(ifname)
        impaired_wire.disable_offloads(ifname, ns.name)
        ns.link_up(ifname)


def _relay_pair(r: lab.Namespace, p: lab.Namespace) -> None:
    _plain_veth(r, "vr0", p, "vp0")
    p.add_address("vp0", lab.HOST_ADDRESS)


@contextlib.contextmanager
def pystack_wire(root: Path) -> Iterator[Wire]:
    with lab.namespace("pst-r") as r, lab.namespace("pst-p") as p:
        _relay_pair(r, p)
        with lab.pystack_daemon(r, "--no-offload", "--http", f"{root}:{PORT}", host_address=None) as daemon:
            impaired_wire.disable_offloads(lab.TAP, r.name)
            wire = Wire(r, p, lab.TAP, "vr0", daemon.pid, {})
            yield wire
            counters = daemon.stop()
            wire.info["counters"] = bench_lab.counters_of(counters, "tcp")


@contextlib.contextmanager
def kernel_wire(root: Path, congestion: str | None = None) -> Iterator[Wire]:
    """``congestion``: the server's TCP_CONGESTION on every connection (bench_kernel_server.py --congestion),
    else the namespace's default (net.ipv4.tcp_congestion_control)."""
    with lab.namespace("pst-r") as r, lab.namespace("pst-p") as p, lab.namespace("pst-s") as s:
        _relay_pair(r, p)
        _plain_veth(s, "vs0", r, "vx0")
        s.add_address("vs0", lab.STACK_ADDRESS)
        extra = ["--congestion", congestion] if congestion else []
        bench_lab.spawn_ready(s, [sys.executable, str(SCRIPTS / "bench_kernel_server.py"), "--bind", lab.STACK_IP,
                                  "--port", str(PORT), "--directory", str(root), *extra], "kernel HTTP server",
                              stdout=subprocess.DEVNULL)
        yield Wire(r, p, "vx0", "vr0", None, {"tcp_congestion_control": {
            "client (curl)": p.read_proc("/proc/sys/net/ipv4/tcp_congestion_control"),
            "server": congestion or s.read_proc("/proc/sys/net/ipv4/tcp_congestion_control")}})


TARGETS: dict[str, Callable[[Path], contextlib.AbstractContextManager[Wire]]] = {
    "pystack": pystack_wire,
    "kernel": kernel_wire,
    "cubic": lambda root: kernel_wire(root, "cubic"),  # the loss-based default elsewhere, and pystack's
}


@contextlib.contextmanager
def relay(wire: Wire, loss: float, rtt: float, seed: int) -> Iterator[dict[str, Any]]:
    """One relay process in R with this cell's impairment; yields a dict that gets its counters at the end."""
    argv = [sys.executable, "-m", "pystack_lab.impaired_wire", "--a", wire.if_server, "--b", wire.if_client,
            "--seed", str(seed), "--loss", str(loss), "--delay", str(rtt / 2), "--limit", str(RELAY_LIMIT)]
    proc = wire.r.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline() if ready else ""
    if '"ready"' not in line:
        lab.stop_process(proc)
        raise RuntimeError(f"the impaired wire did not start: {line.strip() or proc.stderr.read().strip()[-200:]}")
    out: dict[str, Any] = {}
    try:
        yield out
    finally:
        lab.stop_process(proc)
        with contextlib.suppress(ValueError, IndexError):
            out.update(json.loads(proc.stdout.read().strip().splitlines()[-1]))


def download(wire: Wire, size: int, max_time: float) -> dict[str, Any]:
    """One curl GET of the file, bounded: bytes, seconds, MB/s, and whether it finished."""
    argv = ["curl", "-sS", "--connect-timeout", "10", "--max-time", str(max_time), "-o", "/dev/null",
            "-w", "\n%{http_code} %{size_download} %{time_total}", f"http://{lab.STACK_IP}:{PORT}/{FILE}"]
    try:
        proc = wire.p.run(argv, timeout=max_time + 20)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"curl did not end in {max_time + 20:.0f} s") from None
    w = proc.stdout.rpartition("\n")[2].split()
    if len(w) != 3 or w[0] != "200":
        raise RuntimeError(f"curl exit {proc.returncode}: {proc.stderr.strip()[:120] or w}")
    got, seconds = int(w[1]), float(w[2])
    if proc.returncode not in (0, 28):  # 28: cut by --max-time, which is a measurement too
        raise RuntimeError(f"curl exit {proc.returncode} after {got} bytes: {proc.stderr.strip()[:120]}")
    return {"bytes": got, "seconds": seconds, "complete": got == size and proc.returncode == 0,
            "mb_per_s": round(got / seconds / MB, 2) if seconds > 0 else None}


def measure(name: str, root: Path, size: int, max_time: float, losses: tuple[float, ...] = LOSSES,
            rtts: tuple[float, ...] = RTTS, seed: int = 1) -> dict[str, Any]:
    """Every cell for one target; a cell that fails records its why and the others still run."""
    print(f"[{name}] loss x delay through the impaired wire: building the lab and measuring ...", flush=True)
    row: dict[str, Any] = {"target": name, "cells": {}}
    try:
        with TARGETS[name](root) as wire:
            for loss in losses:
                for rtt in rtts:
                    key = cell_key(loss, rtt)
                    try:
                        with relay(wire, loss, rtt, seed) as counters:
                            # ARP through the wire before the clock; losses may eat a few of these
                            lab.ping(wire.p, lab.STACK_IP, count=3, interval=0.05, wait=1)
                            cpu = bench_lab.cpu_seconds(wire.pid) if wire.pid else None
                            cell = download(wire, size, max_time)
                            if cpu is not None and cell["bytes"]:
                                cpu = bench_lab.cpu_seconds(wire.pid) - cpu  # type: ignore[arg-type]
                                cell["cpu_ms_per_mb"] = round(1000 * cpu / (cell["bytes"] / MB), 2)
                        cell["relay"] = counters
                    except Exception as exc:  # a measurement: say why, go on with the next cell
                        cell = {"error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, RuntimeError)
                                else str(exc)}
                        print(f"[{name}] wire {key} failed: {cell['error']}", file=sys.stderr, flush=True)
                    row["cells"][key] = cell
                    if wire.pid is not None and not bench_lab.alive(wire.pid):
                        raise RuntimeError(f"the pystack daemon died during the {key} cell")
        row.update(wire.info)
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        print(f"[{name}] the matrix could not be measured: {row['error']}", file=sys.stderr, flush=True)
    return row


def cell_key(loss: float, rtt: float) -> str:
    return f"loss{loss:g}_rtt{rtt:g}"


@contextlib.contextmanager
def wire_file(mib: int) -> Iterator[tuple[Path, int]]:
    """A random file of ``mib`` MiB named FILE in a fresh directory (RAM-backed when /dev/shm exists)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(tempfile.mkdtemp(prefix="pystack-wire-", dir=base))
    try:
        data = os.urandom(mib << 20)
        (root / FILE).write_bytes(data)
        os.chmod(root, 0o755)
        del data
        yield root, mib << 20
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _self_check() -> None:  # pragma: no cover - a manual aid: python bench_matrix.py
    with wire_file(20) as (root, size):
        for name in ("kernel", "cubic", "pystack"):
            started = time.monotonic()
            print(json.dumps(measure(name, root, size, 15.0), indent=1))
            print(f"{name}: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    _self_check()
