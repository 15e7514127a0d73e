"""HTTP/1.1 client messages, sans-I/O: the URL, the request bytes, and a response reader fed stream bytes.

The reader finds the end of the body the way RFC 9112 section 6.3 orders it: no body for HEAD, 1xx,
204 and 304; ``Transfer-Encoding: chunked``; ``Content-Length``; otherwise the body runs until the
server closes. Interim 1xx responses are skipped. Bad framing is an :class:`HttpError`, never a guess.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pystack import __version__

MAX_HEAD = 64 * 1024
"""Status line plus headers (and a chunk's size line or trailers) longer than this are refused."""
MAX_LINE = 8 * 1024

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_STATUS = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$")


class HttpError(Exception):
    """The response cannot be read (malformed, or cut short); the message is one line for the user."""


class UrlError(ValueError):
    """Not a URL ``pystack fetch`` can get."""


DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Url:
    host: str
    port: int
    target: str
    """The request target: path and query, never empty (RFC 9112 section 3.2.1)."""
    scheme: str = "http"
    """http, or https: TLS over the connection (RFC 9110 4.2.2)."""

    @property
    def host_header(self) -> str:
        """RFC 9110 7.2: an IPv6 literal in brackets, the port when it is not the scheme's."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"

    @property
    def text(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.target}"

    @property
    def is_literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def parse_url(text: str) -> Url:
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed [ of an IPv6 literal
        raise UrlError(f"bad host in URL {text!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlError(f"not an http:// or https:// URL: {text!r}")
    if parts.username is not None or parts.password is not None:
        raise UrlError("user names and passwords in URLs are not supported")
    try:
        host = parts.hostname
    except ValueError:
        raise UrlError(f"bad host in URL {text!r}") from None
    if not host:
        raise UrlError(f"no host in URL {text!r}")
    if ":" in host:  # RFC 3986 3.2.2: an IPv6 literal, which urlsplit took out of its brackets
        if "%" in host:
            raise UrlError("IPv6 zone identifiers (%...) are not supported")
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise UrlError(f"bad IPv6 address in URL {text!r}") from None
    try:
        port = parts.port if parts.port is not None else DEFAULT_PORTS[scheme]
    except ValueError:
        raise UrlError(f"bad port in URL {text!r}") from None
    if port == 0:
        raise UrlError(f"bad port in URL {text!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if any(c in target for c in " \r\n\t") or any(ord(c) > 0x7E for c in target):
        raise UrlError(f"characters in the URL's path must be percent-encoded: {text!r}")
    return Url(host.lower(), port, target, scheme)


def build_request(url: Url, method: str = "GET", extra: list[tuple[str, str]] | None = None) -> bytes:
    """A request as curl sends one: HTTP/1.1, Host, a User-Agent, ``Accept: */*``.

    No ``Connection: close``: like curl, the client closes once it has the whole response, so the
    client's side of the connection is the one that goes through TIME_WAIT (RFC 9293 3.6).
    """
    lines = [f"{method} {url.target} HTTP/1.1", f"Host: {url.host_header}",
             f"User-Agent: pystack/{__version__}", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@dataclass
class Response:
    version: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of ``name`` (case-insensitive), or None."""
        key = name.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.headers if k.lower() == key]

    @property
    def status_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}".rstrip()


class ResponseReader:
    """Feed it what the connection delivers; it returns body bytes (de-chunked) as they become known."""

    def __init__(self, method: str = "GET") -> None:
        self.method = method.upper()
        self.response: Response | None = None
        """Set once the final (non-1xx) status line and headers are complete."""
        self.interim: list[Response] = []
        self.framing = ""
        """"length", "chunked", "close" (until the server closes) or "none" once the head is read."""
        self.complete = False
        self.body_bytes = 0
        self._buf = bytearray()
        self._left = 0
        self._chunk_state = "size"  # size, data, data_crlf, trailers

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes | memoryview) -> bytes:
        if self.complete:
            if data:
                self._buf += data  # bytes after the response: not ours to read (kept for the caller)
            return b""
        self._buf += data
        out = bytearray()
        while not self.complete:
            if self.response is None:
                if not self._read_head():
                    break
                continue
            piece = self._read_body()
            if piece is None:
                break
            out += piece
        self.body_bytes += len(out)
        return bytes(out)

    def feed_eof(self) -> bytes:
        """The server closed its side. Ends a read-until-close body; anything else unfinished is an error."""
        if self.complete:
            return b""
        if self.response is None:
            if not self._buf and not self.interim:
                raise HttpError("the server closed the connection without answering")
            raise HttpError("the server closed the connection in the middle of the response header")
        if self.framing == "close":
            rest = bytes(self._buf)
            self._buf.clear()
            self.body_bytes += len(rest)
            self.complete = True
            return rest
        if self.framing == "length":
            raise HttpError(f"the server closed the connection {self._left} bytes before the end of the body "
                            f"(Content-Length {self.body_bytes + self._left})")
        raise HttpError("the server closed the connection in the middle of a chunked body")

    @property
    def leftover(self) -> bytes:
        """Bytes received after the end of the response."""
        return bytes(self._buf) if self.complete else b""

    # ------------------------------------------------------------------ the head

    def _read_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            # RFC 9112 section 2.2: a bare LF ends a line too, but we ask for the CRLF servers send.
            if len(self._buf) > MAX_HEAD:
                raise HttpError(f"response header longer than {MAX_HEAD} bytes")
            return False
        if end > MAX_HEAD:
            raise HttpError(f"response header longer than {MAX_HEAD} bytes")
        head = bytes(self._buf[:end])
        del self._buf[:end + 4]
        lines = head.split(b"\r\n")
        m = _STATUS.match(lines[0])
        if not m:
            raise HttpError(f"not an HTTP response: {_show(lines[0])}")
        if m.group(1) != b"1":
            raise HttpError(f"unsupported HTTP version {m.group(1).decode()}.{m.group(2).decode()}")
        response = Response(f"HTTP/1.{m.group(2).decode()}", int(m.group(3)),
                            (m.group(4) or b"").decode("latin-1"))
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                raise HttpError("obsolete header line folding in the response")  # RFC 9112 5.2
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.match(name):
                raise HttpError(f"malformed header line: {_show(line)}")
            response.headers.append((name.decode("ascii"), value.strip(b" \t").decode("latin-1")))
        if 100 <= response.status < 200:
            if response.status == 101:
                raise HttpError("the server switched protocols (101), which this client did not ask for")
            self.interim.append(response)
            return True
        self.response = response
        self._choose_framing(response)
        return True

    def _choose_framing(self, r: Response) -> None:
        """RFC 9112 section 6.3, in its order."""
        if self.method == "HEAD" or r.status in (204, 304):
            self.framing = "none"
            self.complete = True
            return
        codings = [c.strip().lower() for v in r.header_values("Transfer-Encoding") for c in v.split(",") if c.strip()]
        if codings:
            if codings[-1] != "chunked":
                self.framing = "close"  # 6.3 item 4: read until the server closes
                return
            if codings != ["chunked"]:
                raise HttpError(f"unsupported transfer coding: {', '.join(codings)}")
            self.framing = "chunked"
            return
        lengths = {part.strip() for value in r.header_values("Content-Length") for part in value.split(",")}
        if lengths:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise HttpError(f"invalid Content-Length: {', '.join(sorted(lengths))}")  # 6.3 item 5
            self.framing = "length"
            self._left = int(next(iter(lengths)))
            if self._left == 0:
                self.complete = True
            return
        self.framing = "close"

    # ------------------------------------------------------------------ the body

    def _read_body(self) -> bytes | None:
        """Some body bytes, b"" if only framing was consumed, None when more input is needed."""
        if self.framing == "close":
            if not self._buf:
                return None
            out = bytes(self._buf)
            self._buf.clear()
            return out
        if self.framing == "length":
            if not self._buf:
                return None
            n = min(self._left, len(self._buf))
            out = bytes(self._buf[:n])
            del self._buf[:n]
            self._left -= n
            if self._left == 0:
                self.complete = True
            return out
        return self._read_chunked()

    def _read_chunked(self) -> bytes | None:
        """RFC 9112 section 7.1: size line (extensions ignored), data, CRLF; a zero size, trailers, CRLF."""
        state = self._chunk_state
        if state == "size":
            line = self._line()
            if line is None:
                return None
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not size_text or not all(c in b"0123456789abcdefABCDEF" for c in size_text) or len(size_text) > 15:
                raise HttpError(f"bad chunk size line: {_show(line)}")
            self._left = int(size_text, 16)
            self._chunk_state = "data" if self._left else "trailers"
            return b""
        if state == "data":
            if not self._buf:
                return None
            n = min(self._left, len(self._buf))
            out = bytes(self._buf[:n])
            del self._buf[:n]
            self._left -= n
            if self._left == 0:
                self._chunk_state = "data_crlf"
            return out
        if state == "data_crlf":
            if len(self._buf) < 2:
                return None
            if self._buf[:2] != b"\r\n":
                raise HttpError("chunk data not followed by CRLF")
            del self._buf[:2]
            self._chunk_state = "size"
            return b""
        line = self._line()  # trailers: header lines until an empty one
        if line is None:
            return None
        if line == b"":
            self.complete = True
        return b""

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > MAX_LINE:
                raise HttpError(f"chunk size or trailer line longer than {MAX_LINE} bytes")
            return None
        line = bytes(self._buf[:end])
        del self._buf[:end + 2]
        return line


def _show(raw: bytes) -> str:
    text = raw[:80].decode("latin-1")
    return repr(text + ("..." if len(raw) > 80 else ""))
