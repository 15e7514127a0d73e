"""The same program on three stacks: a client written against the standard library's ``socket`` module only.

``make bench`` runs this file unmodified on the kernel, under ``pystack exec`` and under PyTCP's drop-in
(scripts/pytcp_exec.py), against the kernel servers of scripts/socket_program_servers.py. It imports nothing
but the standard library, and of ``socket`` it uses what an ordinary program does: ``socket()``, ``connect``,
``sendall``, ``recv``/``recv_into``, ``close``, ``settimeout``, ``setsockopt(TCP_NODELAY)``.
Four tests, each bounded in time, each failing on its own (``{"error": why}``, the others go on):
  upload    to the discard server, for SECONDS, rounds of an 8-byte length then that many bytes (64 KiB
            ``sendall`` s), each answered with the count the server read (like a POST with Content-Length):
            MB/s = bytes answered for / time, every count checked;
  download  ``recv_into`` from the source server for SECONDS: MB/s = bytes read / time;
  connect   connect to the echo server and close, one after the other, for SECONDS (at most CONNECTIONS):
            connections per second;
  latency   one connection to the echo server: a 64-byte request, wait for all 64 bytes back, checked;
            median and p99 of the round trips after a warm-up.
Prints one JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

DISCARD, SOURCE, ECHO = 9, 19, 7
CHUNK = 64 * 1024
LENGTH = struct.Struct("!Q")
ROUND_MIN, ROUND_MAX = CHUNK, 4096 * CHUNK
MB = 1_000_000
IO_TIMEOUT = 10.0
"""The longest any one call may block: a stack that stalls fails its test instead of hanging the bench."""
WARM_UP = 20


def connected(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(IO_TIMEOUT)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(4096):
        parts.append(chunk)
    return b"".join(parts)


def read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            raise RuntimeError(f"the server closed after {line[:20]!r}")
        line += chunk
    return line


def upload(host: str, seconds: float) -> dict[str, Any]:
    """Rounds of "8-byte length, then that many bytes", each answered with the count the server read, for
    ``seconds``; a round doubles while it takes under a tenth of the time, so the answers cost little. Not a
    half-close (``shutdown(SHUT_WR)``) and one count: PyTCP 3.0.9's drop-in cannot pass ``socket.SHUT_WR`` (an
    enum) to its daemon, and this program must run unmodified on every stack."""
    data = os.urandom(CHUNK)
    size = ROUND_MIN
    sock = connected(host, DISCARD)
    try:
        sent = rounds = 0
        started = time.perf_counter()
        while True:
            round_started = time.perf_counter()
            sock.sendall(LENGTH.pack(size))
            for _ in range(size // CHUNK):
                sock.sendall(data)
            answer = read_line(sock)
            if answer.strip() != str(size).encode():
                raise RuntimeError(f"sent {size} bytes, the server counted {answer.strip()[:20]!r}")
            sent += size
            rounds += 1
            now = time.perf_counter()
            if now - started >= seconds:
                break
            if now - round_started < seconds / 10:
                size = min(2 * size, ROUND_MAX)
        elapsed = time.perf_counter() - started
    finally:
        sock.close()
    return {"bytes": sent, "rounds": rounds, "seconds": round(elapsed, 3), "mb_per_s": round(sent / elapsed / MB, 3)}


def download(host: str, seconds: float) -> dict[str, Any]:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    sock = connected(host, SOURCE)
    try:
        got = 0
        started = time.perf_counter()
        stop = started + seconds
        while (left := stop - time.perf_counter()) > 0:
            sock.settimeout(min(IO_TIMEOUT, max(left, 0.05)))
            try:
                n = sock.recv_into(view)
            except TimeoutError:
                if time.perf_counter() < stop:
                    raise
                break  # the time is up while waiting: what arrived is the figure
            if n == 0:
                raise RuntimeError(f"the source server closed after {got} bytes")
            got += n
        elapsed = time.perf_counter() - started
    finally:
        sock.close()
    return {"bytes": got, "seconds": round(elapsed, 3), "mb_per_s": round(got / elapsed / MB, 3)}


def connect(host: str, seconds: float, most: int) -> dict[str, Any]:
    done = 0
    started = time.perf_counter()
    while done < most and time.perf_counter() - started < seconds:
        connected(host, ECHO).close()
        done += 1
    elapsed = time.perf_counter() - started
    return {"connections": done, "seconds": round(elapsed, 3), "per_second": round(done / elapsed, 1)}


def latency(host: str, seconds: float, most: int, size: int) -> dict[str, Any]:
    sock = connected(host, ECHO)
    nodelay = True
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        nodelay = False  # the round trips below wait for every answer, so Nagle would not hold a request
    buf = bytearray(size)
    view = memoryview(buf)
    rtts: list[float] = []
    try:
        request = os.urandom(size)
        started = time.perf_counter()
        for i in range(WARM_UP + most):
            if i >= WARM_UP and time.perf_counter() - started >= seconds:
                break
            t0 = time.perf_counter()
            sock.sendall(request)
            got = 0
            while got < size:
                n = sock.recv_into(view[got:])
                if n == 0:
                    raise RuntimeError("the echo server closed")
                got += n
            t1 = time.perf_counter()
            if buf != request:
                raise RuntimeError("the echo did not match the request")
            if i == WARM_UP - 1:
                started = time.perf_counter()
            elif i >= WARM_UP:
                rtts.append(t1 - t0)
    finally:
        sock.close()
    ordered = sorted(rtts)
    return {"round_trips": len(rtts), "size": size, "nodelay": nodelay,
            "median_ms": round(statistics.median(ordered) * 1000, 4),
            "p99_ms": round(ordered[min(len(ordered) - 1, (99 * len(ordered) - 1) // 100)] * 1000, 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="address of the discard, source and echo servers")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per test")
    parser.add_argument("--tests", default="upload,download,connect,latency")
    parser.add_argument("--connections", type=int, default=5000, help="most connections of the connect test")
    parser.add_argument("--round-trips", type=int, default=5000, help="most round trips of the latency test")
    parser.add_argument("--size", type=int, default=64, help="bytes of a latency request")
    args = parser.parse_args()
    tests: dict[str, Callable[[], dict[str, Any]]] = {
        "upload": lambda: upload(args.server, args.seconds),
        "download": lambda: download(args.server, args.seconds),
        "connect": lambda: connect(args.server, args.seconds, args.connections),
        "latency": lambda: latency(args.server, args.seconds, args.round_trips, args.size),
    }
    results: dict[str, Any] = {"socket_module": getattr(socket, "__file__", None) or socket.__name__}
    for name in [t for t in args.tests.split(",") if t]:
        print(f"socket_program: {name} ...", file=sys.stderr, flush=True)
        try:
            results[name] = tests[name]()
        except Exception as exc:  # a measurement: say why, go on with the next test
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
