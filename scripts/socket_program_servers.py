"""The kernel's servers for scripts/socket_program.py: discard that counts, source, and echo, in one loop.

One thread, non-blocking kernel sockets under ``selectors``, so that no per-connection thread is started for
the connect test and the servers are the same for every stack the program runs on:
  discard  port 9: reads rounds of an 8-byte length (network order) and that many bytes, and answers each
           with the count and a newline (RFC 863 discards silently; the count lets the program time and check
           what arrived without a half-close);
  source   port 19: writes 256 KiB blocks of random bytes until the client goes away (RFC 864's chargen sends
           text lines; random bytes are what a bulk download moves);
  echo     port 7: writes back what it reads (RFC 862); closes at the client's end of stream.
Bound to every address of the namespace it runs in, so it can start before the link it serves exists.
Prints ``ready`` on stderr; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import struct
import sys
from dataclasses import dataclass, field

DISCARD, SOURCE, ECHO = 9, 19, 7
BACKLOG = 1024
READ = 256 * 1024
LENGTH = struct.Struct("!Q")
PENDING_MAX = 1 << 20
"""An echo client that sends without reading gets no more than this buffered for it: then it is dropped."""


@dataclass
class Conn:
    sock: socket.socket
    kind: int
    events: int = 0
    header: bytearray = field(default_factory=bytearray)
    length: int = 0
    remaining: int = 0
    """Bytes of the current discard round still to come; 0 while its length is being read."""
    pending: bytearray = field(default_factory=bytearray)
    closing: bool = False


class Servers:
    def __init__(self, address: str) -> None:
        self.sel = selectors.DefaultSelector()
        self.buf = bytearray(READ)
        self.block = os.urandom(READ)
        for port in (DISCARD, SOURCE, ECHO):
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((address, port))
            lsock.listen(BACKLOG)
            lsock.setblocking(False)
            self.sel.register(lsock, selectors.EVENT_READ, port)

    def run(self) -> None:
        while True:
            for key, events in self.sel.select():
                if isinstance(key.data, int):
                    self.accept(key.fileobj, key.data)  # type: ignore[arg-type]
                else:
                    try:
                        self.serve(key.data, events)
                    except OSError:
                        self.close(key.data)

    def accept(self, lsock: socket.socket, kind: int) -> None:
        try:
            sock, _ = lsock.accept()
        except OSError:
            return
        sock.setblocking(False)
        conn = Conn(sock, kind, events=selectors.EVENT_WRITE if kind == SOURCE else selectors.EVENT_READ)
        self.sel.register(sock, conn.events, conn)

    def close(self, conn: Conn) -> None:
        self.sel.unregister(conn.sock)
        conn.sock.close()

    def serve(self, conn: Conn, events: int) -> None:
        if conn.kind == SOURCE:
            conn.sock.send(self.block)  # raises once the client has gone: closed by run()
            return
        if events & selectors.EVENT_READ and not conn.closing:
            try:
                n = conn.sock.recv_into(self.buf)
            except BlockingIOError:
                n = -1
            if n == 0:
                conn.closing = True
            elif n > 0 and conn.kind == DISCARD:
                self.discard(conn, n)
            elif n > 0:
                conn.pending += self.buf[:n]
        self.flush(conn)

    def discard(self, conn: Conn, n: int) -> None:
        """Account for ``n`` bytes read into the buffer: lengths, the bytes they announce, answers."""
        at = 0
        while at < n:
            if conn.remaining == 0:
                take = min(LENGTH.size - len(conn.header), n - at)
                conn.header += self.buf[at:at + take]
                at += take
                if len(conn.header) == LENGTH.size:
                    conn.length = conn.remaining = LENGTH.unpack(conn.header)[0]
                    conn.header.clear()
                    if conn.remaining == 0:
                        conn.pending += b"0\n"
                continue
            take = min(conn.remaining, n - at)
            conn.remaining -= take
            at += take
            if conn.remaining == 0:
                conn.pending += f"{conn.length}\n".encode()

    def flush(self, conn: Conn) -> None:
        """Write what is pending at once (an echo's answer goes out in the pass that read the request)."""
        if conn.pending:
            try:
                del conn.pending[:conn.sock.send(conn.pending)]
            except BlockingIOError:
                pass
        if conn.closing and not conn.pending or len(conn.pending) > PENDING_MAX:
            self.close(conn)
            return
        want = (0 if conn.closing else selectors.EVENT_READ) | (selectors.EVENT_WRITE if conn.pending else 0)
        if want != conn.events:
            conn.events = want
            self.sel.modify(conn.sock, want, conn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    servers = Servers(args.bind)
    print(f"ready: discard {DISCARD}, source {SOURCE}, echo {ECHO} on {args.bind}", file=sys.stderr, flush=True)
    servers.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
