"""``pystack exec``: unmodified Python programs whose sockets are pystack's, against the kernel.

Each test has its own namespace with a persistent TAP ``pst0`` whose kernel side is 192.0.2.1/24
(the ``tap`` fixture); ``pystack exec`` attaches to it as 192.0.2.2. The programs are the standard library's own
(``http.server``) or written against it only (tests/integration/programs/), the same files the
kernel's python3 runs where a test compares the two.
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pystack_lab import lab
from tcp_lab import MiB, curl, random_file, sha256_file, wait_connectable, wait_listening

pytestmark = pytest.mark.integration

PROGRAMS = Path(__file__).resolve().parent / "programs"
ECHO_PORT, UDP_PORT, ASYNCIO_PORT, CLOSED_PORT = 7000, 7001, 7002, 7999


def exec_argv(*program: str, extra: Sequence[str] = ()) -> list[str]:
    return [*lab.pystack_command(), "exec", "--tap", lab.TAP, "--address", lab.STACK_ADDRESS, "-q", *extra,
            "--", *program]


def spawn_exec(ns: lab.Namespace, tmp_path: Path, *program: str, extra: Sequence[str] = ()) -> subprocess.Popen[Any]:
    """A program under pystack exec that keeps running (a server); its stderr goes to a file."""
    err = open(tmp_path / f"exec-{time.monotonic_ns()}.err", "wb")
    return ns.spawn(exec_argv(*program, extra=extra), stdout=subprocess.PIPE, stderr=err, text=True)


def wait_ready_line(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """The program printed "ready" (its servers listen), or it failed the test."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or box[0].strip() != "ready":
        pytest.fail(f"the program did not say ready within {timeout} s (said {box!r}, status {proc.poll()})")


def interrupt(proc: subprocess.Popen[Any]) -> int:
    """Ctrl-C, as a user stops a server; its exit status."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("the program did not stop on SIGINT within 30 s")


def kernel_echo(ns: lab.Namespace) -> subprocess.Popen[Any]:
    """The echo servers run by the kernel's python3 on 192.0.2.1."""
    proc = ns.spawn(["python3", str(PROGRAMS / "echo_servers.py"), lab.HOST_IP, "--threads", str(ECHO_PORT),
                     "--udp", str(UDP_PORT)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wait_ready_line(proc)
    return proc


def last_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, f"status {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_stdlib_http_server_serves_50mib_to_the_kernels_curl(tap: lab.Namespace, tmp_path: Path) -> None:
    """``python -m http.server``, unmodified, under pystack exec; curl downloads a 50 MiB file intact."""
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "big.bin", 50 * MiB)
    server = spawn_exec(tap, tmp_path, "-m", "http.server", "8000", "--bind", lab.STACK_IP, "--directory", str(www))
    wait_connectable(tap, (lab.STACK_IP, 8000), server)
    got = tmp_path / "got.bin"
    curl(tap, "-o", str(got), f"http://{lab.STACK_IP}:8000/big.bin", timeout=300)
    assert sha256_file(got) == want
    assert interrupt(server) == 0  # http.server exits 0 on Ctrl-C, and pystack exec with it


def test_client_program_uses_urllib_asyncio_selectors_and_udp_against_kernel_servers(
        tap: lab.Namespace, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "file.bin", 3 * MiB)
    log = tmp_path / "http.log"
    with open(log, "wb") as fh:
        web = tap.spawn(["python3", "-m", "http.server", "--bind", lab.HOST_IP, "--directory", str(www), "8080"],
                        stdout=subprocess.DEVNULL, stderr=fh)
    kernel_echo(tap)
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{lab.HOST_IP} kernel.test kernel\n")
    wait_listening(tap, (lab.HOST_IP, 8080), web)
    proc = tap.run(exec_argv(str(PROGRAMS / "clients.py"), "http://kernel.test:8080/file.bin", "kernel.test",
                             str(ECHO_PORT), str(UDP_PORT), extra=("--hosts", str(hosts))), timeout=180)
    result = last_json(proc)
    assert result["socket_module"] == "pystack.socket"
    assert result["urllib"] == {"status": 200, "size": 3 * MiB, "sha256": want}
    assert result["getaddrinfo"] == [[lab.HOST_IP, ECHO_PORT]]
    assert result["asyncio"] == [f"asyncio line {i}" for i in range(5)]
    assert result["selectors"] == sorted(f"selectors client {i}" for i in range(10))
    assert result["udp"] == "a datagram"
    lab.stop_process(web)
    # The kernel's server saw the request come from pystack's address, not from its own.
    assert f"{lab.STACK_IP} - - " in log.read_text() and f"{lab.HOST_IP} - - " not in log.read_text()


@pytest.mark.parametrize("port", [ECHO_PORT, ASYNCIO_PORT], ids=["socketserver", "asyncio"])
def test_servers_under_exec_take_50_concurrent_kernel_clients(tap: lab.Namespace, tmp_path: Path, port: int) -> None:
    """socketserver.ThreadingTCPServer and asyncio.start_server, unmodified, under pystack exec; 50 kernel
    clients connect first, all at once, then each sends a line and reads it back."""
    server = spawn_exec(tap, tmp_path, str(PROGRAMS / "echo_servers.py"), lab.STACK_IP,
                        "--threads", str(ECHO_PORT), "--asyncio", str(ASYNCIO_PORT))
    wait_ready_line(server)
    clients = [tap.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(50)]
    connected = threading.Barrier(50, timeout=60)

    def client(i: int) -> bytes:
        s = clients[i]
        s.settimeout(60)
        s.connect((lab.STACK_IP, port))
        connected.wait()  # all 50 connections open at once
        line = f"client {i} says hello\n".encode()
        s.sendall(line)
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        s.close()
        return got

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(client, range(50)))
    assert answers == [f"client {i} says hello\n".encode() for i in range(50)]
    assert interrupt(server) == 0


def test_misuses_fail_under_exec_as_on_the_kernel(tap: lab.Namespace) -> None:
    """The same table of misuses (programs/misuse.py), run by the kernel's python3 and under pystack
    exec against the same kernel echo server: each case ends the same way (exception class and errno,
    or the value returned)."""
    kernel_echo(tap)
    args = [str(PROGRAMS / "misuse.py"), lab.HOST_IP, str(ECHO_PORT), str(CLOSED_PORT)]
    kernel = last_json(tap.run(["python3", *args], timeout=120))
    ours = last_json(tap.run(exec_argv(*args), timeout=120))
    assert set(kernel) == set(ours)
    assert len(kernel) > 50
    differ = {case: {"kernel": kernel[case], "pystack": ours[case]} for case in kernel if kernel[case] != ours[case]}
    assert not differ, json.dumps(differ, indent=1)


def test_exit_status_and_traceback_are_the_programs(tap: lab.Namespace) -> None:
    assert tap.run(exec_argv("-c", "import sys; sys.exit(7)"), timeout=60).returncode == 7
    failed = tap.run(exec_argv("-c", "import socket\nraise ValueError('from the program')"), timeout=60)
    assert failed.returncode == 1
    assert "ValueError: from the program" in failed.stderr
    assert "pystack/tools" not in failed.stderr and "runpy" not in failed.stderr
    bad = tap.run(exec_argv("no-such-script.py"), timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_names_resolve_through_pystacks_dns_in_the_campus_lab(daemon_ready: None) -> None:
    """With a DHCP lease from dnsmasq, getaddrinfo and gethostbyname_ex answer from pystack's own DNS
    client (the hosts table is empty), and urllib fetches through the router by name."""
    import web_lab

    web_lab.require_lab()
    code = ("import hashlib, json, socket, urllib.request\n"
            "print(json.dumps({'getaddrinfo': socket.getaddrinfo('www.example.test', 80, type=socket.SOCK_STREAM),"
            " 'alias': socket.gethostbyname_ex('web.example.test'),"
            " 'sha256': hashlib.sha256(urllib.request.urlopen('http://web.example.test/file', timeout=30).read())"
            ".hexdigest()}))")
    with web_lab.campus_lab({"file": 200_000}) as campus:
        mac = web_lab.random_mac()
        proc = campus.run_pystack("exec", "--tap", web_lab.TAP, "--dhcp", "--mac", mac, "--hosts", "/dev/null", "-q",
                                  "--", "-c", code, timeout=120)
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, err + campus.dnsmasq_output()
        result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        assert result["getaddrinfo"] == [[socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                                          [web_lab.WEB_IP, 80]]]
        assert result["alias"] == [web_lab.WWW, [web_lab.ALIAS], [web_lab.WEB_IP]]
        assert result["sha256"] == campus.files["file"]
        leased = next(line.split()[2] for line in campus.wait_for_lease(mac).splitlines() if mac in line.lower())
        assert f"query[A] {web_lab.WWW} from {leased}" in campus.dnsmasq_output()
