"""The kernel's side of the TCP bench: ``python3 -m http.server`` plus ``POST /sha256``, as pystack serves.

It is the standard library's server (ThreadingHTTPServer, SimpleHTTPRequestHandler) with three changes so that
it measures the kernel's TCP rather than the library's defaults, and so that the client commands are the same
for both systems:
  - ``POST /sha256`` answers the hex SHA-256 of the body and a newline, like pystack's HTTP service;
  - HTTP/1.1, so that curl's ``Expect: 100-continue`` gets its 100 at once (HTTP/1.0 would cost curl a
    one-second wait before every upload) and responses carry Content-Length;
  - a listen backlog of 1024 (pystack's), not socketserver's 5, which drops SYNs under 50 concurrent clients.
It knows nothing of pystack. Run it inside the server namespace; it prints ``ready`` on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import socket
import sys
from functools import partial
from typing import Any
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

READ_CHUNK = 1 << 20


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
        if self.path != "/sha256":
            self.send_error(405, "only POST /sha256")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.send_error(411, "Content-Length required")
            return
        left = int(length)
        hasher = hashlib.sha256()
        while left:
            chunk = self.rfile.read(min(left, READ_CHUNK))
            if not chunk:
                self.close_connection = True
                return
            hasher.update(chunk)
            left -= len(chunk)
        body = hasher.hexdigest().encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # thousands of requests: a log line each would cost more than the request


class Server(ThreadingHTTPServer):
    request_queue_size = 1024
    congestion: bytes | None = None
    """With ``--congestion``: TCP_CONGESTION of every accepted socket. Per socket, because in a namespace other
    than the first the sysctl accepts only net.ipv4.tcp_allowed_congestion_control, a machine-wide setting."""

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        if self.congestion is not None:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, self.congestion)
        return conn, addr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--congestion", help="TCP congestion control of the connections (e.g. cubic)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if ":" in args.bind:
        Server.address_family = socket.AF_INET6  # the IPv6 rows (make bench's -6 targets)
    with Server((args.bind, args.port), partial(Handler, directory=args.directory)) as server:
        if args.congestion:
            server.congestion = args.congestion.encode()
            server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, server.congestion)  # fail early
        print(f"ready on {args.bind}:{args.port}", file=sys.stderr, flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
