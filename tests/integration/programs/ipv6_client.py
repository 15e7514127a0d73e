"""An asyncio client over IPv6, written against the standard library only. The tests run it under
``pystack exec``, unchanged; it prints one JSON object of what it got.

usage: ipv6_client.py NAME PORT LINES
NAME resolves (hosts table or DNS) to the server's IPv6 address. While the stack has no address to
reach it from yet (SLAAC still running: connect fails with ENETUNREACH), it tries again, up to 30 s.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import sys
import time


async def open_when_routable(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    deadline = time.monotonic() + 30
    while True:
        try:
            return await asyncio.open_connection(host, port, family=socket.AF_INET6)
        except OSError as exc:
            if exc.errno not in (errno.ENETUNREACH, errno.EADDRNOTAVAIL) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def main(host: str, port: int, count: int) -> dict[str, object]:
    reader, writer = await open_when_routable(host, port)
    sock = writer.get_extra_info("socket")
    got = []
    for i in range(count):
        writer.write(f"asyncio over IPv6, line {i}\n".encode())
        await writer.drain()
        got.append((await reader.readline()).decode().rstrip("\n"))
    writer.close()
    await writer.wait_closed()
    return {"socket_module": socket.__name__, "family": int(sock.family), "lines": got,
            "peername": list(writer.get_extra_info("peername")), "sockname": list(writer.get_extra_info("sockname")),
            "getaddrinfo": [list(info[4]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]}


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    print(json.dumps(result), flush=True)
