"""Helpers of the hostile tests (test_hostile_*.py): an observed daemon, frames forged by hand and
written raw into the kernel side of the TAP, a sniffer that follows TCP connections, and memory.

- :func:`observed_daemon` runs the real daemon through ``pystack_lab.observer``, which writes a
  snapshot of its counters and of every bounded table (with the bound) to a JSON file each interval,
  so a test can look inside *during* a flood, not only at the ``--stats-json`` written on exit.
- :class:`RawWire` writes frames with AF_PACKET into ``pst0`` (the kernel side of the TAP) in
  batches, each closed by a barrier: a UDP echo through pystack from a kernel socket. The TAP's
  queue holds about 1000 frames and drops beyond that; the barrier proves pystack read everything
  before it (the qdisc is pfifo_fast: one FIFO band for all of this traffic).
- :class:`Sniffer` reads every frame on ``pst0`` in a thread and keeps, per TCP connection, what an
  on-path observer would know: both ISNs, the window scale, the last sequence, ACK, window and
  timestamp each way, and pystack's pure ACKs (challenge ACKs show up there).
- Frames are built here with struct and an RFC 1071 checksum, independently of pystack's wire code.

Everything stays inside the test's namespace; floods are bounded in count and time.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pystack_lab import bench_lab, lab, observer
from pystack_lab.reference import ref_checksum

MiB = 1024 * 1024
RSS_CEILING_MIB = 200.0
"""Resident memory the daemon may never exceed, whatever is thrown at it (it idles near 30 MiB)."""

HOST = socket.inet_aton(lab.HOST_IP)
STACK = socket.inet_aton(lab.STACK_IP)
HOST_INT = struct.unpack("!I", HOST)[0]
STACK_INT = struct.unpack("!I", STACK)[0]
ETH_IPV4, ETH_ARP = 0x0800, 0x0806
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
PACKET_OUTGOING = 4
BATCH = 250


# --- frames, by hand ------------------------------------------------------------------------------


def ip_int(text: str) -> int:
    return struct.unpack("!I", socket.inet_aton(text))[0]


FORGED_TTL = 251
"""The TTL of every datagram forged here: the sniffer sees forged frames as the kernel's own outgoing
ones (they leave through the same interface) and tells them apart by it."""


def ipv4(src: int, dst: int, proto: int, payload: bytes, *, ident: int = 0, flags_offset: int = 0,
         ttl: int = FORGED_TTL, total: int | None = None) -> bytes:
    head = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload) if total is None else total, ident,
                                 flags_offset, ttl, proto, 0, src, dst))
    struct.pack_into("!H", head, 10, ref_checksum(bytes(head)))
    return bytes(head) + payload


def tcp(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int, *, window: int = 65535,
        options: bytes = b"", payload: bytes = b"") -> bytes:
    """A TCP segment with its checksum over the pseudo-header (RFC 9293 3.1)."""
    options += b"\0" * (-len(options) % 4)
    seg = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                                (20 + len(options)) // 4 << 4, flags, window, 0, 0) + options + payload)
    pseudo = struct.pack("!IIBBH", src, dst, 0, 6, len(seg))
    struct.pack_into("!H", seg, 16, ref_checksum(pseudo + bytes(seg)))
    return bytes(seg)


def syn_options(rng: random.Random) -> bytes:
    """MSS 1460, SACK-permitted, timestamps, window scale 7: what Linux puts in a SYN."""
    return (struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + struct.pack("!BBII", 8, 10, rng.getrandbits(32), 0)
            + b"\x01\x03\x03\x07")


def ts_option(ts_val: int, ts_ecr: int) -> bytes:
    return b"\x01\x01\x08\x0a" + struct.pack("!II", ts_val & 0xFFFFFFFF, ts_ecr & 0xFFFFFFFF)


def arp(op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> bytes:
    return struct.pack("!HHBBH6sI6sI", 1, ETH_IPV4, 6, 4, op, sha, spa, tha, tpa)


def random_mac(rng: random.Random) -> bytes:
    """A locally administered unicast MAC (RFC 7042 2.1)."""
    return bytes([(rng.randrange(256) & 0xFC) | 0x02]) + rng.randbytes(5)


# --- the observed daemon --------------------------------------------------------------------------


@dataclass
class Observed:
    """A running daemon and the snapshots its observer writes."""

    daemon: lab.Daemon
    snapshot_path: Path

    @property
    def ns(self) -> lab.Namespace:
        return self.daemon.ns

    @property
    def pid(self) -> int:
        return self.daemon.pid

    def snapshot(self, timeout: float = 15.0) -> dict[str, Any]:
        """A snapshot taken after this call began (so it reflects everything done before it)."""
        start = time.time()
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, ValueError):
                snap = json.loads(self.snapshot_path.read_text())
                if snap["wall"] > start:
                    return snap
            if not self.daemon.alive():
                raise lab.LabError(f"the daemon died:\n{self.daemon.stderr()}")
            if time.monotonic() > deadline:
                raise lab.LabError(f"no fresh snapshot within {timeout} s")
            time.sleep(0.05)

    def counters(self) -> dict[str, int]:
        return self.snapshot()["counters"]

    def rss_mib(self) -> float:
        return bench_lab.rss_bytes(self.pid) / MiB

    def check_bounds(self, snap: dict[str, Any] | None = None) -> dict[str, Any]:
        """Fail the test if any table in a (fresh) snapshot is beyond its bound; return the snapshot."""
        snap = snap or self.snapshot()
        problems = observer.check_bounds(snap)
        assert not problems, f"tables beyond their bounds: {problems}\nsizes {snap.get('sizes')}"
        return snap


@contextlib.contextmanager
def observed_daemon(ns: lab.Namespace, *extra: str, workdir: Path, interval: float = 0.5,
                    ready_timeout: float = 20.0) -> Iterator[Observed]:
    """``pystack run`` in the single-namespace shape (192.0.2.2, kernel side 192.0.2.1), observed
    (pystack_lab.observer). Stopped with SIGTERM on the way out; ``daemon.counters`` then holds
    its --stats-json."""
    with observer.observed_daemon(ns, *extra, workdir=workdir, interval=interval,
                                  ready_timeout=ready_timeout) as (daemon, snapshot_path):
        yield Observed(daemon, snapshot_path)


def report_rss(label: str, before: float, after: float, peak: float = 0.0) -> None:
    """Print the numbers and hold the ceiling (for the highest of them)."""
    peak = max(peak, after)
    print(f"\n{label}: daemon RSS before {before:.1f} MiB, peak {peak:.1f} MiB, after {after:.1f} MiB "
          f"(ceiling {RSS_CEILING_MIB:.0f})")
    assert peak < RSS_CEILING_MIB, f"{label}: RSS {peak:.1f} MiB over the {RSS_CEILING_MIB} MiB ceiling"


# --- raw frames into the TAP, paced by barriers ---------------------------------------------------


class RawWire:
    """Writes frames as the kernel side of ``pst0`` would put them on the wire (AF_PACKET)."""

    def __init__(self, ns: lab.Namespace, stack_mac: bytes) -> None:
        self.ns = ns
        self.stack_mac = stack_mac
        self.host_mac = ns.mac(lab.TAP)
        self.tx = ns.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: it receives nothing
        self.tx.bind((lab.TAP, 0))
        self.echo = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.echo.bind((lab.HOST_IP, 0))
        self.barriers = 0
        self.sent = 0
        self.tx_dropped_at_start = ns.link_stats(lab.TAP).get("tx_dropped", 0)

    def close(self) -> None:
        self.tx.close()
        self.echo.close()

    def eth(self, ethertype: int, payload: bytes, dst: bytes | None = None, src: bytes | None = None) -> bytes:
        return (dst or self.stack_mac) + (src or self.host_mac) + struct.pack("!H", ethertype) + payload

    def barrier(self, timeout: float = 10.0) -> None:
        """A UDP echo through pystack from a kernel socket: once it is back, pystack has read every frame
        written before it. Retried once a second (pystack may be resolving our MAC again)."""
        self.barriers += 1
        token = b"barrier %d %s" % (self.barriers, secrets.token_hex(4).encode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.echo.sendto(token, (lab.STACK_IP, 7))
            self.echo.settimeout(1.0)
            with contextlib.suppress(TimeoutError):
                while True:
                    if self.echo.recv(2048) == token:
                        return
        raise AssertionError(f"no answer to barrier {self.barriers} within {timeout} s")

    def send(self, frames: Iterable[bytes], batch: int = BATCH) -> int:
        """Write ``frames`` in batches, a barrier after each; returns how many were written."""
        n = 0
        for frame in frames:
            self.tx.send(frame)
            n += 1
            if n % batch == 0:
                self.barrier()
        self.barrier()
        self.sent += n
        return n

    def tx_dropped(self) -> int:
        """Frames the TAP's queue dropped since this wire was made (pacing too fast if not 0)."""
        return self.ns.link_stats(lab.TAP).get("tx_dropped", 0) - self.tx_dropped_at_start


@contextlib.contextmanager
def raw_wire(ns: lab.Namespace) -> Iterator[RawWire]:
    """A RawWire once the kernel knows pystack's MAC (a warm-up ping teaches it)."""
    warm = lab.ping(ns, lab.STACK_IP, count=2, interval=0.1)
    assert warm["received"] == 2, warm["output"]
    mac = ns.neighbour_mac(lab.STACK_IP)
    assert mac, "the kernel did not learn pystack's MAC"
    wire = RawWire(ns, mac)
    try:
        yield wire
    finally:
        wire.close()


# --- the sniffer ------------------------------------------------------------------------------------


@dataclass
class Side:
    """What one end last sent on a connection."""

    isn: int | None = None
    seq_next: int = 0  # sequence number after its latest segment (seq + len + SYN + FIN)
    ack: int = 0
    window: int = 0
    ts_val: int | None = None
    wscale: int = 0
    segments: int = 0


@dataclass
class Conn:
    """A TCP connection between the kernel (client port) and pystack (server port)."""

    kernel_port: int
    stack_port: int
    kernel: Side = field(default_factory=Side)
    stack: Side = field(default_factory=Side)
    stack_pure_acks: list[tuple[float, int, int]] = field(default_factory=list)
    """(time, seq, ack) of every segment pystack sent with only the ACK flag and no data."""
    stack_rsts: int = 0
    kernel_rsts: int = 0

    def stack_rcv_nxt(self) -> int:
        """pystack's RCV.NXT as its own latest ACK says."""
        return self.stack.ack

    def stack_window(self) -> int:
        return self.stack.window << self.stack.wscale


def parse_tcp_frame(frame: bytes) -> tuple[int, int, int, int, int, int, int, int, bytes, int] | None:
    """(src, dst, sport, dport, seq, ack, flags, window, options, payload length) of an IPv4/TCP frame."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack_from("!H", frame, 16)[0]
    t = 14 + ihl
    if len(frame) < t + 20:
        return None
    src, dst = struct.unpack_from("!II", frame, 26)
    sport, dport, seq, ack, off, flags, window = struct.unpack_from("!HHIIBBH", frame, t)
    hlen = (off >> 4) * 4
    return src, dst, sport, dport, seq, ack, flags, window, bytes(frame[t + 20:t + hlen]), total - ihl - hlen


def tcp_options_of(options: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break
        out[kind] = options[i + 2:i + options[i + 1]]
        i += options[i + 1]
    return out


class Sniffer:
    """Follows every TCP connection to pystack on ``pst0`` from a reader thread."""

    def __init__(self, ns: lab.Namespace) -> None:
        self.sock = ns.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(lab.ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 * MiB)  # SO_RCVBUFFORCE: keep up with bursts
        self.sock.bind((lab.TAP, lab.ETH_P_ALL))
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.conns: dict[int, Conn] = {}  # by the kernel's port
        self.frames: list[tuple[float, bool, bytes]] = []  # (time, from kernel, frame) when keeping
        self.keep_frames = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="sniffer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            outgoing = addr[2] == PACKET_OUTGOING  # the kernel sent it (or a raw socket in the namespace)
            if self.keep_frames:
                with self.lock:
                    self.frames.append((time.monotonic(), outgoing, frame))
            self._track(frame, outgoing)

    def _track(self, frame: bytes, outgoing: bool) -> None:
        got = parse_tcp_frame(frame)
        if got is None:
            return
        src, dst, sport, dport, seq, ack, flags, window, options, plen = got
        if outgoing and frame[22] == FORGED_TTL:
            return  # ours, not the kernel's
        if outgoing and src == HOST_INT and dst == STACK_INT:
            key, side_name = sport, "kernel"
        elif not outgoing and src == STACK_INT and dst == HOST_INT:
            key, side_name = dport, "stack"
        else:
            return
        with self.lock:
            conn = self.conns.get(key)
            if conn is None or (flags & SYN and not flags & ACK and side_name == "kernel"):
                if not flags & SYN:
                    return  # the middle of a connection we did not see start
                conn = self.conns[key] = Conn(key, dport if side_name == "kernel" else sport)
            side = getattr(conn, side_name)
            opts = tcp_options_of(options)
            if flags & SYN:
                side.isn = seq
                if 3 in opts and opts[3]:
                    side.wscale = opts[3][0]
            if flags & RST:
                if side_name == "stack":
                    conn.stack_rsts += 1
                else:
                    conn.kernel_rsts += 1
                return
            side.seq_next = (seq + plen + (1 if flags & SYN else 0) + (flags & FIN)) & 0xFFFFFFFF
            if flags & ACK:
                side.ack = ack
            side.window = window
            if 8 in opts and len(opts[8]) == 8:
                side.ts_val = struct.unpack("!I", opts[8][:4])[0]
            side.segments += 1
            if side_name == "stack" and flags == ACK and plen == 0:
                conn.stack_pure_acks.append((time.monotonic(), seq, ack))

    def connection(self, stack_port: int, timeout: float = 15.0, established: bool = True) -> Conn:
        """The newest connection from the kernel to ``stack_port`` (waits for its handshake)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [c for c in self.conns.values() if c.stack_port == stack_port
                         and (not established or (c.stack.isn is not None and c.kernel.ack))]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no connection to port {stack_port} seen within {timeout} s")

    def view(self, conn: Conn) -> Conn:
        """A consistent copy of ``conn`` (the reader thread keeps changing the original)."""
        with self.lock:
            return Conn(conn.kernel_port, conn.stack_port, Side(**vars(conn.kernel)), Side(**vars(conn.stack)),
                        list(conn.stack_pure_acks), conn.stack_rsts, conn.kernel_rsts)


@contextlib.contextmanager
def sniffer(ns: lab.Namespace) -> Iterator[Sniffer]:
    s = Sniffer(ns)
    try:
        yield s
    finally:
        s.close()


# --- kernel tools ---------------------------------------------------------------------------------


def spawn_curl(ns: lab.Namespace, *args: str, timeout: float = 120.0) -> subprocess.Popen[str]:
    """curl in ``ns`` in the background (silent, errors shown, no proxy, bounded in time)."""
    argv = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "20", "--max-time", str(int(timeout)), *args]
    return ns.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 150.0) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# --- transfers that stay open as long as a test needs them -------------------------------------------


class HeldTransfer(threading.Thread):
    """An HTTP transfer from a kernel socket that keeps the connection busy, then holds its last part
    until :meth:`release`: a test's attack is sure to meet a live connection, whatever the speeds.

    ``kind="download"``: GET ``path``, read at about ``rate`` bytes/s, hash the body.
    ``kind="upload"``: POST ``body`` to /sha256 at about ``rate`` bytes/s; ``result`` is pystack's digest.
    """

    def __init__(self, ns: lab.Namespace, kind: str, *, path: str = "", body: bytes = b"", rate: int = 3 * MiB,
                 hold: int = 2 * MiB, timeout: float = 120.0) -> None:
        super().__init__(name=f"held-{kind}", daemon=True)
        self.kind, self.path, self.body, self.rate, self.hold = kind, path, body, rate, hold
        self.sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.released = threading.Event()
        self.holding = threading.Event()
        self.result: str | None = None
        self.length = 0
        self.error: BaseException | None = None

    def release(self) -> None:
        self.released.set()

    def finish(self, timeout: float = 120.0) -> str:
        """Release, wait, and return the digest (download: of the body read; upload: pystack's answer)."""
        self.release()
        self.join(timeout)
        assert not self.is_alive(), f"the {self.kind} did not finish within {timeout} s"
        if self.error is not None:
            raise AssertionError(f"the {self.kind} failed: {self.error!r}")
        assert self.result is not None
        return self.result

    def run(self) -> None:
        try:
            self.sock.connect((lab.STACK_IP, 80))
            if self.kind == "download":
                self._download()
            else:
                self._upload()
        except BaseException as exc:  # handed to finish()
            self.error = exc
        finally:
            self.sock.close()

    def _pace(self, done: int, start: float) -> None:
        ahead = done / self.rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)

    def _head(self, buf: bytes) -> tuple[dict[str, str], bytes]:
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed inside the response header: {buf[:200]!r}")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 200"):
            raise ConnectionError(f"answer {lines[0]!r}")
        return {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}, rest

    def _download(self) -> None:
        import hashlib

        self.sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: {lab.STACK_IP}\r\n\r\n".encode())
        headers, body = self._head(b"")
        total = int(headers["content-length"])
        digest = hashlib.sha256(body)
        got, start = len(body), time.monotonic()
        while got < total:
            if total - got <= self.hold and not self.released.is_set():
                self.holding.set()
                self.released.wait()
            chunk = self.sock.recv(min(65536, total - got))
            if not chunk:
                raise ConnectionError(f"closed after {got} of {total} bytes")
            digest.update(chunk)
            got += len(chunk)
            self._pace(got, start)
        self.length = got
        self.result = digest.hexdigest()

    def _upload(self) -> None:
        body = self.body
        self.sock.sendall(f"POST /sha256 HTTP/1.1\r\nHost: {lab.STACK_IP}\r\nContent-Length: {len(body)}\r\n"
                          f"Content-Type: application/octet-stream\r\n\r\n".encode())
        sent, start = 0, time.monotonic()
        while sent < len(body):
            if len(body) - sent <= self.hold and not self.released.is_set():
                self.holding.set()
                self.released.wait()
            n = min(65536, len(body) - sent)
            self.sock.sendall(body[sent:sent + n])
            sent += n
            self._pace(sent, start)
        self.length = sent
        _headers, rest = self._head(b"")
        while len(rest) < 64:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        self.result = rest[:64].decode()
