"""asyncio streams (open_connection / start_server) over pystack, in the stdlib's shape."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from pystack.api.streams import open_connection, start_server

from .conftest import A6, A_IP, B6, B_IP


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


def test_server_on_every_address_takes_both_families_and_names_each_in_its_own(runtimes6):
    """As asyncio.start_server(host=None) over the kernel: one socket per family, so an IPv4 peer is
    named as IPv4 (2-tuple) and an IPv6 one as IPv6 (4-tuple)."""
    ra, rb = runtimes6
    peers = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main() -> list[bytes]:
        server = await start_server(rb, handle, None, 8010)
        answers = []
        for host in (B6, B_IP):
            reader, writer = await open_connection(ra, host, 8010)
            name = writer.get_extra_info("peername")
            assert name == ((B6, 8010, 0, 0) if host == B6 else (B_IP, 8010))
            writer.write(f"hello over {host}\n".encode())
            answers.append(await reader.readline())
            writer.close()
            await writer.wait_closed()
        server.close()
        return answers

    answers = asyncio.run(asyncio.wait_for(main(), 30))
    assert answers == [f"HELLO OVER {B6.upper()}\n".encode(), f"HELLO OVER {B_IP}\n".encode()]
    assert [p[0] for p in peers] == [A6, A_IP] and len(peers[0]) == 4 and len(peers[1]) == 2


def test_server_on_an_ipv6_literal_refuses_ipv4(runtimes6):
    ra, rb = runtimes6

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        server = await start_server(rb, handle, "::", 8011)
        try:
            await open_connection(ra, B_IP, 8011)
        finally:
            server.close()

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(asyncio.wait_for(main(), 10))
