"""The impaired wire (pystack_lab.impaired_wire), proved against kernel-only peers.

Lab per test: namespace A (a0 192.0.2.2/24) -- veth -- a1 in R, R's b1 -- veth --
b0 in P (192.0.2.1/24). The relay in R bridges a1 <-> b1, so every frame between A and
P crosses it. Namespaces get a random suffix and are removed in ``finally``.

The first tests need no root: they drive the sans-I/O ``Direction`` and the CLI parser.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from pystack_lab import impaired_wire as iw
from pystack_lab.reference import ref_ones_sum

RELAY = [sys.executable, "-m", "pystack_lab.impaired_wire"]

ADDR_A = "192.0.2.2"
ADDR_P = "192.0.2.1"
PORT = 5201


# --- sans-I/O: the impairment decisions ---------------------------------------------------
def _frame(i: int, size: int = 100) -> bytes:
    """Ethernet header, then the index at both ends of the payload (a flip hits one)."""
    idx = i.to_bytes(4, "big")
    return bytes(12) + b"\x08\x00" + idx + bytes(size - 22) + idx


def _index(f: bytes) -> int:
    return int.from_bytes(f[14:18], "big")


def _run_direction(imp: "iw.Impairment", seed: int, n: int) -> tuple[list[bytes], "iw.Direction"]:
    d = iw.Direction(imp, iw.direction_rng(seed, "a_to_b"))
    out: list[bytes] = []
    for i in range(n):
        now = i * 0.001  # one frame per ms
        d.push(_frame(i), now)
        out.extend(d.pop_due(now))
    out.extend(d.pop_due(float("inf")))
    return out, d


def test_same_seed_same_run_other_seed_other_run() -> None:
    imp = iw.Impairment(loss=10, delay=5, jitter=3, reorder=20, duplicate=5, corrupt=5)
    first, _ = _run_direction(imp, seed=7, n=2000)
    again, _ = _run_direction(imp, seed=7, n=2000)
    other, _ = _run_direction(imp, seed=8, n=2000)
    assert first == again
    assert first != other


def test_loss_rate_and_counter_identity() -> None:
    out, d = _run_direction(iw.Impairment(loss=20), seed=1, n=10000)
    c = d.counters
    assert c.received == 10000
    assert c.received == c.dropped + len(out)
    assert 0.17 < c.dropped / c.received < 0.23


def test_duplicate_and_corrupt_counters_match_the_frames() -> None:
    out, d = _run_direction(iw.Impairment(duplicate=30, corrupt=10), seed=3, n=3000)
    c = d.counters
    assert len(out) == c.received + c.duplicated
    damaged = 0
    for f in out:
        candidates = {_frame(_index(f)), _frame(int.from_bytes(f[-4:], "big"))}
        if f in candidates:
            continue
        damaged += 1
        assert f[:14] == bytes(12) + b"\x08\x00"  # the Ethernet header is never touched
        assert min(_bits(f, o) for o in candidates) == 1  # exactly one bit flipped
    assert damaged == c.corrupted > 0


def _bits(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b))


def test_reorder_holds_frames_back_past_later_ones() -> None:
    imp = iw.Impairment(reorder=25, reorder_gap=10)
    out, d = _run_direction(imp, seed=5, n=1000)
    order = [_index(f) for f in out]
    assert sorted(order) == list(range(1000))
    late = sum(1 for i in range(1, len(order)) if order[i] < order[i - 1])
    assert d.counters.reordered > 0 and late > 0
    assert 0.2 < d.counters.reordered / 1000 < 0.3


def test_delay_releases_no_frame_early() -> None:
    d = iw.Direction(iw.Impairment(delay=10, jitter=2), iw.direction_rng(1, "x"))
    for i in range(100):
        d.push(_frame(i), 1.0)
    assert list(d.pop_due(1.0 + 0.0079)) == []
    assert len(list(d.pop_due(1.0 + 0.0121))) == 100


def test_bounded_queue_drops_and_counts() -> None:
    d = iw.Direction(iw.Impairment(delay=1000, limit=10), iw.direction_rng(1, "x"))
    for i in range(25):
        d.push(_frame(i), 0.0)
    assert d.queued() == 10
    assert d.counters.queue_full == 15


@pytest.mark.parametrize("length", [20, 21, 1460, 1461])
@pytest.mark.parametrize("csum_offset", [16, 6])  # TCP, UDP
def test_complete_checksum_matches_rfc1071(length: int, csum_offset: int) -> None:
    rng = random.Random(length * 100 + csum_offset)
    start = 14 + 20
    for _ in range(50):
        segment = bytearray(rng.randbytes(length))
        pseudo = rng.randrange(0x10000)  # what the kernel leaves in the field
        segment[csum_offset:csum_offset + 2] = pseudo.to_bytes(2, "big")
        frame = rng.randbytes(start) + bytes(segment)
        done = iw.complete_checksum(frame, start, csum_offset)
        assert done[:start] == frame[:start]
        field = int.from_bytes(done[start + csum_offset:start + csum_offset + 2], "big")
        assert field != 0  # UDP's "no checksum" never appears
        # A receiver adds the segment with the finished field plus the pseudo-header sum
        # (which the field held before): ones-complement zero, 0xFFFF, means valid.
        rest = bytearray(done[start:])
        rest[csum_offset:csum_offset + 2] = b"\x00\x00"
        rest += b"\x00" * (len(rest) % 2)  # an odd tail is padded with zero (RFC 793 3.1)
        assert ref_ones_sum(bytes(rest) + pseudo.to_bytes(2, "big") + field.to_bytes(2, "big")) == 0xFFFF


def test_impairment_rejects_bad_values() -> None:
    for bad in ({"loss": 101}, {"delay": -1}, {"corrupt": -0.5}, {"limit": 0}):
        with pytest.raises(ValueError):
            iw.Impairment(**bad)


def test_cli_bad_flags_one_line_exit_2() -> None:
    for argv in (["--a", "x"], ["--a", "x", "--b", "y", "--loss", "150"],
                 ["--a", "x", "--b", "y", "--bogus"], ["--a", "x", "--b", "y", "--delay", "soon"]):
        p = subprocess.run([*RELAY, *argv], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 2, argv
        assert p.stdout == ""
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_cli_per_direction_overrides() -> None:
    args = iw.build_parser().parse_args(
        ["--a", "x", "--b", "y", "--loss", "5", "--delay", "10", "--b-to-a-loss", "20"])
    a_to_b, b_to_a = iw.impairments_from_args(args)
    assert (a_to_b.loss, a_to_b.delay) == (5, 10)
    assert (b_to_a.loss, b_to_a.delay) == (20, 10)


# --- the lab ------------------------------------------------------------------------------
def _lab_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ping") is None or shutil.which("ip") is None:
        return "needs ping and ip (make install brings them: debian-packages.txt)"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "needs pyroute2"
    return None


def lab_test(fn):  # type: ignore[no-untyped-def]
    """Marks a test that builds namespaces: integration, skipped without root or tools."""
    reason = _lab_ready()
    return pytest.mark.integration(pytest.mark.skipif(reason is not None, reason=str(reason))(fn))


@dataclass
class Lab:
    a: str  # namespace with the "client" a0 (192.0.2.2)
    r: str  # relay namespace: a1, b1, no addresses
    p: str  # kernel peer namespace with b0 (192.0.2.1)


def _sysctl(ns: str, path: str, value: str) -> None:
    def write() -> None:
        Path("/proc/sys", path).write_text(value)  # /proc/sys/net follows the thread's netns
    iw.run_in_netns(ns, write)


@contextlib.contextmanager
def three_namespaces(offloads_off: bool = True) -> Iterator[Lab]:
    from pyroute2 import IPRoute, netns

    suffix = secrets.token_hex(3)
    lab = Lab(a=f"iw-a-{suffix}", r=f"iw-r-{suffix}", p=f"iw-p-{suffix}")
    made: list[str] = []
    try:
        for ns in (lab.a, lab.r, lab.p):
            netns.create(ns)
            made.append(ns)
        with IPRoute(netns=lab.r) as ipr:
            ipr.link("add", ifname="a1", kind="veth", peer={"ifname": "a0", "net_ns_fd": lab.a})
            ipr.link("add", ifname="b1", kind="veth", peer={"ifname": "b0", "net_ns_fd": lab.p})
        for ns, ifname, addr in ((lab.a, "a0", ADDR_A), (lab.r, "a1", None),
                                 (lab.r, "b1", None), (lab.p, "b0", ADDR_P)):
            # Quiet wire (no IPv6 RS/MLD) and on-the-wire frames only (see disable_offloads).
            _sysctl(ns, f"net/ipv6/conf/{ifname}/disable_ipv6", "1")
            if offloads_off:
                iw.disable_offloads(ifname, ns)
            with IPRoute(netns=ns) as ipr:
                idx = ipr.link_lookup(ifname=ifname)[0]
                if addr:
                    ipr.addr("add", index=idx, address=addr, prefixlen=24)
                ipr.link("set", index=idx, state="up")
                lo = ipr.link_lookup(ifname="lo")[0]
                ipr.link("set", index=lo, state="up")
        yield lab
    finally:
        for ns in made:
            with contextlib.suppress(OSError):
                netns.remove(ns)


@contextlib.contextmanager
def wire(lab: Lab, a_to_b: "iw.Impairment", b_to_a: "iw.Impairment",
         seed: int = 1) -> Iterator["iw.ImpairedWire"]:
    w = iw.ImpairedWire("a1", "b1", a_to_b, b_to_a, seed=seed, netns=lab.r)
    w.start()
    try:
        yield w
    finally:
        w.stop()
        assert w.error is None, w.error


@dataclass
class PingResult:
    sent: int
    received: int
    duplicates: int
    rtts: list[float]
    output: str


def ping(ns: str, count: int, interval: float, deadline: int) -> PingResult:
    """``count`` echo requests (not "until count replies", which is what -w would do)."""
    p = subprocess.run(
        ["ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-i", str(interval),
         "-W", "1", ADDR_P],
        capture_output=True, text=True, timeout=deadline)
    out = p.stdout
    m = re.search(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?", out)
    assert m, out + p.stderr
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    return PingResult(int(m[1]), int(m[2]), int(m[3] or 0), rtts, out)


def tcp_transfer(lab: Lab, nbytes: int, seed: int, timeout: float,
                 port: int = PORT) -> tuple[str, str]:
    """Kernel TCP from P (server, sends) to A (client, receives); returns both SHA-256s."""
    payload = random.Random(seed).randbytes(nbytes)

    def listen() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ADDR_P, port))
        s.listen(1)
        s.settimeout(timeout)
        return s

    listener = iw.run_in_netns(lab.p, listen)
    server_error: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(timeout)
                conn.sendall(payload)
                conn.shutdown(socket.SHUT_WR)
                conn.recv(1)  # wait for the client's close: all data was acknowledged
        except BaseException as exc:
            server_error.append(exc)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        client = iw.run_in_netns(
            lab.a, lambda: socket.create_connection((ADDR_P, port), timeout=timeout))
        digest = hashlib.sha256()
        got = 0
        with client:
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                digest.update(chunk)
                got += len(chunk)
        server.join(timeout)
        assert not server.is_alive(), "server did not finish"
        assert not server_error, server_error
        assert got == nbytes
        return hashlib.sha256(payload).hexdigest(), digest.hexdigest()
    finally:
        listener.close()


NONE = iw.Impairment()


@lab_test
def test_clean_wire_ping_and_tcp() -> None:
    with three_namespaces() as lab, wire(lab, NONE, NONE) as w:
        r = ping(lab.a, count=5, interval=0.2, deadline=15)
        assert r.received == r.sent == 5 and r.duplicates == 0
        sent, got = tcp_transfer(lab, 4 * 1024 * 1024, seed=11, timeout=60)
    assert sent == got
    c = w.counters()  # after stop: no frame half-way through the relay
    for d in ("a_to_b", "b_to_a"):
        assert c[d]["forwarded"] == c[d]["received"] > 0
        assert c[d]["dropped"] == c[d]["oversize"] == c[d]["send_errors"] == 0
        assert c[d]["gso_dropped"] == c[d]["csum_completed"] == 0  # offloads are off
    # 4 MiB in frames of at most 1514 bytes: relayed at MTU size, not as GSO super-frames.
    assert c["b_to_a"]["forwarded"] > 4 * 1024 * 1024 // 1514


@lab_test
def test_loss_20_percent_each_way() -> None:
    lossy = iw.Impairment(loss=20)
    with three_namespaces() as lab, wire(lab, lossy, lossy, seed=1) as w:
        r = ping(lab.a, count=300, interval=0.01, deadline=30)
    c = w.counters()
    # The counters are the proof: each way about a fifth of the frames was dropped...
    for d in ("a_to_b", "b_to_a"):
        assert c[d]["received"] >= 200
        assert c[d]["forwarded"] + c[d]["dropped"] == c[d]["received"]
        assert 0.12 < c[d]["dropped"] / c[d]["received"] < 0.28, c
    # ...and ping sees about 1 - 0.8 * 0.8 = 36 % loss (wide margins: it is statistics).
    loss = 1 - r.received / r.sent
    assert r.sent == 300
    assert 0.2 < loss < 0.55, r.output[-300:]


@lab_test
def test_delay_10ms_each_way_gives_rtt_of_20ms() -> None:
    slow = iw.Impairment(delay=10)
    with three_namespaces() as lab, wire(lab, slow, slow):
        r = ping(lab.a, count=20, interval=0.05, deadline=20)
    assert r.received == r.sent == 20
    assert len(r.rtts) == 20
    assert statistics.median(r.rtts) >= 20.0, r.rtts


@lab_test
def test_duplication_shows_as_dup_in_ping() -> None:
    dup = iw.Impairment(duplicate=50)
    with three_namespaces() as lab, wire(lab, NONE, dup) as w:
        r = ping(lab.a, count=20, interval=0.05, deadline=20)
    c = w.counters()
    assert "DUP!" in r.output
    assert r.duplicates > 0
    assert c["b_to_a"]["duplicated"] > 0 and c["a_to_b"]["duplicated"] == 0
    assert c["b_to_a"]["forwarded"] == c["b_to_a"]["received"] + c["b_to_a"]["duplicated"]


@lab_test
def test_kernel_tcp_survives_everything_at_once() -> None:
    bad = iw.Impairment(loss=5, delay=10, jitter=2, reorder=25, duplicate=1, corrupt=0.1)
    with three_namespaces() as lab, wire(lab, bad, bad, seed=1) as w:
        sent, got = tcp_transfer(lab, 4 * 1024 * 1024, seed=12, timeout=120)
    assert sent == got
    c = w.counters()
    # The impairments really happened on the way (data one way, ACKs the other).
    for d in ("a_to_b", "b_to_a"):
        assert c[d]["dropped"] > 0 and c[d]["reordered"] > 0, c
        assert c[d]["queue_full"] == c[d]["gso_dropped"] == c[d]["csum_completed"] == 0, c
        assert c[d]["socket_drops"] == 0, c  # the relay kept up: the impairments are the only losses
    assert c["b_to_a"]["duplicated"] > 0, c
    # 0.1 % corruption of a few thousand frames may well be zero: the next test proves it.


def _tcp_csum_errors(ns: str) -> int:
    """Tcp InCsumErrors of namespace ``ns`` (/proc/thread-self: this thread's netns)."""
    def read() -> int:
        lines = [ln.split() for ln in Path("/proc/thread-self/net/snmp").read_text().splitlines()
                 if ln.startswith("Tcp:")]
        return int(lines[1][lines[0].index("InCsumErrors")])
    return iw.run_in_netns(ns, read)


@lab_test
def test_corruption_reaches_the_kernel_and_is_caught_by_checksums() -> None:
    noisy = iw.Impairment(corrupt=5)
    with three_namespaces() as lab, wire(lab, noisy, noisy, seed=2) as w:
        before = _tcp_csum_errors(lab.a) + _tcp_csum_errors(lab.p)
        sent, got = tcp_transfer(lab, 2 * 1024 * 1024, seed=13, timeout=120)
        after = _tcp_csum_errors(lab.a) + _tcp_csum_errors(lab.p)
    assert sent == got
    c = w.counters()
    corrupted = c["a_to_b"]["corrupted"] + c["b_to_a"]["corrupted"]
    assert corrupted > 0
    # Flips in IP headers show up elsewhere (InHdrErrors...); most land in the TCP segment.
    assert 0 < after - before <= corrupted


@lab_test
def test_offloads_left_on_are_visible_in_the_counters() -> None:
    """With TX checksum offload and TSO on at the kernel ends, AF_PACKET sees frames
    with unfinished checksums and GSO super-frames. The relay finishes the checksums
    (small exchanges work) and drops and counts the super-frames it cannot relay."""
    with three_namespaces(offloads_off=False) as lab, wire(lab, NONE, NONE) as w:
        r = ping(lab.a, count=3, interval=0.2, deadline=15)
        sent, got = tcp_transfer(lab, 1000, seed=14, timeout=30)  # one segment, no GSO
        assert r.received == 3 and sent == got
        # A bulk send builds super-frames; wait (bounded) until the relay has seen one.
        listener = iw.run_in_netns(lab.p, lambda: socket.create_server((ADDR_P, PORT + 1)))
        client = iw.run_in_netns(lab.a, lambda: socket.create_connection((ADDR_P, PORT + 1), 10))
        try:
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                client.send(bytes(256 * 1024))
            for _ in range(100):
                if w.counters()["a_to_b"]["gso_dropped"]:
                    break
                threading.Event().wait(0.1)
        finally:
            client.close()
            listener.close()
    c = w.counters()
    assert c["a_to_b"]["csum_completed"] > 0 and c["b_to_a"]["csum_completed"] > 0, c
    assert c["a_to_b"]["gso_dropped"] > 0, c


@lab_test
def test_cli_relays_until_sigterm_and_prints_counters() -> None:
    with three_namespaces() as lab:
        proc = subprocess.Popen(
            [*RELAY, "--netns", lab.r, "--a", "a1", "--b", "b1",
             "--delay", "1", "--seed", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            assert ready["ready"] is True
            r = ping(lab.a, count=5, interval=0.2, deadline=15)
            assert r.received == 5
            proc.send_signal(signal.SIGUSR1)  # counters now, keep running
            midway = json.loads(proc.stdout.readline())
            assert midway["a_to_b"]["forwarded"] >= 5
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=15)
    assert proc.returncode == 0, err
    counters = json.loads(out.strip().splitlines()[-1])
    for d in ("a_to_b", "b_to_a"):
        assert counters[d]["forwarded"] >= 5


@lab_test
def test_cli_missing_interface_fails_with_one_line() -> None:
    with three_namespaces() as lab:
        p = subprocess.run([*RELAY, "--netns", lab.r, "--a", "a1",
                            "--b", "nosuch0"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "cannot start" in p.stderr
