"""asyncio streams (open_connection / start_server) over pystack, in the stdlib's shape."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from pystack.api.streams import open_connection, start_server

from .conftest import B_IP


def test_stream_echo_round_trip(runtimes):
    ra, rb = runtimes
    data = random.Random(9).randbytes(600_000)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> bytes:
        server = await start_server(rb, handle, "", 8000)
        reader, writer = await open_connection(ra, B_IP, 8000)
        assert writer.get_extra_info("peername") == (B_IP, 8000)

        async def send() -> None:
            writer.write(data)
            await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        got = await reader.read(-1)
        await sender
        writer.close()
        await writer.wait_closed()
        server.close()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 30))
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_open_connection_to_closed_port_is_refused(runtimes):
    ra, _rb = runtimes

    async def main() -> None:
        await open_connection(ra, B_IP, 8001)

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(asyncio.wait_for(main(), 10))


def test_readline_and_http_shaped_exchange(runtimes):
    ra, rb = runtimes

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        writer.write(b"you said: " + line)
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        server = await start_server(rb, handle, "", 8002)
        reader, writer = await open_connection(ra, B_IP, 8002)
        writer.write(b"hello\n")
        answer = await reader.read()
        writer.close()
        server.close()
        return answer

    assert asyncio.run(asyncio.wait_for(main(), 10)) == b"you said: hello\n"
