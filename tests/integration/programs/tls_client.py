"""HTTPS with the standard library only: urllib.request, http.client and asyncio streams, each with a
context that trusts the given CA. The tests run it under ``pystack exec``; it prints one JSON object
of what each got (SHA-256 of the body, TLS version).

usage: tls_client.py HOST PORT PATH CAFILE
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import ssl
import sys
import urllib.request


def main() -> int:
    host, port, path, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.create_default_context(cafile=cafile)
    result: dict[str, object] = {}
    with urllib.request.urlopen(f"https://{host}:{port}{path}", context=context, timeout=60) as response:
        result["urllib"] = hashlib.sha256(response.read()).hexdigest()
    conn = http.client.HTTPSConnection(host, port, context=context, timeout=60)
    conn.request("GET", path)
    result["version"] = conn.sock.version()
    result["http.client"] = hashlib.sha256(conn.getresponse().read()).hexdigest()
    conn.close()

    async def stream() -> str:
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        return hashlib.sha256(data.partition(b"\r\n\r\n")[2]).hexdigest()

    result["asyncio"] = asyncio.run(stream())
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
