"""TLS over sockets the kernel does not own: ``ssl``'s SSLObject between two MemoryBIOs, fed by a
pystack socket.

``ssl.SSLContext.wrap_socket`` hands a kernel descriptor to OpenSSL, which a pystack socket does not
have; ``SSLContext.wrap_bio`` keeps OpenSSL away from I/O, so the bytes can travel over anything.
:class:`TlsSocket` is what ``wrap_socket`` returns, in the shape of ``ssl.SSLSocket``: the handshake,
read/write and recv/send, ``makefile``, ``getpeercert``, ``cipher``, ``version``, ``unwrap``; the other
socket calls go to the socket underneath. :func:`install` makes ``SSLContext.wrap_socket`` do this for
pystack sockets, which is what lets ``http.client``, ``urllib``, ``smtplib`` and ``ftplib`` speak TLS
under ``pystack exec``; asyncio needs nothing, its TLS already runs over a MemoryBIO.
"""

from __future__ import annotations

import socket as _socket
import ssl
from typing import Any

RECV_SIZE = 65536


class TlsSocket:
    """A TLS connection over ``sock`` (anything with recv, sendall, settimeout ... in the socket shape).

    Blocking as ``sock`` is: with a timeout the socket's timeout errors come through; a non-blocking
    socket raises ``ssl.SSLWantReadError`` / ``SSLWantWriteError`` as an SSLSocket does.
    """

    def __init__(self, sock: Any, context: ssl.SSLContext, server_side: bool = False,
                 server_hostname: str | None = None, do_handshake_on_connect: bool = True,
                 suppress_ragged_eofs: bool = True, session: ssl.SSLSession | None = None) -> None:
        if server_side and server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if context.check_hostname and not server_side and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        self._sock = sock
        self._context = context
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._incoming, self._outgoing, server_side, server_hostname, session)
        self._unsent = bytearray()
        self._suppress_ragged_eofs = suppress_ragged_eofs
        self._io_refs = 0
        self._closed = False
        if do_handshake_on_connect and self._connected():
            self.do_handshake()

    def _connected(self) -> bool:
        try:
            self._sock.getpeername()
        except OSError:
            return False
        return True

    # -- moving bytes between the BIOs and the socket
    def _flush(self) -> None:
        """Send what OpenSSL produced; a non-blocking socket that takes no more leaves it for next time."""
        self._unsent += self._outgoing.read()
        while self._unsent:
            try:
                n = self._sock.send(self._unsent)
            except BlockingIOError:
                raise ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE,
                                            "The operation did not complete (write)") from None
            del self._unsent[:n]

    def _fill(self) -> None:
        """Read what the peer sent into OpenSSL (its EOF too)."""
        try:
            data = self._sock.recv(RECV_SIZE)
        except BlockingIOError:
            raise ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)") from None
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def _drive(self, step: Any, *args: Any) -> Any:
        """Run one SSLObject call to completion, moving bytes as it asks."""
        while True:
            try:
                result = step(*args)
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
                continue
            except ssl.SSLWantWriteError:
                self._flush()
                continue
            self._flush()
            return result

    # -- TLS
    def do_handshake(self, block: bool = False) -> None:
        self._drive(self._obj.do_handshake)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        try:
            if buffer is not None:
                return self._drive(self._obj.read, len, buffer)
            return self._drive(self._obj.read, len)
        except ssl.SSLZeroReturnError:  # the peer's close_notify
            return 0 if buffer is not None else b""
        except ssl.SSLEOFError:
            if self._suppress_ragged_eofs:
                return 0 if buffer is not None else b""
            raise

    def write(self, data: Any) -> int:
        return int(self._drive(self._obj.write, data))

    def pending(self) -> int:
        return self._obj.pending()

    def unwrap(self) -> Any:
        """Send and await close_notify; the socket underneath, for plain text again."""
        self._drive(self._obj.unwrap)
        return self._sock

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._obj.getpeercert(binary_form)

    def cipher(self) -> tuple[str, str, int] | None:
        return self._obj.cipher()

    def shared_ciphers(self) -> Any:
        return self._obj.shared_ciphers()

    def compression(self) -> str | None:
        return self._obj.compression()

    def version(self) -> str | None:
        return self._obj.version()

    def selected_alpn_protocol(self) -> str | None:
        return self._obj.selected_alpn_protocol()

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        return self._obj.get_channel_binding(cb_type)

    context = property(lambda self: self._context)
    server_side = property(lambda self: self._obj.server_side)
    server_hostname = property(lambda self: self._obj.server_hostname)
    session = property(lambda self: self._obj.session)
    session_reused = property(lambda self: self._obj.session_reused)

    # -- the socket calls
    def recv(self, bufsize: int = 1024, flags: int = 0) -> bytes:
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv() on TlsSocket")
        return self.read(bufsize)  # type: ignore[no-any-return]

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv_into() on TlsSocket")
        return self.read(nbytes or memoryview(buffer).nbytes, buffer)  # type: ignore[no-any-return]

    def send(self, data: Any, flags: int = 0) -> int:
        if flags:
            raise ValueError("non-zero flags not allowed in calls to send() on TlsSocket")
        return self.write(data)

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            view = view[self.send(view, flags):]

    def connect(self, address: Any) -> None:
        self._sock.connect(address)
        self.do_handshake()

    def accept(self) -> tuple[TlsSocket, Any]:
        conn, address = self._sock.accept()
        return TlsSocket(conn, self._context, server_side=True), address

    makefile = _socket.socket.makefile
    _decref_socketios = _socket.socket._decref_socketios
    close = _socket.socket.close
    __enter__ = _socket.socket.__enter__
    __exit__ = _socket.socket.__exit__

    def _real_close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        """fileno, settimeout, getpeername, setsockopt, shutdown ...: the socket underneath's."""
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<pystack TlsSocket {self.version() or 'before the handshake'} over {self._sock!r}>"


def install() -> None:
    """Make ``ssl.SSLContext.wrap_socket`` return a :class:`TlsSocket` for pystack sockets (kernel sockets
    still get an ``ssl.SSLSocket``)."""
    if getattr(ssl.SSLContext.wrap_socket, "_pystack", False):
        return
    kernel_wrap = ssl.SSLContext.wrap_socket

    def wrap_socket(self: ssl.SSLContext, sock: Any, server_side: bool = False, do_handshake_on_connect: bool = True,
                    suppress_ragged_eofs: bool = True, server_hostname: str | None = None,
                    session: ssl.SSLSession | None = None) -> Any:
        if isinstance(sock, _socket.socket):
            return kernel_wrap(self, sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                               server_hostname, session)
        return TlsSocket(sock, self, server_side, server_hostname, do_handshake_on_connect, suppress_ragged_eofs,
                         session)

    wrap_socket._pystack = True  # type: ignore[attr-defined]
    ssl.SSLContext.wrap_socket = wrap_socket  # type: ignore[method-assign]
