"""New HTTP connections per second: short GETs, each on a connection of its own, serial or from N threads.

Run inside the client namespace (``ip netns exec NS python bench_http_client.py ...``) so that the process
start-up is not in the figure: the clock starts after a few untimed warm-up requests (ARP resolved, server
warm). Every answer is checked (status 200, the expected body); failures are counted by kind, never raised.
It stops issuing requests at ``--deadline`` seconds, so a stuck server costs a bounded time. Prints one JSON
object on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

WARM_UP = 5


def one_request(host: str, port: int, path: str, timeout: float, sha256: str) -> str | None:
    """One GET on a fresh connection, closed after the answer; None when right, else what went wrong."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return f"status {resp.status}"
        if hashlib.sha256(body).hexdigest() != sha256:
            return "wrong body"
        return None
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--path", required=True)
    parser.add_argument("--sha256", required=True, help="hex SHA-256 the body must have")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request socket timeout, seconds")
    parser.add_argument("--deadline", type=float, default=60.0, help="stop issuing requests after this")
    args = parser.parse_args()

    for _ in range(WARM_UP):
        why = one_request(args.host, args.port, args.path, args.timeout, args.sha256)
        if why is not None:  # a server that fails the warm-up would only burn the deadline
            print(json.dumps({"requests": args.requests, "concurrency": args.concurrency, "issued": 0, "ok": 0,
                              "errors": {f"warm-up: {why}": 1}, "warm_up": WARM_UP, "stopped_at_deadline": True}))
            return 0

    lock = threading.Lock()
    issued = 0
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    started = time.monotonic()
    stop_at = started + args.deadline

    def worker() -> None:
        nonlocal issued
        while True:
            with lock:
                if issued >= args.requests or time.monotonic() >= stop_at:
                    return
                issued += 1
            t0 = time.monotonic()
            why = one_request(args.host, args.port, args.path, args.timeout, args.sha256)
            took = time.monotonic() - t0
            with lock:
                if why is None:
                    latencies.append(took)
                else:
                    errors[why] += 1

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for _ in range(args.concurrency):
            pool.submit(worker)
    seconds = time.monotonic() - started
    ok = len(latencies)
    print(json.dumps({
        "requests": args.requests, "concurrency": args.concurrency, "issued": issued, "ok": ok,
        "errors": dict(errors), "warm_up": WARM_UP, "seconds": round(seconds, 3),
        "per_second": round(ok / seconds, 1) if seconds > 0 else None,
        "stopped_at_deadline": issued < args.requests,
        "latency_ms": {
            "median": round(1000 * statistics.median(latencies), 3) if latencies else None,
            "p99": round(1000 * sorted(latencies)[max(0, -(-99 * ok // 100) - 1)], 3) if latencies else None,
        },
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
