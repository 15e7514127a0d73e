"""Echo servers written against the standard library only: socketserver (TCP, a thread per client),
asyncio streams (TCP) and socketserver (UDP). The tests run this file with the kernel's python3 and
under ``pystack exec``, unchanged.

usage: echo_servers.py HOST [--threads PORT] [--asyncio PORT] [--udp PORT]
Prints "ready" once every server listens; SIGINT stops them all, exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import socketserver
import sys
import threading


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while line := self.rfile.readline(65536):
            self.wfile.write(line)


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data, self.client_address)


class ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def serve(host: str, args: argparse.Namespace, others: list[socketserver.BaseServer]) -> None:
    server = await asyncio.start_server(echo, host, args.asyncio, backlog=128) if args.asyncio else None
    print("ready", flush=True)
    try:
        if server is not None:
            await server.serve_forever()
        else:
            await asyncio.Event().wait()
    finally:
        for other in others:
            other.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--asyncio", type=int)
    parser.add_argument("--udp", type=int)
    args = parser.parse_args()
    others: list[socketserver.BaseServer] = []
    if args.threads:
        others.append(ThreadingServer((args.host, args.threads), Echo))
    if args.udp:
        others.append(socketserver.ThreadingUDPServer((args.host, args.udp), UdpEcho))
    for server in others:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        asyncio.run(serve(args.host, args, others))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
