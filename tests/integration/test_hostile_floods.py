"""Resource floods against the daemon in its namespace: every table stays within its bound, the
daemon's memory stays under a ceiling, and the kernel's ping and curl keep working.

Frames are forged by hand (hostile_lab) and written with AF_PACKET into the kernel side of the TAP,
in batches closed by a UDP-echo barrier, so the floods are bounded in count and in time and the TAP
queue never overflows (checked). Spoofed sources come from 198.18.0.0/15 (RFC 2544, benchmarking),
which routes nowhere; the daemon's default gateway is the kernel side, whose forwarding is off, so
answers to spoofed sources die in the namespace.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import hostile_lab as hl
from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, random_file

pytestmark = pytest.mark.integration

SPOOF_NET = hl.ip_int("198.18.0.0")


def spoofed(i: int) -> int:
    """The i-th address of 198.18.0.0/15, skipping .0 and .255 of each /24."""
    return SPOOF_NET + (i // 254) * 256 + 1 + i % 254


@pytest.fixture
def daemon(ns: lab.Namespace, tmp_path: Path, www: Path, daemon_ready: None):
    with hl.observed_daemon(ns, "--echo", "--discard", "--http", str(www), "--gateway", lab.HOST_IP,
                            workdir=tmp_path) as observed:
        yield observed


def background_ping(ns: lab.Namespace, size: int = 56, interval: float = 0.05, seconds: int = 120) -> subprocess.Popen[str]:
    """A ping running through the flood; stopped (SIGINT, so it prints its summary) by :func:`ping_result`."""
    return ns.spawn(["ping", "-n", "-q", "-i", str(interval), "-s", str(size), "-w", str(seconds), lab.STACK_IP],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ping_result(proc: subprocess.Popen[str]) -> dict:
    import os
    import signal

    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=15)
    return {**lab.parse_ping(out), "output": out}


def test_arp_flood_keeps_the_cache_bounded(daemon: hl.Observed) -> None:
    """Requests and replies from 8,000 addresses: the cache holds at most arp_cache_size entries (the
    least recently used evicted and counted), each request for us is answered, those for others and
    replies for others are counted as ignored, and pystack still reaches the kernel afterwards."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    with hl.raw_wire(ns) as wire:
        rss_before = daemon.rss_mib()
        start = daemon.counters()
        bound = daemon.snapshot()["bounds"]["arp_entries"]
        ping = background_ping(ns)
        plan = ["request_for_us"] * 3000 + ["reply_for_us"] * 3000 + ["request_for_other"] * 1000 \
            + ["reply_for_other"] * 1000
        rng.shuffle(plan)
        frames = []
        for i, kind in enumerate(plan):
            mac, ip = hl.random_mac(rng), spoofed(i)
            if kind == "request_for_us":
                frames.append(wire.eth(hl.ETH_ARP, hl.arp(1, mac, ip, bytes(6), hl.STACK_INT), dst=b"\xff" * 6, src=mac))
            elif kind == "reply_for_us":
                frames.append(wire.eth(hl.ETH_ARP, hl.arp(2, mac, ip, wire.stack_mac, hl.STACK_INT), src=mac))
            elif kind == "request_for_other":
                frames.append(wire.eth(hl.ETH_ARP, hl.arp(1, mac, ip, bytes(6), spoofed(i + 50_000)),
                                       dst=b"\xff" * 6, src=mac))
            else:
                frames.append(wire.eth(hl.ETH_ARP, hl.arp(2, mac, ip, hl.random_mac(rng), spoofed(i + 50_000)),
                                       dst=b"\xff" * 6, src=mac))
        t0 = time.monotonic()
        wire.send(frames[:4000])
        mid = daemon.check_bounds()
        peak = daemon.rss_mib()
        wire.send(frames[4000:])
        elapsed = time.monotonic() - t0
        end = daemon.check_bounds()
        during = ping_result(ping)
        after = lab.ping(ns, lab.STACK_IP, count=5, interval=0.2)
        rss_after = daemon.rss_mib()
        assert wire.tx_dropped() == 0, "the TAP queue overflowed: the flood was not paced"
    c = {k: v - start.get(k, 0) for k, v in daemon.counters().items()}
    print(f"ARP flood: {len(frames)} frames in {elapsed:.1f} s; cache {mid['sizes']['arp_entries']} / "
          f"{end['sizes']['arp_entries']} entries (bound {bound}); evicted {c.get('arp.entry_evicted', 0)}, "
          f"replies sent {c.get('arp.replies_sent', 0)}; ping during {during['received']}/{during['transmitted']}")
    hl.report_rss("ARP flood", rss_before, rss_after, peak)
    assert (after["transmitted"], after["received"]) == (5, 5), after["output"]
    assert during["received"] > 0, during["output"]
    assert c.get("arp.entry_evicted", 0) >= 6000 - bound, c
    assert c.get("arp.replies_sent", 0) >= 3000, c
    assert c.get("arp.requests_ignored", 0) >= 1000, c
    assert c.get("arp.replies_ignored", 0) >= 1000, c
    assert daemon.counters().get("drop.internal_error", 0) == 0


def test_fragment_flood_holds_the_reassembly_bounds(daemon: hl.Observed) -> None:
    """Fragments that never complete: 20,000 first fragments of distinct datagrams (the datagram table
    evicts, counted as frag_table_full) and, between them, 64 datagrams filled with 1480-byte pieces up
    to 64 KiB each, the most the table can hold (64 x 65,120 bytes: with the default bounds the datagram
    bound binds before the 4 MiB byte bound can). ``ping -s 4000`` runs through it and works afterwards."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    with hl.raw_wire(ns) as wire:
        rss_before = daemon.rss_mib()
        start = daemon.counters()
        bounds = daemon.snapshot()["bounds"]
        ping = background_ping(ns, size=4000, interval=0.1)
        firsts = [wire.eth(hl.ETH_IPV4, hl.ipv4(spoofed(i % 5000), hl.STACK_INT, 17, rng.randbytes(64),
                                                ident=i // 5000, flags_offset=0x2000)) for i in range(20_000)]
        piece = 1480
        pieces_each = (65_535 - 20) // piece  # 44 pieces: the last ends at 65,120, within a datagram
        big = [wire.eth(hl.ETH_IPV4, hl.ipv4(spoofed(100_000 + d), hl.STACK_INT, 17, rng.randbytes(piece),
                                             ident=d, flags_offset=0x2000 | (k * piece // 8)))
               for k in range(pieces_each) for d in range(bounds["reassembly_datagrams"])]
        t0 = time.monotonic()
        wire.send(firsts[:10_000])
        snaps = [daemon.check_bounds()]
        wire.send(big)
        snaps.append(daemon.check_bounds())
        peak = daemon.rss_mib()  # the most the table ever holds
        wire.send(firsts[10_000:])
        snaps.append(daemon.check_bounds())
        elapsed = time.monotonic() - t0
        during = ping_result(ping)
        after = lab.ping(ns, lab.STACK_IP, count=5, size=4000, interval=0.2)
        rss_after = daemon.rss_mib()
        assert wire.tx_dropped() == 0, "the TAP queue overflowed: the flood was not paced"
    c = {k: v - start.get(k, 0) for k, v in daemon.counters().items()}
    most = max(s["sizes"]["reassembly_bytes"] for s in snaps)
    print(f"fragment flood: {len(firsts) + len(big)} fragments in {elapsed:.1f} s; held at most "
          f"{max(s['sizes']['reassembly_datagrams'] for s in snaps)} datagrams, {most / MiB:.2f} MiB "
          f"(bounds {bounds['reassembly_datagrams']}, {bounds['reassembly_bytes'] / MiB:.0f} MiB); "
          f"table_full {c.get('drop.ipv4.frag_table_full', 0)}, no_memory {c.get('drop.ipv4.frag_no_memory', 0)}; "
          f"ping -s 4000 during {during['received']}/{during['transmitted']}")
    hl.report_rss("fragment flood", rss_before, rss_after, peak)
    assert (after["transmitted"], after["received"]) == (5, 5), after["output"]
    assert during["received"] > 0, during["output"]
    assert c.get("drop.ipv4.frag_table_full", 0) >= 20_000 - bounds["reassembly_datagrams"], c
    assert most > 0.9 * len(big) * piece, f"the big datagrams were not held ({most} bytes): {sorted(c.items())}"
    assert snaps[-1]["sizes"]["reassembly_bytes"] < 64 * 1024, "the big datagrams were not evicted"
    assert c.get("ipv4.reassembled", 0) >= 3 * 5, c  # every ping -s 4000 after (3 fragments each)
    assert daemon.counters().get("drop.internal_error", 0) == 0


def test_out_of_order_segments_fill_a_receive_queue(daemon: hl.Observed) -> None:
    """A live upload (POST /sha256 from a kernel socket) is paused with a hole at RCV.NXT, and 3,000
    out-of-order segments are forged into its window: 1,500 separate blocks (beyond the
    ooo_max_segments bound, the rest counted as ooo_queue_full) and 1,500 overlapping or duplicate
    ones. They carry the body's true bytes, so once the upload resumes, pystack's SHA-256 of the body
    is the sender's exactly when its reassembly put every byte in its place."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    body = rng.randbytes(1_000_000)
    first = 20_000
    with hl.sniffer(ns) as sn, hl.raw_wire(ns) as wire:
        rss_before = daemon.rss_mib()
        start = daemon.counters()
        bound = daemon.snapshot()["bounds"]["tcp_ooo_blocks_max"]
        sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(60)
        sock.connect((lab.STACK_IP, 80))
        head = (f"POST /sha256 HTTP/1.1\r\nHost: {lab.STACK_IP}\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode()
        sock.sendall(head + body[:first])
        conn = sn.connection(80)
        body_seq = (conn.kernel.isn + 1 + len(head)) & 0xFFFFFFFF
        deadline = time.monotonic() + 10
        while sn.view(conn).stack_rcv_nxt() != (body_seq + first) & 0xFFFFFFFF:
            assert time.monotonic() < deadline, f"pystack never acknowledged the first part: {sn.view(conn)}"
            time.sleep(0.02)
        time.sleep(0.3)  # let delayed ACKs and window updates settle
        view = sn.view(conn)
        window = view.stack_window()
        assert window > 200_000, f"pystack's window is only {window}"
        hole = 100
        base = first + hole  # the body offset of the first forged block: RCV.NXT + 100 stays a hole
        span = min(window - hole - 1000, len(body) - base)
        options = hl.ts_option(view.kernel.ts_val, view.stack.ts_val) if view.kernel.ts_val is not None else b""

        def segment(offset: int, length: int) -> bytes:
            seq = (body_seq + offset) & 0xFFFFFFFF
            return wire.eth(hl.ETH_IPV4, hl.ipv4(hl.HOST_INT, hl.STACK_INT, 6, hl.tcp(
                hl.HOST_INT, hl.STACK_INT, conn.kernel_port, 80, seq, view.kernel.ack, hl.ACK,
                window=view.kernel.window, options=options, payload=body[offset:offset + length])))

        step = span // 1500
        separate = [segment(base + k * step, step // 2) for k in range(1500)]  # a gap after each: no merging
        rng.shuffle(separate)
        overlapping = []
        for _ in range(1500):
            k = rng.randrange(1500)
            off = base + k * step + rng.randrange(step // 2)
            overlapping.append(segment(off, rng.randint(1, step // 2)))
        wire.send(separate + overlapping)
        during = daemon.check_bounds()
        peak = daemon.rss_mib()
        sock.sendall(body[first:])
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < 64:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        sock.close()
        rss_after = daemon.rss_mib()
        assert wire.tx_dropped() == 0
    c = {k: v - start.get(k, 0) for k, v in daemon.counters().items()}
    digest = answer.partition(b"\r\n\r\n")[2].strip()[:64].decode()
    print(f"OOO flood: 3000 forged segments; {during['sizes']['tcp_ooo_blocks_max']} blocks held (bound {bound}); "
          f"out_of_order {c.get('tcp.out_of_order', 0)}, ooo_queue_full {c.get('drop.tcp.ooo_queue_full', 0)}")
    hl.report_rss("OOO flood", rss_before, rss_after, peak)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert digest == hashlib.sha256(body).hexdigest(), "the body pystack reassembled is not the body sent"
    assert during["sizes"]["tcp_ooo_blocks_max"] == bound, during["sizes"]
    assert c.get("drop.tcp.ooo_queue_full", 0) >= 1500 - bound, c
    assert c.get("tcp.out_of_order", 0) >= 3000, c
    assert daemon.counters().get("drop.internal_error", 0) == 0


def test_connection_flood_of_idle_established_connections(daemon: hl.Observed) -> None:
    """10,000 real connections from the kernel to the discard service, held open and idle: there is no
    global bound on established connections (as on Linux, where the server's descriptors bound them),
    so this measures their cost and holds the memory ceiling; closing them all empties the table and
    service goes on."""
    import resource

    ns = daemon.ns
    count = 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count + 500:
        pytest.skip(f"needs {count + 500} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 500), hard))
    rss_before = daemon.rss_mib()
    socks: list[socket.socket] = []
    try:
        t0 = time.monotonic()
        for _ in range(count):
            sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.settimeout(15)
            sock.connect((lab.STACK_IP, 9))
        elapsed = time.monotonic() - t0
        held = daemon.check_bounds()
        peak = daemon.rss_mib()
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 30
    while (snap := daemon.snapshot())["sizes"]["tcp_connections"] > 0:
        assert time.monotonic() < deadline, f"connections left after every close: {snap['sizes']}"
        time.sleep(0.5)
    rss_after = daemon.rss_mib()
    per_conn = (peak - rss_before) * 1024 / count
    print(f"connection flood: {count} connections in {elapsed:.1f} s, {held['sizes']['tcp_established']} "
          f"established at once, about {per_conn:.1f} KiB each")
    hl.report_rss("connection flood", rss_before, rss_after, peak)
    assert held["sizes"]["tcp_established"] == count
    after = lab.ping(ns, lab.STACK_IP, count=3, interval=0.2)
    assert after["received"] == 3, after["output"]
    assert daemon.counters().get("drop.internal_error", 0) == 0


# --- SYN floods --------------------------------------------------------------------------------------

SYN_FLOOD = 50_000


def syn_flood(wire: hl.RawWire, rng: random.Random, count: int = SYN_FLOOD, port: int = 80) -> float:
    """``count`` SYNs from spoofed sources, written in barrier-paced batches; returns the seconds taken."""
    t0 = time.monotonic()
    for first in range(0, count, 5000):
        frames = [wire.eth(hl.ETH_IPV4, hl.ipv4(src, hl.STACK_INT, 6, hl.tcp(
            src, hl.STACK_INT, rng.randrange(1024, 65536), port, rng.getrandbits(32), 0, hl.SYN,
            window=64240, options=hl.syn_options(rng)), ident=rng.randrange(65536)))
            for src in (spoofed(rng.randrange(120_000)) for _ in range(min(5000, count - first)))]
        wire.send(frames)
    return time.monotonic() - t0


def test_syn_flood_leaves_an_established_download_intact(daemon: hl.Observed, www: Path) -> None:
    """50,000 spoofed SYNs while a kernel socket downloads 12 MiB (paced, its last part held until the
    flood is over, so that it spans the flood): the download completes and matches by SHA-256, half-open connections stay within
    syn_backlog, the other SYNs are answered with SYN cookies (no state) or dropped, all counted, and
    memory stays under the ceiling."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    digest = random_file(www / "big.bin", 12 * MiB)
    with hl.raw_wire(ns) as wire:
        rss_before = daemon.rss_mib()
        start = daemon.counters()
        bound = daemon.snapshot()["bounds"]["tcp_half_open_max"]
        download = hl.HeldTransfer(ns, "download", path="/big.bin", rate=2 * MiB, hold=4 * MiB)
        download.start()
        deadline = time.monotonic() + 15
        while daemon.snapshot()["sizes"]["tcp_established"] < 1:
            assert time.monotonic() < deadline and download.is_alive(), "the download did not start"
        samples: list[dict] = []
        rss: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                samples.append(daemon.snapshot())
                rss.append(daemon.rss_mib())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            elapsed = syn_flood(wire, rng)
        finally:
            stop.set()
            watcher.join(20)
        still_running = download.is_alive()
        got = download.finish()
        rss_after = daemon.rss_mib()
        assert wire.tx_dropped() == 0, "the TAP queue overflowed: the flood was not paced"
    c = {k: v - start.get(k, 0) for k, v in daemon.counters().items()}
    half_open = max(s["sizes"]["tcp_half_open_max"] for s in samples)
    stateless = c.get("drop.tcp.listen_queue_full", 0) + c.get("tcp.syncookies_sent", 0)
    print(f"SYN flood: {SYN_FLOOD} SYNs in {elapsed:.1f} s ({SYN_FLOOD / elapsed:.0f}/s); half-open at most "
          f"{half_open} (bound {bound}); cookies {c.get('tcp.syncookies_sent', 0)}, dropped "
          f"{c.get('drop.tcp.listen_queue_full', 0)}; most connections {max(s['sizes']['tcp_connections'] for s in samples)}; "
          f"download still running when the flood ended: {still_running}")
    hl.report_rss("SYN flood", rss_before, rss_after, max(rss, default=0.0))
    for snap in samples:
        assert not hl.observer.check_bounds(snap), hl.observer.check_bounds(snap)
    assert got == digest, "the download is not the file"
    assert still_running, "the download failed during the flood"
    assert half_open <= bound
    assert stateless >= SYN_FLOOD - bound - 100, c
    assert max(s["sizes"]["tcp_connections"] for s in samples) <= bound + 10, "SYNs beyond the backlog kept state"
    assert daemon.counters().get("drop.internal_error", 0) == 0


def test_new_connections_succeed_during_a_syn_flood(daemon: hl.Observed, www: Path) -> None:
    """Once spoofed SYNs fill the syn_backlog (each half-open held about a minute by SYN-ACK retries),
    a legitimate client still connects: SYN cookies (RFC 4987 3.6) answer without keeping state, and
    its final ACK builds the connection. Ten downloads during the flood, each checked."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    (www / "small.txt").write_bytes(b"hello through the flood\n")
    with hl.raw_wire(ns) as wire:
        syn_flood(wire, rng, count=2000)  # the backlog is full from here on
        assert daemon.snapshot()["sizes"]["tcp_half_open_max"] == daemon.snapshot()["bounds"]["tcp_half_open_max"]
        curls = [hl.spawn_curl(ns, "--connect-timeout", "15", f"{HTTP_URL}/small.txt", timeout=30) for _ in range(10)]
        syn_flood(wire, rng, count=SYN_FLOOD - 2000)
        results = [hl.finish(curl) for curl in curls]
    c = daemon.counters()
    print(f"during the SYN flood: {sum(r[0] == 0 for r in results)}/10 downloads; cookies sent "
          f"{c.get('tcp.syncookies_sent', 0)}, accepted {c.get('tcp.syncookies_accepted', 0)}")
    for code, out, err in results:
        assert code == 0 and out == "hello through the flood\n", f"curl {code}: {err}"
    assert c.get("tcp.syncookies_accepted", 0) >= 10, c


@pytest.mark.slow
def test_syn_flood_state_drains_and_connections_work_again(daemon: hl.Observed, www: Path) -> None:
    """After the flood, every half-open connection times out (SYN-ACK retries exhausted, counted) and
    a normal curl works: the flood leaves nothing behind."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    (www / "small.txt").write_bytes(b"after the flood\n")
    with hl.raw_wire(ns) as wire:
        syn_flood(wire, rng, count=5000)
    start = time.monotonic()
    while daemon.snapshot()["sizes"]["tcp_syn_received"]:
        assert time.monotonic() - start < 120, daemon.snapshot()["sizes"]
        time.sleep(1)
    drained = time.monotonic() - start
    proc = hl.spawn_curl(ns, f"{HTTP_URL}/small.txt", timeout=30)
    code, out, err = hl.finish(proc)
    print(f"half-open connections drained {drained:.0f} s after the flood")
    assert code == 0 and out == "after the flood\n", err
    c = daemon.counters()
    assert c.get("drop.tcp.synack_timeout", 0) >= 256 - 10, c
