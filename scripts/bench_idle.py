"""The idle-connection row of ``make bench``: 10,000 TCP connections held open, and what each costs.

A Python client in the client namespace opens the connections in batches (non-blocking connects, each batch
waited for with a bounded timeout) to the discard port (RFC 863, port 9) and holds them without a byte:
  pystack  ``pystack run --discard`` on its TAP; its memory per connection is the growth of the daemon's
           resident set (VmRSS in /proc/PID/status) from before the first connection to all of them held,
           divided by the connections held: the stack's state and the discard service's, all of it;
  kernel   ``bench_idle.py server``, a selectors-based Python server holding them, across a veth pair. Its
           memory is kernel memory (socket, inode, file, epoll item: slab objects), which no process owns.
           It is estimated from the machine's slab (/proc/meminfo): the growth during the kernel run minus the
           growth during pystack's run, where the same 10,000 client sockets exist but no server sockets.
           With other programs busy that difference is noise; the JSON keeps the raw figures.
Before the figures are taken the client checks every connection is still ESTABLISHED (TCP_INFO), so
nothing is counted that the server dropped.

``bench_idle.py client ...`` and ``bench_idle.py server ...`` are the two programs; ``measure`` is the row.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import resource
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from pystack_lab import bench_lab, lab


PORT = 9
TCP_ESTABLISHED = 1  # tcp_states.h; the first byte of struct tcp_info
WARM_UP = 100


def raise_nofile(need: int) -> None:
    """Room for ``need`` descriptors (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))


def open_batch(host: str, port: int, n: int, timeout: float, failed: Counter[str]) -> list[socket.socket]:
    """``n`` non-blocking connects at once; the sockets whose handshake finished within ``timeout``."""
    pending: dict[int, socket.socket] = {}
    ep = select.epoll()
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((host, port))
            if code not in (0, errno.EINPROGRESS):
                failed[errno.errorcode.get(code, str(code))] += 1
                sock.close()
                continue
            pending[sock.fileno()] = sock
            ep.register(sock.fileno(), select.EPOLLOUT)
        done: list[socket.socket] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for fd, _ in ep.poll(max(0.0, deadline - time.monotonic())):
                sock = pending.pop(fd)
                ep.unregister(fd)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    failed[errno.errorcode.get(code, str(code))] += 1
                    sock.close()
                else:
                    done.append(sock)
        failed["timeout"] += len(pending)
        for sock in pending.values():
            sock.close()
        return done
    finally:
        ep.close()


def established(socks: list[socket.socket]) -> int:
    return sum(1 for s in socks if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_ESTABLISHED)


def client(host: str, port: int, count: int, batch: int, deadline: float, timeout: float) -> int:
    """Talks to the bench on stdin/stdout, a JSON line per step: warm -> (go) held -> (check) checked ->
    (close) closed. Every step is bounded; EOF on stdin closes everything and exits."""
    raise_nofile(count + 256)

    def say(**what: Any) -> None:
        print(json.dumps(what), flush=True)

    def wait_for(word: str) -> bool:
        return sys.stdin.readline().strip() == word

    failed: Counter[str] = Counter()
    warm = open_batch(host, port, WARM_UP, timeout, failed)  # code paths warm, ARP resolved, untimed
    for sock in warm:
        sock.close()
    say(step="warm", ok=len(warm), failed=dict(failed))
    if not wait_for("go"):
        return 1
    failed.clear()
    held: list[socket.socket] = []
    started = time.monotonic()
    stopped_at_deadline = False
    while len(held) < count:
        if time.monotonic() - started > deadline:
            stopped_at_deadline = True
            break
        held += open_batch(host, port, min(batch, count - len(held)), timeout, failed)
        if sum(failed.values()) > count // 10:
            break  # the server stopped accepting: do not burn the deadline
    opened = time.monotonic() - started
    say(step="held", held=len(held), seconds=round(opened, 2), failed=dict(failed),
        stopped_at_deadline=stopped_at_deadline)
    if not wait_for("check"):
        return 1
    say(step="checked", established=established(held))
    wait_for("close")
    for sock in held:
        sock.close()
    say(step="closed")
    return 0


def server(bind: str, port: int, limit: int) -> None:
    """Accept and hold every connection; read and drop whatever comes; close on EOF."""
    raise_nofile(limit + 256)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((bind, port))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    print(f"ready on {bind}:{port}", file=sys.stderr, flush=True)
    while True:
        for key, _ in sel.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if sock is listener:
                for _ in range(256):
                    try:
                        conn, _addr = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(sock)
                sock.close()


# --- the row, driven by bench.py ---


class Failed(Exception):
    """The row could not be measured; the message is the why printed in the table."""


class Conversation:
    """The client process in the namespace, one JSON line per step, each read with a time bound."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def expect(self, step: str, timeout: float) -> dict[str, Any]:
        out: IO[str] = self.proc.stdout  # type: ignore[assignment]
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else ""
        if not line:
            raise Failed(f"the client said nothing for {timeout:.0f} s, waiting for {step!r}"
                         if not ready else f"the client exited (status {self.proc.poll()}) before {step!r}")
        got = json.loads(line)
        if got.get("step") != step:
            raise Failed(f"the client said {got}, not {step!r}")
        return got

    def tell(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()


@contextlib.contextmanager
def _target(name: str, count: int) -> Iterator[tuple[lab.Namespace, int, dict[str, Any]]]:
    """(client namespace, PID of the process holding the server side, extra info filled in on the way out)."""
    if name == "pystack":
        extra: dict[str, Any] = {}
        with lab.namespace() as ns, lab.pystack_daemon(ns, "--discard") as daemon:
            yield ns, daemon.pid, extra
            counters = daemon.stop()
            extra["counters"] = bench_lab.counters_of(counters, "tcp")
    elif name == "kernel":
        with bench_lab.kernel_pair() as pair:
            proc = bench_lab.spawn_ready(pair.far, [sys.executable, __file__, "server", "--bind", lab.STACK_IP,
                                                    "--port", str(PORT), "--limit", str(count)],
                                         "kernel TCP server", stdout=subprocess.DEVNULL)
            yield pair.near, proc.pid, {}
    else:
        raise ValueError(f"no idle-connections target {name!r}")


def measure(name: str, count: int = 10_000, batch: int = 250, deadline: float = 60.0,
            settle: float = 1.0) -> dict[str, Any]:
    """Hold ``count`` idle connections to one target: how many were held, how long opening took, and the
    server process's and the machine's slab memory before and with them held."""
    print(f"[{name}] {count} idle TCP connections: building the lab and measuring ...", flush=True)
    row: dict[str, Any] = {"target": name, "count": count}
    try:
        with _target(name, count) as (ns, pid, extra):
            proc = ns.spawn([sys.executable, __file__, "client", "--host", lab.STACK_IP, "--port", str(PORT),
                             "--count", str(count), "--batch", str(batch), "--deadline", str(deadline)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            talk = Conversation(proc)
            warm = talk.expect("warm", 30)
            if not warm["ok"]:
                raise Failed(f"no warm-up connection was accepted: {warm['failed']}")
            time.sleep(settle)
            rss_before, slab_before = bench_lab.rss_bytes(pid), bench_lab.slab_bytes()
            talk.tell("go")
            held = talk.expect("held", deadline + 60)
            time.sleep(settle)  # the last ACKs in, timers settled
            rss_held, slab_held = bench_lab.rss_bytes(pid), bench_lab.slab_bytes()
            talk.tell("check")
            checked = talk.expect("checked", 30)
            talk.tell("close")
            talk.expect("closed", 60)
            time.sleep(settle)
            rss_closed = bench_lab.rss_bytes(pid) if bench_lab.alive(pid) else None
            n = checked["established"]
            row.update({
                "held": n, "open_seconds": held["seconds"], "failed": held["failed"],
                "stopped_at_deadline": held["stopped_at_deadline"],
                "server_rss_before": rss_before, "server_rss_held": rss_held, "server_rss_closed": rss_closed,
                "server_bytes_per_conn": round((rss_held - rss_before) / n) if n else None,
                "slab_before": slab_before, "slab_held": slab_held, "slab_growth": slab_held - slab_before,
            })
            if n < count:
                row["note"] = (f"{n} of {count} held ({held['held']} opened in {held['seconds']} s; "
                               f"failures {held['failed']})")
        row.update(extra)
    except Exception as exc:
        row["error"] = str(exc) if isinstance(exc, Failed) else f"{type(exc).__name__}: {exc}"
        print(f"[{name}] idle connections could not be measured: {row['error']}", file=sys.stderr, flush=True)
    return row


def kernel_bytes_per_conn(rows: list[dict[str, Any]]) -> float | None:
    """The kernel's server-side memory per connection, from the slab growth of both runs (see the docstring):
    None when either run is missing or the difference is not positive (noise larger than the signal)."""
    by = {r["target"]: r for r in rows if "error" not in r and r.get("held")}
    if "kernel" not in by or "pystack" not in by:
        return None
    k, p = by["kernel"], by["pystack"]
    if k["held"] != p["held"]:
        return None  # the client sockets would not cancel out
    diff = k["slab_growth"] - p["slab_growth"]
    return diff / k["held"] if diff > 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("client", help="open and hold connections, steered on stdin (see client())")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, default=PORT)
    c.add_argument("--count", type=int, default=10_000)
    c.add_argument("--batch", type=int, default=250, help="connects in flight at once")
    c.add_argument("--deadline", type=float, default=60.0, help="seconds for opening them all, at most")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds a batch may take")
    s = sub.add_parser("server", help="a selectors-based kernel TCP server holding connections")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, default=PORT)
    s.add_argument("--limit", type=int, default=10_000, help="connections to make room for")
    args = parser.parse_args()
    if args.cmd == "client":
        return client(args.host, args.port, args.count, args.batch, args.deadline, args.timeout)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server(args.bind, args.port, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
