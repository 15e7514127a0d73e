"""The HTTP/1.1 session logic, byte-in byte-out, checked against the stdlib's HTTP response parser."""

from __future__ import annotations

import hashlib
import http.client
import io

import pytest

from pystack.apps.http_session import HttpSession, SmallFileCache
from pystack.config import HttpConfig

MAX_HEADER_BYTES = HttpConfig().max_header_bytes
SMALL_FILE = HttpConfig().small_file


class _Unclosable(io.BytesIO):
    def close(self) -> None:  # http.client closes its file after each response; several share this one
        pass


class _Sock:
    def __init__(self, data: bytes) -> None:
        self._f = _Unclosable(data)

    def makefile(self, *_a, **_k):
        return self._f


def _drain(s: HttpSession) -> bytes:
    out = bytearray()
    while True:
        chunk = s.pull(10000)
        if not chunk:
            return bytes(out)
        out += chunk


def _responses(raw: bytes, methods: list[str]) -> list[tuple[int, dict, bytes]]:
    sock = _Sock(raw)
    got = []
    for m in methods:
        r = http.client.HTTPResponse(sock, method=m)
        r.begin()
        got.append((r.status, dict(r.getheaders()), r.read()))
    return got


@pytest.fixture
def root(tmp_path):
    (tmp_path / "hello.txt").write_bytes(b"hello world\n")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 4096)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_bytes(b"<p>index</p>")
    (tmp_path.parent / "secret.txt").write_bytes(b"do not serve")
    return tmp_path


def test_get_serves_the_file_with_length_and_type(root):
    s = HttpSession(root)
    s.data_received(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    [(status, headers, body)] = _responses(_drain(s), ["GET"])
    assert (status, body) == (200, b"hello world\n")
    assert headers["Content-Length"] == "12" and headers["Content-Type"] == "text/plain"
    assert not s.closing  # HTTP/1.1 keeps the connection alive


def test_keep_alive_serves_several_requests_in_order(root):
    s = HttpSession(root)
    s.data_received(b"GET /hello.txt HTTP/1.1\r\n\r\nHEAD /big.bin HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
    got = _responses(_drain(s), ["GET", "HEAD", "GET"])
    assert [g[0] for g in got] == [200, 200, 404]
    assert got[1][1]["Content-Length"] == str(256 * 4096) and got[1][2] == b""
    assert s.requests == 3


def test_large_file_streams_in_bounded_chunks(root):
    s = HttpSession(root)
    s.data_received(b"GET /big.bin HTTP/1.1\r\n\r\n")
    biggest = 0
    out = bytearray()
    while chunk := s.pull(1460):
        biggest = max(biggest, len(s._out))
        out += chunk
    [(status, _h, body)] = _responses(bytes(out), ["GET"])
    assert status == 200 and body == bytes(range(256)) * 4096
    assert biggest <= 2 * 65536  # the session never holds the file in memory


@pytest.mark.parametrize("size", [1, SMALL_FILE, SMALL_FILE + 1])
def test_small_files_are_read_whole_and_larger_ones_stream(root, size):
    data = bytes(i * 31 & 0xFF for i in range(size))
    (root / "edge.bin").write_bytes(data)
    s = HttpSession(root)
    s.data_received(b"GET /edge.bin HTTP/1.1\r\n\r\n")
    assert (s._file is None) == (size <= SMALL_FILE)  # no descriptor held between pulls for a small one
    [(status, headers, body)] = _responses(_drain(s), ["GET"])
    assert status == 200 and body == data and headers["Content-Length"] == str(size)
    assert s._file is None


@pytest.fixture
def settled_cache():
    """A fresh small-file cache that takes files at once (their ctime need not be a second old)."""
    return SmallFileCache(HttpConfig(cache_bytes=1 << 20, cache_entries=8, cache_settle=0.0))


def _get(root, path: bytes, files: SmallFileCache) -> tuple[int, bytes]:
    s = HttpSession(root, files=files)
    s.data_received(b"GET " + path + b" HTTP/1.1\r\n\r\n")
    [(status, _headers, body)] = _responses(_drain(s), ["GET"])
    return status, body


def test_a_small_file_is_served_from_memory_until_it_changes(root, settled_cache, monkeypatch):
    import os

    from pystack.apps import http_session

    assert _get(root, b"/hello.txt", settled_cache) == (200, b"hello world\n")
    assert len(settled_cache) == 1

    def no_open(*_a, **_k):
        raise AssertionError("opened a file the cache holds")

    monkeypatch.setattr(http_session, "open", no_open, raising=False)
    assert _get(root, b"/hello.txt", settled_cache) == (200, b"hello world\n")
    monkeypatch.undo()
    # The same size, new bytes, and a new mtime (within one timestamp tick only the settle rule protects).
    (root / "hello.txt").write_bytes(b"HELLO WORLD\n")
    st = os.stat(root / "hello.txt")
    os.utime(root / "hello.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert _get(root, b"/hello.txt", settled_cache) == (200, b"HELLO WORLD\n")


def test_a_file_just_written_is_not_cached(root):
    cache = SmallFileCache(HttpConfig(cache_bytes=1 << 20, cache_entries=8))
    import os
    path = str(root / "hello.txt")
    cache.put(path, os.stat(path), b"hello world\n", b"text/plain")
    assert len(cache) == 0  # its ctime is not cache_settle seconds old: a rewrite in the same tick would not show


def test_the_small_file_cache_is_bounded_in_bytes_and_entries(root):
    import os

    cache = SmallFileCache(HttpConfig(cache_bytes=1000, cache_entries=4, cache_settle=0.0))
    for i in range(20):
        path = root / f"f{i}"
        path.write_bytes(bytes(300))
        cache.put(str(path), os.stat(path), bytes(300), b"application/octet-stream")
        assert cache.bytes <= 1000 and len(cache) <= 4
    assert cache.bytes == 900 and cache.get(str(root / "f19"), os.stat(root / "f19")) is not None
    assert cache.get(str(root / "f0"), os.stat(root / "f0")) is None  # the least recently used went first


def test_post_sha256_hashes_the_body_as_it_arrives(root):
    body = bytes(range(256)) * 1000
    s = HttpSession(root)
    s.data_received(b"POST /sha256 HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body))
    for i in range(0, len(body), 1000):
        s.data_received(body[i:i + 1000])
    [(status, _h, answer)] = _responses(_drain(s), ["POST"])
    assert status == 200 and answer.strip().decode() == hashlib.sha256(body).hexdigest()


def test_post_sha256_with_chunked_body(root):
    s = HttpSession(root)
    s.data_received(b"POST /sha256 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n")
    [(status, _h, answer)] = _responses(_drain(s), ["POST"])
    assert status == 200 and answer.strip().decode() == hashlib.sha256(b"hello world").hexdigest()


@pytest.mark.parametrize("request_bytes,status", [
    (b"DELETE /hello.txt HTTP/1.1\r\n\r\n", 405),
    (b"GET /../secret.txt HTTP/1.1\r\n\r\n", 404),
    (b"GET /%2e%2e/secret.txt HTTP/1.1\r\n\r\n", 404),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET /hello.txt HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    (b"POST /sha256 HTTP/1.1\r\n\r\n", 411),
    (b"POST /sha256 HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
    (b"GET /hello.txt HTTP/1.1\r\nX: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n", 431),
])
def test_bad_requests_get_their_status(root, request_bytes, status):
    s = HttpSession(root)
    s.data_received(request_bytes)
    [(got, _h, _b)] = _responses(_drain(s), ["GET"])
    assert got == status


def test_directory_serves_its_index(root):
    s = HttpSession(root)
    s.data_received(b"GET /sub/ HTTP/1.1\r\n\r\n")
    [(status, headers, body)] = _responses(_drain(s), ["GET"])
    assert status == 200 and body == b"<p>index</p>" and headers["Content-Type"] == "text/html"


def test_connection_close_and_http10_close_after_the_response(root):
    for req in (b"GET /hello.txt HTTP/1.1\r\nConnection: close\r\n\r\n", b"GET /hello.txt HTTP/1.0\r\n\r\n"):
        s = HttpSession(root)
        s.data_received(req)
        [(status, headers, _b)] = _responses(_drain(s), ["GET"])
        assert status == 200 and headers["Connection"] == "close" and s.closing


def test_half_close_after_request_still_gets_the_answer_then_closes(root):
    s = HttpSession(root)
    s.data_received(b"GET /hello.txt HTTP/1.1\r\n\r\n")
    s.eof_received()
    [(status, _h, body)] = _responses(_drain(s), ["GET"])
    assert status == 200 and body == b"hello world\n" and s.closing


def test_body_cut_short_is_400_and_close(root):
    s = HttpSession(root)
    s.data_received(b"POST /sha256 HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
    s.eof_received()
    [(status, _h, _b)] = _responses(_drain(s), ["POST"])
    assert status == 400 and s.closing


def test_expect_100_continue_gets_the_interim_response_before_the_body(root):
    s = HttpSession(root)
    s.data_received(b"POST /sha256 HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert s.pull(1000) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.data_received(b"abc")
    [(status, _h, answer)] = _responses(_drain(s), ["POST"])
    assert status == 200 and answer.strip().decode() == hashlib.sha256(b"abc").hexdigest()


def test_connection_close_with_100_continue_waits_for_the_body(root):
    s = HttpSession(root)
    s.data_received(b"POST /sha256 HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
                    b"Connection: close\r\n\r\n")
    assert s.pull(1000) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not s.closing
    s.data_received(b"abc")
    [(status, _h, answer)] = _responses(_drain(s), ["POST"])
    assert status == 200 and answer.strip().decode() == hashlib.sha256(b"abc").hexdigest() and s.closing


# --- symbolic links and "..": followed inward only -----------------------------------------------------


@pytest.fixture
def linked_root(root):
    """root plus links: to a file inside, to the secret outside, to a directory inside and outside, and an
    index.html in a directory that is a link to the secret."""
    (root / "inside.txt").symlink_to(root / "hello.txt")
    (root / "outside.txt").symlink_to(root.parent / "secret.txt")
    (root / "subdir-link").symlink_to(root / "sub")
    (root / "escape").symlink_to(root.parent)
    (root / "trap").mkdir()
    (root / "trap" / "index.html").symlink_to(root.parent / "secret.txt")
    return root


@pytest.mark.parametrize("target, status, body", [
    (b"/inside.txt", 200, b"hello world\n"),
    (b"/sub/../hello.txt", 200, b"hello world\n"),
    (b"/./sub/./index.html", 200, b"<p>index</p>"),
    (b"//hello.txt", 200, b"hello world\n"),
    (b"/subdir-link/index.html", 200, b"<p>index</p>"),
    (b"/subdir-link/", 200, b"<p>index</p>"),
    (b"/subdir-link/../hello.txt", 200, b"hello world\n"),  # the link's parent is the root
    (b"/outside.txt", 404, None),
    (b"/escape/secret.txt", 404, None),
    (b"/escape/" + b"x/../secret.txt", 404, None),
    (b"/sub/../../secret.txt", 404, None),
    (b"/trap/", 404, None),  # a directory's index.html that is a link outward
    (b"/hello.txt/x", 404, None),
    (b"/nothing/here.txt", 404, None),
])
def test_links_and_dot_dot_are_followed_inward_only(linked_root, target, status, body):
    s = HttpSession(linked_root)
    s.data_received(b"GET " + target + b" HTTP/1.1\r\n\r\n")
    [(got, _h, answer)] = _responses(_drain(s), ["GET"])
    assert got == status
    if body is not None:
        assert answer == body
    else:
        assert b"do not serve" not in answer
