"""TLS over pystack (pystack/api/tls.py) against the kernel's ``openssl s_server``, with a CA the test
makes with ``openssl req``: ``pystack fetch https://`` checks the certificate and tells the handshake;
a wrong CA or an expired certificate is one clear line and exit status 1; under ``pystack exec``,
urllib, http.client and asyncio speak TLS over pystack's sockets.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pystack_lab import lab
from tcp_lab import wait_listening

pytestmark = pytest.mark.integration

PORT = 8443
PROGRAMS = Path(__file__).resolve().parent / "programs"
CA_CONFIG = """[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = .
serial = serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
"""
"""Just enough of a CA for ``openssl ca``, which (unlike ``openssl x509``) takes a start and end date."""
EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def openssl(directory: Path, *args: str) -> None:
    proc = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr}"


@pytest.fixture
def pki(require_tools: Any, tmp_path: Path) -> Path:
    """ca.pem (the test CA); server.pem for 192.0.2.1 signed by it, valid now; expired.pem, the same
    name signed by it for a day in 2020; other.pem, a CA that signed nothing here."""
    require_tools("openssl")
    d = tmp_path / "pki"
    d.mkdir()
    openssl(d, "req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=pystack test CA")
    openssl(d, "req", *EC, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=tls.example.test",
            "-addext", f"subjectAltName=IP:{lab.HOST_IP},DNS:tls.example.test")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-copy_extensions", "copy", "-out", "server.pem")
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text(CA_CONFIG)
    openssl(d, "ca", "-config", "ca.cnf", "-batch", "-notext", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", "-in", "server.csr", "-out", "expired.pem")
    openssl(d, "req", "-x509", *EC, "-keyout", "other.key", "-out", "other.pem", "-days", "2",
            "-subj", "/CN=another CA")
    return d


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, str]:
    """A directory with one random file (1 MiB) and its SHA-256."""
    www = tmp_path / "www"
    www.mkdir()
    data = os.urandom(1 << 20)
    (www / "file").write_bytes(data)
    return www, hashlib.sha256(data).hexdigest()


def tls_server(ns: lab.Namespace, pki: Path, www: Path, cert: str = "server.pem") -> subprocess.Popen[Any]:
    """``openssl s_server -WWW`` on 192.0.2.1:8443: files from ``www``, HTTP/1.0, one per connection."""
    proc = ns.spawn(["openssl", "s_server", "-quiet", "-accept", f"{lab.HOST_IP}:{PORT}", "-WWW",
                     "-cert", str(pki / cert), "-key", str(pki / "server.key")],
                    cwd=www, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(ns, (lab.HOST_IP, PORT), proc)
    return proc


def fetch(ns: lab.Namespace, *argv: str) -> subprocess.CompletedProcess[str]:
    return ns.run([*lab.pystack_command(), "fetch", f"https://{lab.HOST_IP}:{PORT}/file", "--tap", lab.TAP,
                   "--address", lab.STACK_ADDRESS, "--timeout", "20", *argv], timeout=90)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("pystack: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_fetch_https_checks_the_certificate_and_tells_the_handshake(
        tap: lab.Namespace, pki: Path, served: tuple[Path, str], tmp_path: Path) -> None:
    www, want = served
    tls_server(tap, pki, www)
    out = tmp_path / "got"
    proc = fetch(tap, "--cacert", str(pki / "ca.pem"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want
    told = next(line for line in proc.stderr.splitlines() if "TLS established" in line)
    assert "TLSv1.3" in told and "CN=tls.example.test" in told and f"IP Address {lab.HOST_IP}" in told
    assert "issued by CN=pystack test CA" in told


@pytest.mark.parametrize("cacert, cert, why", [
    ("other.pem", "server.pem", "unable to get local issuer certificate"),
    ("ca.pem", "expired.pem", "certificate has expired"),
], ids=["wrong-ca", "expired"])
def test_an_untrusted_certificate_is_one_line_and_status_1(
        tap: lab.Namespace, pki: Path, served: tuple[Path, str], cacert: str, cert: str, why: str) -> None:
    tls_server(tap, pki, served[0], cert)
    line = one_error_line(fetch(tap, "--cacert", str(pki / cacert)))
    assert "not trusted" in line and why in line, line


def test_stdlib_clients_speak_tls_under_exec(tap: lab.Namespace, pki: Path, served: tuple[Path, str]) -> None:
    www, want = served
    tls_server(tap, pki, www)
    proc = tap.run([*lab.pystack_command(), "exec", "--tap", lab.TAP, "--address", lab.STACK_ADDRESS, "-q", "--",
                    str(PROGRAMS / "tls_client.py"), lab.HOST_IP, str(PORT), "/file", str(pki / "ca.pem")],
                   timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"urllib": want, "http.client": want, "asyncio": want, "version": "TLSv1.3"}
