"""One HTTP/1.1 server connection as a byte-in, byte-out state machine (RFC 9112), with no transport.

The TCP glue feeds received bytes to :meth:`HttpSession.data_received` and sends what
:meth:`HttpSession.pull` hands out, as fast as the send window allows. Files stream from disk in
chunks, and ``POST /sha256`` hashes the body as it arrives, so memory does not grow with sizes.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import mimetypes
import os
import stat
import time
import urllib.parse
from pathlib import Path
from typing import BinaryIO

from pystack.config import HttpConfig

SERVER = "pystack"

_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Content Too Large", 431: "Request Header Fields Too Large",
            501: "Not Implemented", 505: "HTTP Version Not Supported"}


class SmallFileCache:
    """Bodies of small files, for the GETs that come again and again (a site's pages, the benchmark's
    file): a hit costs the lstat that locating the file takes anyway, where a miss opens, stats, reads
    and closes it. Bounded in bytes and entries (least recently used goes first): ``HttpConfig.cache_bytes``
    and ``cache_entries``. One server's sessions share one cache (paths are absolute and resolved).

    An entry is used only while the file's lstat shows the same (device, inode, size, mtime, ctime), and
    a file is taken in only once its ctime is ``cache_settle`` seconds old, as git does for racily clean
    files: timestamps tick coarsely (a few ms), so a file written twice within one tick, to the same size,
    would otherwise look unchanged. Any later change sets ctime to a later tick.
    """

    def __init__(self, config: HttpConfig) -> None:
        self.max_bytes = config.cache_bytes
        self.max_entries = config.cache_entries
        self.settle = config.cache_settle
        self.bytes = 0
        self._entries: dict[str, tuple[tuple[int, int, int, int, int], bytes, bytes]] = {}

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def get(self, path: str, st: os.stat_result) -> tuple[bytes, bytes] | None:
        """(body, content type) of ``path`` if ``st`` (its lstat) shows the file that was cached."""
        entry = self._entries.get(path)
        if entry is None:
            return None
        if entry[0] != self._key(st):
            self._drop(path)
            return None
        self._entries[path] = self._entries.pop(path)  # most recently used last
        return entry[1], entry[2]

    def put(self, path: str, st: os.stat_result, body: bytes, ctype: bytes) -> None:
        if not stat.S_ISREG(st.st_mode) or len(body) > self.max_bytes or st.st_ctime > time.time() - self.settle:
            return
        self._drop(path)
        entries = self._entries
        while entries and (self.bytes + len(body) > self.max_bytes or len(entries) >= self.max_entries):
            self._drop(next(iter(entries)))
        entries[path] = (self._key(st), body, ctype)
        self.bytes += len(body)

    def _drop(self, path: str) -> None:
        entry = self._entries.pop(path, None)
        if entry is not None:
            self.bytes -= len(entry[1])

    def __len__(self) -> int:
        return len(self._entries)


class HttpSession:
    """Serves files under ``root`` and ``POST /sha256``. One request at a time, in order. ``files``: the
    server's cache of small files (None: none kept)."""

    def __init__(self, root: str | os.PathLike[str], config: HttpConfig | None = None,
                 files: SmallFileCache | None = None) -> None:
        self.config = config or HttpConfig()
        self.files = files
        self.root = _resolved(os.fspath(root))
        self._root_prefix = os.path.join(self.root, "")
        self._in = bytearray()
        self._out = bytearray()
        self._file: BinaryIO | None = None
        self._file_left = 0
        self._body_left = 0
        self._body_chunked = False
        self._chunk_state: _ChunkedDecoder | None = None
        self._hasher: hashlib._Hash | None = None
        self._keep_alive = True
        self.closing = False
        """True once the connection must close after the pending output is sent."""
        self.requests = 0

    # ---------------------------------------------------------------- input

    @property
    def wants_input(self) -> bool:
        """False while enough input is buffered; the glue then leaves data in the TCP receive buffer."""
        return not self.closing and len(self._in) < self.config.max_buffered_input

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self._in += data
        self._process()

    def eof_received(self) -> None:
        """The client half-closed: finish the response in progress, then close."""
        self._keep_alive = False
        if self._hasher is not None:  # the body was cut short
            self._hasher = None
            self._chunk_state = None
            self._error(400, "request body ended early")
        elif not self._busy():
            self.closing = True

    def _busy(self) -> bool:
        return bool(self._out) or self._file is not None or self._hasher is not None

    def _process(self) -> None:
        while not self.closing:
            if self._hasher is not None:
                if not self._consume_body():
                    return
                continue
            if self._file is not None or self._out:
                return  # one response at a time; the rest of the input waits
            end = self._in.find(b"\r\n\r\n")
            limit = self.config.max_header_bytes
            if end < 0:
                if len(self._in) > limit:
                    self._error(431, "request header too large")
                return
            if end > limit:
                self._error(431, "request header too large")
                return
            head = bytes(self._in[:end])
            del self._in[: end + 4]
            self._handle(head)

    def _handle(self, head: bytes) -> None:
        self.requests += 1
        lines = head.split(b"\r\n")
        while lines and not lines[0]:
            lines.pop(0)  # RFC 9112 2.2: ignore empty lines before the request line
        parts = lines[0].split(b" ") if lines else []
        if len(parts) != 3:
            self._error(400, "malformed request line")
            return
        method, target, version = parts
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            if version.startswith(b"HTTP/"):
                self._error(505, "only HTTP/1.0 and HTTP/1.1")
            else:
                self._error(400, "malformed request line")
            return
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                self._error(400, "malformed header field")
                return
            key = name.lower()
            value = value.strip()
            if key in headers and key in (b"content-length", b"host"):
                if headers[key] != value:
                    self._error(400, f"conflicting {key.decode()} fields")
                    return
            headers[key] = value
        connection = headers.get(b"connection", b"").lower()
        if version == b"HTTP/1.0":
            self._keep_alive = b"keep-alive" in connection
        else:
            self._keep_alive = b"close" not in connection
        body_len = 0
        te = headers.get(b"transfer-encoding")
        if te is not None:
            if te.lower() != b"chunked":
                self._error(501, "unsupported transfer-encoding")
                return
            self._body_chunked = True
        elif b"content-length" in headers:
            raw = headers[b"content-length"]
            if not raw.isdigit() or len(raw) > 18:
                self._error(400, "bad content-length")
                return
            body_len = int(raw)
        path = urllib.parse.unquote(target.split(b"?", 1)[0].decode("latin-1"))
        if method == b"POST" and path == "/sha256":
            if te is None and b"content-length" not in headers:
                self._error(411, "POST needs a body length")
                return
            if headers.get(b"expect", b"").lower() == b"100-continue" and version == b"HTTP/1.1":
                # RFC 9110 10.1.1: say "go ahead" so the client does not wait before sending the body.
                self._out += b"HTTP/1.1 100 Continue\r\n\r\n"
            self._hasher = hashlib.sha256()
            self._body_left = body_len
            if self._body_chunked:
                self._chunk_state = _ChunkedDecoder()
            self._consume_body()
            return
        if te is not None or body_len:
            # A body we do not want: we close afterwards rather than read and discard it.
            self._keep_alive = False
        if method not in (b"GET", b"HEAD"):
            self._error(405, "only GET, HEAD and POST /sha256", extra=b"Allow: GET, HEAD, POST\r\n")
            return
        self._serve_file(path, head_only=method == b"HEAD")

    def _consume_body(self) -> bool:
        """Hash what arrived of the body. True when the body is complete and answered."""
        assert self._hasher is not None
        if self._chunk_state is not None:
            try:
                done = self._chunk_state.feed(self._in, self._hasher)
            except ValueError as exc:
                self._hasher = None
                self._error(400, str(exc))
                return False
            if not done:
                return False
        else:
            take = min(self._body_left, len(self._in))
            if take:
                self._hasher.update(memoryview(self._in)[:take])
                del self._in[:take]
                self._body_left -= take
            if self._body_left:
                return False
        digest = self._hasher.hexdigest().encode() + b"\n"
        self._hasher = None
        self._chunk_state = None
        self._body_chunked = False
        self._respond(200, digest, b"text/plain")
        return True

    # ---------------------------------------------------------------- responses

    def _locate(self, path: str) -> tuple[str, os.stat_result | None]:
        """The file ``path`` names under the root, with ``..`` and symbolic links resolved, and the lstat
        of its last component when that was taken (None after a link or ``..``); refused
        (FileNotFoundError) when the file lies outside the root, so links are followed only inward.

        The root was resolved once, so only the components below it are looked at: a plain file costs
        one lstat, where os.path.realpath of the whole path costs one per component (a third of the
        work of a small GET). At the first link it hands the whole path to realpath, which follows it."""
        root = self.root
        current = root
        st = None
        for part in path.split("/"):
            if not part or part == ".":
                continue
            if part == "..":
                if current == root:
                    raise FileNotFoundError(path)  # above the root
                current = os.path.dirname(current)
                st = None
                continue
            candidate = (current if current != "/" else "") + "/" + part
            st = os.lstat(candidate)
            if stat.S_ISLNK(st.st_mode):
                target = os.path.realpath(os.path.join(root, path.lstrip("/")))
                if target != root and not target.startswith(self._root_prefix):
                    raise FileNotFoundError(path)
                return target, None
            current = candidate
        return current, st

    def _serve_file(self, path: str, head_only: bool) -> None:
        try:
            target, st = self._locate(path)
            files = self.files
            if st is not None and files is not None and (cached := files.get(target, st)) is not None:
                body, ctype = cached  # the lstat just taken shows the very file that was read
                self._out += self._head(200, len(body), ctype) + (b"" if head_only else body)
                self._finish()
                return
            try:
                fh = open(target, "rb")
            except IsADirectoryError:
                target, st = self._locate(path.rstrip("/") + "/index.html")
                fh = open(target, "rb")
        except (OSError, ValueError):
            self._error(404, "not found")
            return
        st = os.fstat(fh.fileno())
        size = st.st_size
        ctype = _content_type(os.path.basename(target))
        if head_only or size == 0:
            fh.close()
            self._out += self._head(200, size, ctype)
            self._finish()
        elif size <= self.config.small_file:
            # Whole, now: no open file held between pulls, one buffer for head and body. Read at most
            # the size fstat gave, and announce what was read: a file changing meanwhile still gets a
            # length that matches the body.
            with fh:
                body = fh.read(size)
            if len(body) == size and self.files is not None:
                self.files.put(target, st, body, ctype)
            self._out += self._head(200, len(body), ctype) + body
            self._finish()
        else:
            self._out += self._head(200, size, ctype)
            self._file = fh
            self._file_left = size

    def _respond(self, status: int, body: bytes, ctype: bytes, extra: bytes = b"") -> None:
        self._out += self._head(status, len(body), ctype, extra) + body
        self._finish()

    def _error(self, status: int, why: str, extra: bytes = b"") -> None:
        if status >= 400 and status != 404 and status != 405:
            self._keep_alive = False  # after a framing error the rest of the stream cannot be trusted
        self._respond(status, f"{status} {_REASONS[status]}: {why}\n".encode(), b"text/plain", extra)

    def _head(self, status: int, length: int, ctype: bytes, extra: bytes = b"") -> bytes:
        return (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"Server: {SERVER}\r\nDate: {_http_date(int(time.time()))}\r\n"
            f"Content-Type: {ctype.decode()}\r\nContent-Length: {length}\r\n"
            f"Connection: {'keep-alive' if self._keep_alive else 'close'}\r\n"
        ).encode() + extra + b"\r\n"

    def _finish(self) -> None:
        if not self._keep_alive:
            self.closing = True

    # ---------------------------------------------------------------- output

    def pull(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of response, read from disk only as needed."""
        if self._file is not None and not self._out:
            data = self._read_file(min(limit, self._file_left))  # the body's bulk: one copy, from the file
        else:
            if len(self._out) < limit and self._file is not None:
                # Just what tops the headers up to ``limit``: the buffer then empties, and the next pull
                # reads the body straight from the file.
                self._out += self._read_file(min(limit - len(self._out), self._file_left))
            data = bytes(self._out[:limit])
            del self._out[:limit]
        if not self._out and self._file is None and not self.closing:
            if self._keep_alive or self._hasher is not None:
                self._process()  # the body still to come (after 100 Continue), or the next request
            else:
                self.closing = True
        return data

    def _read_file(self, want: int) -> bytes:
        assert self._file is not None
        chunk = self._file.read(want)
        if not chunk:
            chunk = b""
            self._file_left = 0  # the file shrank under us; the connection must close
            self._keep_alive = False
            self.closing = True
        self._file_left -= len(chunk)
        if self._file_left <= 0:
            self._file.close()
            self._file = None
            self._finish()
        return chunk

    @property
    def has_output(self) -> bool:
        return bool(self._out) or self._file is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@functools.lru_cache(maxsize=8)
def _resolved(root: str) -> str:
    """The document root with its links resolved, once per root rather than once per connection."""
    return str(Path(root).resolve())


@functools.lru_cache(maxsize=256)
def _content_type(name: str) -> bytes:
    """Content-Type for a file name, as mimetypes guesses it (cached: the guess is a dozen dict lookups
    and string operations per request, for a handful of distinct names)."""
    return (mimetypes.guess_type(name)[0] or "application/octet-stream").encode()


@functools.lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    """The Date header value (RFC 9110 6.6.1), made once per second."""
    return email.utils.formatdate(second, usegmt=True)


class _ChunkedDecoder:
    """RFC 9112 section 7.1 chunked body, fed incrementally; trailers are skipped."""

    def __init__(self) -> None:
        self.left = -1  # bytes left of the current chunk; -1 = expecting a size line
        self.need_crlf = False
        self.trailers = False

    def feed(self, buf: bytearray, hasher: hashlib._Hash) -> bool:
        while True:
            if self.trailers:
                end = buf.find(b"\r\n")
                if end < 0:
                    return False
                line = bytes(buf[:end])
                del buf[: end + 2]
                if not line:
                    return True
                continue
            if self.need_crlf:
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise ValueError("bad chunk terminator")
                del buf[:2]
                self.need_crlf = False
            if self.left < 0:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise ValueError("chunk size line too long")
                    return False
                size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                try:
                    self.left = int(size_text, 16)
                except ValueError:
                    raise ValueError("bad chunk size") from None
                if self.left < 0:
                    raise ValueError("bad chunk size")
                if self.left == 0:
                    self.trailers = True
                continue
            take = min(self.left, len(buf))
            if not take:
                return False
            hasher.update(memoryview(buf)[:take])
            del buf[:take]
            self.left -= take
            if self.left == 0:
                self.left = -1
                self.need_crlf = True
