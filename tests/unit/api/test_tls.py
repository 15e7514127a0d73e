"""TLS over pystack sockets (pystack/api/tls.py): OpenSSL through MemoryBIOs, both ends on pystack."""

from __future__ import annotations

import shutil
import socket as kernel_socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

import pystack.socket as ps
from pystack.api import socket as api
from pystack.api import tls
from pystack.api.names import Names

from .conftest import B_IP

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (debian-packages.txt)")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for B's address, and its key."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=b.test",
                    "-addext", f"subjectAltName=IP:{B_IP}"], check=True, capture_output=True, timeout=60)
    return d / "cert.pem", d / "key.pem"


def _server(rb, cert: tuple[Path, Path], port: int) -> api.TcpSocket:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    listener = api.socket(rb, type=api.SOCK_STREAM)
    listener.bind(("", port))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(10)
        try:
            with tls.TlsSocket(conn, context, server_side=True) as s:
                f = s.makefile("rwb")
                while line := f.readline():
                    f.write(line.upper())
                    f.flush()
                f.close()
        except OSError:  # ssl.SSLError too: a client that refused the certificate
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_a_tls_conversation_with_both_ends_on_pystack(runtimes, cert):
    ra, rb = runtimes
    listener = _server(rb, cert, 8443)
    sock = api.socket(ra, type=api.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect((B_IP, 8443))
    s = tls.TlsSocket(sock, ssl.create_default_context(cafile=str(cert[0])), server_hostname=B_IP)
    assert s.version() == "TLSv1.3" and s.cipher() is not None
    assert dict(item[0] for item in s.getpeercert()["subject"]) == {"commonName": "b.test"}
    s.sendall(b"hello over tls\n" * 1000)
    got = b""
    while len(got) < 15 * 1000:
        got += s.recv(65536)
    assert got == b"HELLO OVER TLS\n" * 1000
    assert s.getpeername() == (B_IP, 8443)  # the socket calls go to the socket underneath
    s.close()
    listener.close()


def test_the_certificate_is_checked(runtimes, cert):
    ra, rb = runtimes
    listener = _server(rb, cert, 8444)
    sock = api.socket(ra, type=api.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect((B_IP, 8444))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls.TlsSocket(sock, ssl.create_default_context(), server_hostname=B_IP)  # the system's CAs only
    sock.close()
    listener.close()


def test_a_nonblocking_socket_wants_to_read(runtimes, cert):
    ra, rb = runtimes
    listener = _server(rb, cert, 8445)
    sock = api.socket(ra, type=api.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect((B_IP, 8445))
    s = tls.TlsSocket(sock, ssl.create_default_context(cafile=str(cert[0])), server_hostname=B_IP)
    s.setblocking(False)
    with pytest.raises(ssl.SSLWantReadError):
        s.recv(10)
    s.close()
    listener.close()


def test_install_gives_pystack_sockets_tls_and_leaves_kernel_sockets_to_ssl(runtimes, cert, monkeypatch):
    ra, rb = runtimes
    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", ssl.SSLContext.wrap_socket)  # put back afterwards
    tls.install()
    listener = _server(rb, cert, 8446)
    ps.use(ra, Names(ra))
    try:
        context = ssl.create_default_context(cafile=str(cert[0]))
        with ps.create_connection((B_IP, 8446), timeout=10) as plain:
            wrapped = context.wrap_socket(plain, server_hostname=B_IP)
            assert isinstance(wrapped, tls.TlsSocket)
            wrapped.sendall(b"x\n")
            assert wrapped.recv(10) == b"X\n"
            wrapped.close()
        a, b = kernel_socket.socketpair()
        kernel_side = ssl.create_default_context().wrap_socket(a, do_handshake_on_connect=False,
                                                               server_hostname="k.test")
        assert isinstance(kernel_side, ssl.SSLSocket)
        kernel_side.close()
        b.close()
    finally:
        ps._network = None
        listener.close()
