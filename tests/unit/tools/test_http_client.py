"""The HTTP/1.1 client's URL, request and response reader: every body framing of RFC 9112 section 6.3,
fed in arbitrary pieces, and the malformed responses it must refuse rather than guess at."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.tools.http import HttpError, ResponseReader, UrlError, build_request, parse_url


# ---------------------------------------------------------------------- URLs and requests


@pytest.mark.parametrize("text, host, port, target", [
    ("http://www.example.test/file", "www.example.test", 80, "/file"),
    ("http://WWW.Example.Test", "www.example.test", 80, "/"),
    ("http://198.51.100.80:8080/a/b?x=1&y=2", "198.51.100.80", 8080, "/a/b?x=1&y=2"),
    ("HTTP://h/%20space", "h", 80, "/%20space"),
    ("https://www.example.test/f", "www.example.test", 443, "/f"),
    ("https://h:8443", "h", 8443, "/"),
])
def test_parse_url(text: str, host: str, port: int, target: str) -> None:
    url = parse_url(text)
    assert (url.host, url.port, url.target) == (host, port, target)
    assert url.scheme == text.split(":", 1)[0].lower()


def test_host_header_leaves_out_the_schemes_own_port() -> None:
    assert parse_url("https://h:443/").host_header == "h" and parse_url("https://h:80/").host_header == "h:80"
    assert parse_url("http://h:443/").host_header == "h:443"


def test_ipv6_literal_urls_keep_their_brackets_in_the_host_header() -> None:
    """RFC 3986 3.2.2 and RFC 9110 7.2: the literal is bracketed in the URL and in Host."""
    url = parse_url("http://[2001:DB8:1::80]:8080/file")
    assert (url.host, url.port, url.target) == ("2001:db8:1::80", 8080, "/file")
    assert url.host_header == "[2001:db8:1::80]:8080" and url.is_literal
    assert parse_url("http://[2001:db8::1]/").host_header == "[2001:db8::1]"
    assert b"Host: [2001:db8::1]\r\n" in build_request(parse_url("http://[2001:db8::1]/"))


@pytest.mark.parametrize("text, needle", [
    ("ftp://host/file", "http://"),
    ("www.example.test/file", "http://"),
    ("http:///nohost", "no host"),
    ("http://host:99999/", "port"),
    ("http://host:0/", "port"),
    ("http://user:pw@host/", "passwords"),
    ("http://[fe80::1%25pst0]/", "zone"),
    ("http://[2001:db8::1/", "bad host"),
    ("http://host/a b", "percent-encoded"),
])
def test_parse_url_refuses(text: str, needle: str) -> None:
    with pytest.raises(UrlError, match=needle):
        parse_url(text)


def test_request_has_host_with_port_and_no_connection_close() -> None:
    request = build_request(parse_url("http://www.example.test:8080/f?q=1"))
    head, _, rest = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"GET /f?q=1 HTTP/1.1"
    assert b"Host: www.example.test:8080" in lines
    assert not any(line.lower().startswith(b"connection:") for line in lines)
    assert rest == b""
    assert b"Host: h\r\n" in build_request(parse_url("http://h/"))


# ---------------------------------------------------------------------- responses


def _read(pieces: list[bytes], method: str = "GET", eof: bool = True) -> tuple[ResponseReader, bytes]:
    reader = ResponseReader(method)
    body = b""
    for piece in pieces:
        body += reader.feed(piece)
    if eof and not reader.complete:
        body += reader.feed_eof()
    return reader, body


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


BODY = bytes(range(256)) * 20


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, i = b"", 0
    for n, size in enumerate(sizes):
        piece = body[i:i + size]
        if not piece:
            break
        ext = b";name=value" if n % 2 else b""
        out += f"{len(piece):x}".encode() + ext + b"\r\n" + piece + b"\r\n"
        i += len(piece)
    if i < len(body):
        out += f"{len(body) - i:X}".encode() + b"\r\n" + body[i:] + b"\r\n"
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
       sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=6),
       framing=st.sampled_from(["length", "chunked", "close"]))
def test_every_framing_in_any_pieces(cuts: list[int], sizes: list[int], framing: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: test\r\n"
    if framing == "length":
        wire = head + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY
    elif framing == "chunked":
        wire = head + b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(BODY, sizes)
    else:
        wire = head + b"\r\n" + BODY
    reader, body = _read(_split(wire, cuts), eof=(framing == "close"))
    assert reader.complete, framing
    assert reader.framing == framing
    assert body == BODY
    assert reader.body_bytes == len(BODY)
    assert reader.response is not None and reader.response.status == 200
    assert reader.response.header("server") == "test"


def test_byte_by_byte_chunked() -> None:
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(b"hello, world", [5, 2])
    reader, body = _read([wire[i:i + 1] for i in range(len(wire))], eof=False)
    assert reader.complete and body == b"hello, world"


def test_length_body_stops_at_its_length() -> None:
    reader, body = _read([b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA"], eof=False)
    assert reader.complete and body == b"abc"
    assert reader.leftover == b"EXTRA"
    assert reader.feed(b"more") == b""


@pytest.mark.parametrize("wire, method", [
    (b"HTTP/1.1 204 No Content\r\n\r\n", "GET"),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET"),
])
def test_responses_without_a_body(wire: bytes, method: str) -> None:
    reader, body = _read([wire], method=method, eof=False)
    assert reader.complete and body == b""


def test_interim_100_continue_is_skipped() -> None:
    wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    reader, body = _read([wire], eof=False)
    assert [r.status for r in reader.interim] == [100]
    assert reader.response is not None and reader.response.status == 200 and body == b"ok"


def test_transfer_encoding_wins_over_content_length() -> None:
    # RFC 9112 section 6.3 item 3: chunked framing, whatever Content-Length says.
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    reader, body = _read([wire], eof=False)
    assert reader.framing == "chunked" and body == b"hi"


def test_http10_without_length_reads_until_close() -> None:
    reader, body = _read([b"HTTP/1.0 200 OK\r\n\r\nall of it", b" and more"])
    assert reader.framing == "close" and body == b"all of it and more"
    assert reader.response is not None and reader.response.version == "HTTP/1.0"


def test_same_content_length_twice_is_accepted() -> None:
    reader, body = _read([b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok"], eof=False)
    assert body == b"ok"


@pytest.mark.parametrize("wire, needle", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", "Content-Length"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"),
    (b"HTTP/2.0 200 OK\r\n\r\n", "version"),
    (b"HTTP/1.1 20 OK\r\n\r\n", "not an HTTP response"),
    (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "folding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "transfer coding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "CRLF"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched"),
])
def test_malformed_responses_are_refused(wire: bytes, needle: str) -> None:
    with pytest.raises(HttpError, match=needle):
        _read([wire], eof=False)


def test_header_too_long() -> None:
    reader = ResponseReader()
    with pytest.raises(HttpError, match="longer than"):
        reader.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000)


@pytest.mark.parametrize("wire, needle", [
    (b"", "without answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "middle of the response header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "7 bytes before the end"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "chunked body"),
])
def test_early_close_is_an_error(wire: bytes, needle: str) -> None:
    reader = ResponseReader()
    reader.feed(wire)
    with pytest.raises(HttpError, match=needle):
        reader.feed_eof()
