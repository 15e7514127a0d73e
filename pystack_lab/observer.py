"""The daemon, observed: ``pystack run`` with a thread that writes its counters and table sizes to a file.

``python -m pystack_lab.observer --snapshot FILE [--interval S] -- run ARGS`` runs ``pystack run ARGS``
(the real ``pystack.cli.main``) with an observer thread that, under the runtime's lock, writes a
snapshot (counters, table sizes and their configured bounds) to a JSON file every interval. The soak
(scripts/soak.py) and the hostile integration tests watch the daemon through it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the daemon's own process, which runs this module, skips pyroute2
    from pystack_lab import lab

# table size -> the bound it must stay within: (section of StackConfig or None for tcp, attribute)
BOUNDS: dict[str, str] = {
    "arp_entries": "arp_cache_size",
    "arp_pending": "arp_pending_addresses",
    "arp_pending_bytes_max": "arp_pending_bytes",
    "reassembly_datagrams": "reassembly_max_datagrams",
    "reassembly_bytes": "reassembly_max_bytes",
    "tcp_half_open_max": "tcp.syn_backlog",
    "tcp_accept_queue_max": "tcp.max_backlog",
    "tcp_time_wait": "tcp.max_time_wait",
    "tcp_ooo_blocks_max": "tcp.ooo_max_segments",
    "tcp_recv_buffered_max": "tcp.recv_buffer|tcp.recv_buffer_max",  # the larger: buffers grow to the ceiling
    "tcp_send_buffered_max": "tcp.send_buffer|tcp.send_buffer_max",
    "udp_queue_max": "udp_recv_queue",
}


def _bound(config: Any, paths: str) -> int:
    """The bound named by ``paths``: ``section.attribute``, or several joined by ``|`` (the largest)."""
    bounds = []
    for path in paths.split("|"):
        section, _, name = path.rpartition(".")
        bounds.append(getattr(config.tcp if section == "tcp" else config, name))
    return max(bounds)


def table_sizes(stack: Any) -> dict[str, int]:
    """How full each bounded table of ``stack`` is now (caller holds the runtime's lock)."""
    conns = list(stack.tcp.connections.values())
    listeners = list(stack.tcp.listeners.values())
    pending = list(stack.arp.pending.values())
    return {
        "arp_entries": len(stack.arp.entries),
        "arp_pending": len(pending),
        "arp_pending_bytes_max": max((p.queued_bytes for p in pending), default=0),
        "reassembly_datagrams": len(stack.reassembler.datagrams),
        "reassembly_bytes": stack.reassembler.bytes_held,
        "tcp_connections": len(conns),
        "tcp_established": sum(c.state.name == "ESTABLISHED" for c in conns),
        "tcp_time_wait": sum(c.state.name == "TIME_WAIT" for c in conns),
        "tcp_syn_received": sum(c.state.name == "SYN_RECEIVED" for c in conns),
        "tcp_half_open_max": max((ls.half_open for ls in listeners), default=0),
        "tcp_accept_queue_max": max((ls.pending for ls in listeners), default=0),
        "tcp_ooo_blocks_max": max((len(c._ooo.blocks) for c in conns), default=0),
        "tcp_recv_buffered_max": max((c.recv_available for c in conns), default=0),
        "tcp_send_buffered_max": max((c.unsent for c in conns), default=0),
        "udp_ports": len(stack.udp.ports),
        "udp_queue_max": max((len(e.queue) for e in stack.udp.ports.values()), default=0),
    }


def snapshot(stack: Any) -> dict[str, Any]:
    snap: dict[str, Any] = {"wall": time.time(), "counters": dict(stack.counters), "errors": []}
    try:
        snap["sizes"] = table_sizes(stack)
        snap["bounds"] = {size: _bound(stack.config, path) for size, path in BOUNDS.items()}
    except Exception as exc:  # an attribute moved: say so, the checker fails on it
        snap["errors"].append(f"cannot read table sizes: {exc!r}")
    return snap


def observe_main(argv: list[str]) -> int:
    """``--snapshot FILE [--interval S] -- run ...``: the daemon, observed."""
    parser = argparse.ArgumentParser(prog="python -m pystack_lab.observer")
    parser.add_argument("--snapshot", required=True, help="JSON file rewritten every interval")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then the pystack arguments (run ...)")
    args = parser.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest

    import pystack.cli
    import pystack.runtime

    runtimes: list[Any] = []

    class ObservedRuntime(pystack.runtime.Runtime):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            runtimes.append(self)

    pystack.runtime.Runtime = ObservedRuntime  # cmd_run imports it when it starts
    target = Path(args.snapshot)
    tmp = target.with_name(target.name + ".tmp")

    def loop() -> None:
        seq = 0
        while True:
            time.sleep(args.interval)
            if not runtimes:
                continue
            rt = runtimes[0]
            with rt.lock:
                snap = snapshot(rt.stack)
            seq += 1
            snap["seq"] = seq
            tmp.write_text(json.dumps(snap))
            os.replace(tmp, target)

    threading.Thread(target=loop, name="observer", daemon=True).start()
    return pystack.cli.main(rest)


def check_bounds(snap: dict[str, Any]) -> list[str]:
    """Every table size in ``snap`` beyond its bound, as messages (and observer errors)."""
    problems = list(snap.get("errors", []))
    sizes, bounds = snap.get("sizes", {}), snap.get("bounds", {})
    for name, bound in bounds.items():
        if sizes.get(name, 0) > bound:
            problems.append(f"{name} = {sizes[name]} over its bound {bound}")
    return problems


def observe_command(snapshot: Path, interval: float) -> list[str]:
    """The argv that runs the daemon observed; ``pystack`` arguments (``run ...``) follow it."""
    return [sys.executable, "-m", "pystack_lab.observer", "--snapshot", str(snapshot), "--interval",
            str(interval), "--"]


# --- the daemon, observed, in a lab namespace ---------------------------------------------------------


@contextlib.contextmanager
def observed_daemon(ns: lab.Namespace, *extra: str, workdir: Path, interval: float = 1.0,
                    ready_timeout: float = 20.0) -> Iterator[tuple[lab.Daemon, Path]]:
    """``pystack run`` at 192.0.2.2 (kernel side 192.0.2.1) in ``ns``, run through ``observe``.

    Yields (lab.Daemon, snapshot path); SIGTERM on the way out, after which ``daemon.counters`` holds
    its --stats-json.
    """
    from pystack_lab import lab

    tag = secrets.token_hex(3)
    stats_path = workdir / f"stats-{tag}.json"
    snapshot_path = workdir / f"snapshot-{tag}.json"
    argv = [*observe_command(snapshot_path, interval), "run", "--tap", lab.TAP, "--address", lab.STACK_ADDRESS,
            "--host-address", lab.HOST_ADDRESS, "--stats-json", str(stats_path), *extra]
    daemon = lab.Daemon(ns, argv, stats_path)
    try:
        daemon.wait_ready(ready_timeout)
        ns.disable_ipv6(lab.TAP)
        yield daemon, snapshot_path
    finally:
        daemon.stop()


def read_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(observe_main(sys.argv[1:]))
