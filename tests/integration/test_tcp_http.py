"""curl against pystack's HTTP/1.1 server: downloads, uploads, parallel connections, keep-alive.

Each test runs pystack in its own namespace (``start_stack``) with ``--http`` serving a temporary
directory of random files; every body is checked by SHA-256 against the file or the upload.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, curl, random_file, sha256_file

pytestmark = pytest.mark.integration


@pytest.fixture
def got(tmp_path: Path) -> Path:
    """Where curl writes what it downloaded."""
    path = tmp_path / "got"
    path.mkdir()
    return path


@pytest.fixture
def http_stack(start_stack: Callable[..., lab.Daemon], www: Path) -> lab.Daemon:
    return start_stack("--echo", "--discard", "--http", str(www))


@pytest.mark.parametrize("size", [1024, 10 * MiB, 100 * MiB], ids=["1KiB", "10MiB", "100MiB"])
def test_curl_download_matches(http_stack: lab.Daemon, www: Path, got: Path, size: int) -> None:
    want = random_file(www / "file.bin", size)
    out = got / "file.bin"
    proc = curl(http_stack.ns, "-o", str(out), "-w", "%{http_code} %{size_download}",
                f"{HTTP_URL}/file.bin", timeout=180)
    assert proc.stdout.split() == ["200", str(size)], proc.stdout
    assert sha256_file(out) == want
    assert http_stack.alive(), http_stack.stderr()
    counters = http_stack.stop()
    assert counters.get("tcp.passive_opens") == 1, counters


@pytest.mark.parametrize("how", ["data-binary", "upload-file"])
def test_curl_upload_50mib_digest_matches(http_stack: lab.Daemon, tmp_path: Path, how: str) -> None:
    """``POST /sha256`` answers the SHA-256 of the body it received; it must be the file's."""
    body = tmp_path / "upload.bin"
    want = random_file(body, 50 * MiB)
    if how == "data-binary":
        args = ["--data-binary", f"@{body}"]
    else:
        args = ["-T", str(body), "-X", "POST"]
    proc = curl(http_stack.ns, *args, "-w", "%{http_code}", f"{HTTP_URL}/sha256", timeout=180)
    answer, status = proc.stdout[:-3], proc.stdout[-3:]
    assert status == "200", proc.stdout
    assert answer == want + "\n", "pystack hashed something other than the 50 MiB curl sent"
    counters = http_stack.stop()
    assert counters.get("tcp.passive_opens") == 1, counters


def test_curl_upload_gets_100_continue(http_stack: lab.Daemon) -> None:
    """A client that sends ``Expect: 100-continue`` waits for the interim response before its body.

    curl does this for every upload over 1 MiB and, without an answer, waits a full second
    (``--expect100-timeout``) before sending anyway; a kernel socket shows whether it comes, and the
    body sent after it is still hashed.
    """
    sock = http_stack.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(5)
        sock.connect((lab.STACK_IP, 80))
        body = os.urandom(2048)
        sock.sendall(b"POST /sha256 HTTP/1.1\r\nHost: 192.0.2.2\r\nContent-Length: 2048\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        try:
            interim = sock.recv(4096)
        except TimeoutError:
            interim = b""
        # RFC 9110 10.1.1: an origin server that receives 100-continue with content to follow sends
        # either a final status at once or an immediate 100 (Continue); it does not wait for the body.
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), f"no 100 Continue in 5 s: {interim!r}"
        sock.sendall(body)
        answer = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while len(answer.partition(b"\r\n\r\n")[2]) < 65 and len(answer) < 4096:  # hex digest + LF
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    head, _, digest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert digest == hashlib.sha256(body).hexdigest().encode() + b"\n"


def test_curl_upload_with_connection_close(http_stack: lab.Daemon, tmp_path: Path) -> None:
    """An upload over 1 MiB (so curl sends ``Expect: 100-continue``) on a connection the client
    wants closed after the response: the digest comes back, then pystack closes."""
    body = tmp_path / "upload.bin"
    want = random_file(body, 2 * MiB)
    proc = curl(http_stack.ns, "--data-binary", f"@{body}", "-H", "Connection: close", f"{HTTP_URL}/sha256")
    assert proc.stdout == want + "\n"


def test_50_parallel_curl_transfers(http_stack: lab.Daemon, www: Path, got: Path) -> None:
    """One curl with ``--parallel --parallel-max 50``: 50 different files over 50 connections at once."""
    want = {f"f{i}.bin": random_file(www / f"f{i}.bin", MiB) for i in range(50)}
    args = ["--parallel", "--parallel-max", "50", "--parallel-immediate", "-w", "%{http_code} %{num_connects}\n"]
    for name in want:
        args += ["-o", str(got / name), f"{HTTP_URL}/{name}"]
    proc = curl(http_stack.ns, *args, timeout=180)
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert [status for status, _ in rows] == ["200"] * 50, proc.stdout
    assert {name: sha256_file(got / name) for name in want} == want
    connects = sum(int(n) for _, n in rows)
    assert connects > 25, proc.stdout  # side by side, not one connection after another
    counters = http_stack.stop()
    assert counters.get("tcp.passive_opens") == connects, counters


def test_50_curl_processes_at_once(http_stack: lab.Daemon, www: Path, got: Path) -> None:
    """50 curl processes started together, each fetching its own 1 MiB file on its own connection."""
    want = {f"p{i}.bin": random_file(www / f"p{i}.bin", MiB) for i in range(50)}
    procs = {}
    try:
        for name in want:
            argv = ["curl", "-sS", "--noproxy", "*", "--max-time", "120", "-o", str(got / name),
                    f"{HTTP_URL}/{name}"]
            procs[name] = http_stack.ns.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                              text=True)
        failures = {}
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=150)
            if proc.returncode != 0:
                failures[name] = (proc.returncode, err.strip())
    finally:
        for proc in procs.values():
            lab.stop_process(proc)
    assert not failures, failures
    assert {name: sha256_file(got / name) for name in want} == want
    counters = http_stack.stop()
    assert counters.get("tcp.passive_opens") == 50, counters


def test_keep_alive_one_connection_for_several_urls(http_stack: lab.Daemon, www: Path, got: Path) -> None:
    """curl reuses the connection (``num_connects`` 0 after the first) and every body is intact."""
    sizes = {"a.bin": 1024, "b.bin": 3 * MiB, "c.bin": 1, "d.bin": 700 * 1024}
    want = {name: random_file(www / name, size) for name, size in sizes.items()}
    args = ["-w", "%{http_code} %{num_connects}\n"]
    for name in want:
        args += ["-o", str(got / name), f"{HTTP_URL}/{name}"]
    proc = curl(http_stack.ns, *args)
    assert proc.stdout.splitlines() == ["200 1", "200 0", "200 0", "200 0"], proc.stdout
    assert {name: sha256_file(got / name) for name in want} == want
    counters = http_stack.stop()
    assert counters.get("tcp.passive_opens") == 1, counters
