"""The UDP echo rows of ``make bench``: echoed datagrams per second, pystack against the kernel.

Both targets answer the same Python client, run inside the client namespace so that its start-up is not timed:
  pystack  ``pystack run --echo`` (RFC 862 on port 7) on its TAP, the client in the TAP's namespace;
  kernel   ``bench_udp.py server``, a recvfrom/sendto loop on a kernel UDP socket, across a veth pair.
The client keeps N datagrams in flight (each carries a sequence number and is checked when it comes back):
N = 1 is a send/recv loop, bound by the round trip; a larger N measures how fast the far side turns datagrams
around. A datagram not answered within the timeout counts as lost and is replaced, so loss cannot stall it.

``bench_udp.py client ...`` and ``bench_udp.py server ...`` are the two programs; ``measure`` is the row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from pystack_lab import bench_lab, lab


PORT = 7
SIZE = 64
WINDOWS = (1, 32)
SEQ = struct.Struct("!Q")


def client(host: str, port: int, size: int, window: int, seconds: float, timeout: float) -> dict[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.settimeout(timeout)
    pad = bytes(max(0, size - SEQ.size))
    sent = received = wrong = timeouts = 0
    next_seq = 0
    in_flight: set[int] = set()

    def send() -> None:
        nonlocal sent, next_seq
        sock.send(SEQ.pack(next_seq) + pad)
        in_flight.add(next_seq)
        next_seq += 1
        sent += 1

    # Warm-up, untimed: ARP resolved, both ends' code paths warm.
    for _ in range(50):
        sock.send(b"w" * size)
        try:
            sock.recv(65536)
        except OSError:
            pass
    started = time.monotonic()
    stop = started + seconds
    while len(in_flight) < window:
        send()
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            timeouts += 1
            in_flight.clear()  # every datagram in flight counts as lost; start the window afresh
        else:
            seq = SEQ.unpack_from(data)[0] if len(data) == size else -1
            if seq in in_flight:
                in_flight.discard(seq)
                received += 1
            else:
                wrong += 1  # late (after a timeout), duplicated, or not what was sent
                continue
        if time.monotonic() >= stop:
            break
        while len(in_flight) < window:
            send()
    elapsed = time.monotonic() - started
    sock.close()
    lost = sent - received - len(in_flight)  # the last window was still on its way: not lost, not waited for
    return {"size": size, "window": window, "seconds": round(elapsed, 3), "sent": sent, "received": received,
            "late_or_wrong": wrong, "timeouts": timeouts,
            "pps": round(received / elapsed) if elapsed > 0 else None,
            "loss_pct": round(100 * lost / sent, 3) if sent else None}


def server(bind: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((bind, port))
    print(f"ready on {bind}:{port}", file=sys.stderr, flush=True)
    while True:
        data, source = sock.recvfrom(65536)
        sock.sendto(data, source)


# --- the row, driven by bench.py ---


@contextlib.contextmanager
def _target(name: str) -> Iterator[tuple[lab.Namespace, int | None, dict[str, Any]]]:
    """The lab for ``name``: (client namespace, pystack's PID or None, extra info filled in on the way out)."""
    if name == "pystack":
        extra: dict[str, Any] = {}
        with lab.namespace() as ns, lab.pystack_daemon(ns, "--echo") as daemon:
            yield ns, daemon.pid, extra
            counters = daemon.stop()
            extra["counters"] = bench_lab.counters_of(counters, "udp")
    elif name == "kernel":
        with bench_lab.kernel_pair() as pair:
            bench_lab.spawn_ready(pair.far, [sys.executable, __file__, "server", "--bind", lab.STACK_IP,
                                             "--port", str(PORT)], "kernel UDP echo server",
                                  stdout=subprocess.DEVNULL)
            yield pair.near, None, {}
    else:
        raise ValueError(f"no UDP target {name!r}")


def _run_client(ns: lab.Namespace, ip: str, size: int, window: int, seconds: float) -> dict[str, Any]:
    argv = [sys.executable, __file__, "client", "--host", ip, "--port", str(PORT), "--size", str(size),
            "--window", str(window), "--seconds", str(seconds)]
    try:
        proc = ns.run(argv, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise Failed(f"the UDP client did not finish in {seconds + 30:.0f} s") from None
    if proc.returncode != 0:
        raise Failed(f"UDP client exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if not got["received"]:
        raise Failed(f"no echo came back ({got['sent']} sent)")
    return got


class Failed(Exception):
    """A row could not be measured; the message is the why printed in the table."""


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, Failed) else f"{type(exc).__name__}: {exc}"


def measure(name: str, windows: tuple[int, ...] = WINDOWS, size: int = SIZE,
            seconds: float = 3.0) -> dict[str, Any]:
    """Echoes per second for each window against one target; ``{"error": why}`` where one cannot be measured."""
    print(f"[{name}] UDP echo: building the lab and measuring ...", flush=True)
    row: dict[str, Any] = {"target": name}
    try:
        with _target(name) as (ns, pid, extra):
            lab.ping(ns, lab.STACK_IP, count=2, interval=0.05)  # ARP resolved before anything is timed
            cpu_before = bench_lab.cpu_seconds(pid) if pid else None
            for window in windows:
                try:
                    row[f"window{window}"] = _run_client(ns, lab.STACK_IP, size, window, seconds)
                except Exception as exc:  # a measurement: say why, go on with the next window
                    row[f"window{window}"] = {"error": _why(exc)}
            if pid is not None and cpu_before is not None:
                echoed = sum(row[f"window{w}"].get("received", 0) for w in windows)
                cpu = bench_lab.cpu_seconds(pid) - cpu_before
                row["cpu_us_per_echo"] = round(1e6 * cpu / echoed, 1) if echoed else None
        row.update(extra)
    except Exception as exc:
        row["error"] = _why(exc)
    if "error" in row:
        print(f"[{name}] UDP could not be measured: {row['error']}", file=sys.stderr, flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("client", help="echo datagrams with N in flight; print one JSON object")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, default=PORT)
    c.add_argument("--size", type=int, default=64, help="payload bytes (at least 8: the sequence number)")
    c.add_argument("--window", type=int, default=1, help="datagrams in flight")
    c.add_argument("--seconds", type=float, default=3.0)
    c.add_argument("--timeout", type=float, default=0.2, help="seconds before a datagram counts as lost")
    s = sub.add_parser("server", help="a kernel UDP echo server (recvfrom/sendto loop); prints ready")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    if args.cmd == "client":
        if args.size < SEQ.size:
            parser.error(f"--size must be at least {SEQ.size}")
        print(json.dumps(client(args.host, args.port, args.size, args.window, args.seconds, args.timeout)))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server(args.bind, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
