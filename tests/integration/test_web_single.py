"""``pystack fetch`` in the single-namespace shape: a static address, ``--host-address`` configuring the
kernel's side of the TAP, and the kernel's HTTP/1.0 server, which closes first after the body."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration

PORT = 8000


def test_fetch_from_the_kernel_on_the_tap(daemon_ready: None, ns: lab.Namespace, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    (tmp_path / "blob").write_bytes(data)
    # HTTP/1.0 (http.server's default): the body ends with Content-Length and the server closes first.
    server = ns.spawn([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "--directory", str(tmp_path),
                       str(PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        probe = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.connect(("127.0.0.1", PORT))
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
        finally:
            probe.close()
    proc = ns.run([*lab.pystack_command(), "fetch", f"http://{lab.HOST_IP}:{PORT}/blob", "--tap", lab.TAP,
                   "--address", lab.STACK_ADDRESS, "--host-address", lab.HOST_ADDRESS], timeout=60, text=False)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert hashlib.sha256(proc.stdout).hexdigest() == hashlib.sha256(data).hexdigest()
    assert "static address 192.0.2.2/24" in err
    assert "response: HTTP/1.0 200 OK" in err and "Content-Length 100000" in err
    assert "DNS query" not in err  # an address literal needs no resolver
    assert "the server closed first" in err
    assert "Traceback" not in err
