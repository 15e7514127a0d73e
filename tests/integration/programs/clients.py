"""A client of kernel servers written against the standard library only: urllib.request, asyncio
streams, a selectors loop of non-blocking sockets, UDP, and getaddrinfo. The tests run it under
``pystack exec``, unchanged; it prints one JSON object of what it got.

usage: clients.py URL ECHO_HOST ECHO_PORT UDP_PORT
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import selectors
import socket
import sys
import urllib.request


def fetch(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=60) as response:
        digest = hashlib.sha256()
        size = 0
        while chunk := response.read(65536):
            digest.update(chunk)
            size += len(chunk)
        return {"status": response.status, "size": size, "sha256": digest.hexdigest()}


async def stream_lines(host: str, port: int, count: int) -> list[str]:
    reader, writer = await asyncio.open_connection(host, port)
    got = []
    for i in range(count):
        writer.write(f"asyncio line {i}\n".encode())
        await writer.drain()
        got.append((await reader.readline()).decode().rstrip("\n"))
    writer.close()
    await writer.wait_closed()
    return got


def selector_loop(host: str, port: int, clients: int) -> list[str]:
    """Non-blocking sockets: connect, send one line when writable, read the echo when readable."""
    sel = selectors.DefaultSelector()
    want: dict[socket.socket, bytes] = {}
    got: dict[socket.socket, bytes] = {}
    for i in range(clients):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex((host, port))
        assert err == 115, err  # EINPROGRESS
        want[s] = f"selectors client {i}\n".encode()
        got[s] = b""
        sel.register(s, selectors.EVENT_WRITE)
    done: list[str] = []
    while len(done) < clients:
        events = sel.select(30)
        if not events:
            raise TimeoutError("the selector loop got no event within 30 s")
        for key, mask in events:
            s = key.fileobj
            if mask & selectors.EVENT_WRITE:
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                s.sendall(want[s])
                sel.modify(s, selectors.EVENT_READ)
            elif mask & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                got[s] += data
                if got[s].endswith(b"\n"):
                    done.append(got[s].decode().rstrip("\n"))
                    sel.unregister(s)
                    s.close()
    sel.close()
    return sorted(done)


def udp(host: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(b"a datagram", (host, port))
        data, _peer = s.recvfrom(1000)
        return data.decode()


def main() -> int:
    url, host, port, udp_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    result = {
        "urllib": fetch(url),
        "getaddrinfo": [list(info[4]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)],
        "asyncio": asyncio.run(stream_lines(host, port, 5)),
        "selectors": selector_loop(host, port, 10),
        "udp": udp(host, udp_port),
        "socket_module": socket.__name__,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
