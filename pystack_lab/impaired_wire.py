#!/usr/bin/env python3
"""The impaired wire: a lab relay that forwards Ethernet frames between two interfaces.

Why it exists: the lab kernel has no ``sch_netem``, so delay, jitter, reordering,
duplication and corruption cannot come from ``tc``. This relay reads every frame
arriving on interface A or B through an AF_PACKET socket and writes it out of the
other one, after a seeded, per-direction impairment. It is a lab fixture and does
not import pystack: it judges the stack, so it must not share its code.

Layout:
  * ``Impairment``  - the knobs of one direction (percent and milliseconds);
  * ``Direction``   - sans-I/O: frames and times in, due frames out, bounded heap;
  * ``ImpairedWire``- the I/O: two AF_PACKET sockets and an epoll loop in a thread
                      that lives in a given network namespace;
  * ``run_in_netns`` / ``disable_offloads`` - small helpers for lab setup;
  * ``main``        - the CLI (run until SIGTERM, print counters as JSON).
"""

from __future__ import annotations

import argparse
import errno
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterator, TypeVar

ETH_P_ALL = 0x0003
ETH_HEADER_LEN = 14
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
PACKET_STATISTICS = 6
_TPACKET_STATS = struct.Struct("II")  # struct tpacket_stats: tp_packets, tp_drops (native order)
# struct virtio_net_hdr (little-endian on the hosts we run on): flags, gso_type, hdr_len,
# gso_size, csum_start, csum_offset. With PACKET_VNET_HDR the kernel tells us about
# offloads instead of handing us frames that are not what a wire would carry.
VNET_HDR = struct.Struct("<BBHHHH")
VNET_NONE = bytes(VNET_HDR.size)
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_GSO_NONE = 0
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
SOCKET_BUFFER = 4 * 1024 * 1024
MAX_FRAME = 65536 + 64  # a GSO super-frame is at most 64 KiB; see disable_offloads
READ_BATCH = 64  # frames read from one socket before looking at the other and the timers

T = TypeVar("T")


@dataclass(frozen=True)
class Impairment:
    """What happens to frames going one way. Percentages are 0..100, times in ms."""

    loss: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0  # uniform in [-jitter, +jitter], added to delay, clamped at 0
    reorder: float = 0.0  # percent of frames held back by reorder_gap on top of the delay
    reorder_gap: float = 10.0
    duplicate: float = 0.0  # percent of frames sent twice (each copy delayed independently)
    corrupt: float = 0.0  # percent of copies with one random bit flipped past the Ethernet header
    limit: int = 1000  # frames waiting in the queue at most; beyond that, drop and count

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{name} must be a percentage in 0..100, got {value}")
        for name in ("delay", "jitter", "reorder_gap"):
            value = getattr(self, name)
            if value < 0.0:
                raise ValueError(f"{name} must be >= 0 ms, got {value}")
        if self.limit < 1:
            raise ValueError(f"limit must be >= 1 frame, got {self.limit}")


@dataclass
class DirectionCounters:
    """Counters of one direction. forwarded counts frames actually written out."""

    received: int = 0
    forwarded: int = 0
    dropped: int = 0  # by the loss impairment
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0
    queue_full: int = 0
    send_errors: int = 0  # the kernel refused the write (ENOBUFS, EAGAIN, ...)
    oversize: int = 0  # EMSGSIZE: frame bigger than the output MTU
    csum_completed: int = 0  # arrived with TX checksum offload pending; finished here
    gso_dropped: int = 0  # arrived as a GSO super-frame (TSO/GSO left on); not relayed
    socket_drops: int = 0  # the kernel dropped them before the relay read them: its socket buffer was full


@dataclass
class Direction:
    """Sans-I/O impairment of one direction: ``push`` frames, ``pop_due`` them later.

    The queue is a heap of (release_time, seq, frame); seq keeps equal release times in
    arrival order. Every random decision comes from ``rng`` so a seed replays a run.
    """

    impairment: Impairment
    rng: random.Random
    counters: DirectionCounters = field(default_factory=DirectionCounters)
    _heap: list[tuple[float, int, bytes]] = field(default_factory=list)
    _seq: int = 0

    def push(self, frame: bytes, now: float) -> None:
        """Take one received frame at time ``now`` (seconds) and queue its copies."""
        imp, rng, c = self.impairment, self.rng, self.counters
        c.received += 1
        if imp.loss and rng.random() * 100.0 < imp.loss:
            c.dropped += 1
            return
        copies = 1
        if imp.duplicate and rng.random() * 100.0 < imp.duplicate:
            c.duplicated += 1
            copies = 2
        for _ in range(copies):
            out = frame
            if imp.corrupt and len(frame) > ETH_HEADER_LEN and rng.random() * 100.0 < imp.corrupt:
                out = _flip_bit(frame, rng)
                c.corrupted += 1
            delay_ms = imp.delay
            if imp.jitter:
                delay_ms = max(0.0, delay_ms + rng.uniform(-imp.jitter, imp.jitter))
            if imp.reorder and rng.random() * 100.0 < imp.reorder:
                delay_ms += imp.reorder_gap
                c.reordered += 1
            if len(self._heap) >= imp.limit:
                c.queue_full += 1
                continue
            self._seq += 1
            heapq.heappush(self._heap, (now + delay_ms / 1000.0, self._seq, out))

    def pop_due(self, now: float) -> Iterator[bytes]:
        """Yield, in release order, every queued frame whose time has come."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            yield heapq.heappop(heap)[2]

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def queued(self) -> int:
        return len(self._heap)


def _flip_bit(frame: bytes, rng: random.Random) -> bytes:
    """One bit flipped at a random place after the Ethernet header, so the frame still
    reaches the peer and its IP/TCP/UDP checksums have to catch the damage."""
    buf = bytearray(frame)
    pos = rng.randrange(ETH_HEADER_LEN, len(buf))
    buf[pos] ^= 1 << rng.randrange(8)
    return bytes(buf)


def direction_rng(seed: int, name: str) -> random.Random:
    """A generator per direction, so traffic one way does not shift the dice of the other."""
    return random.Random(f"impaired-wire:{seed}:{name}")


def run_in_netns(ns: str | None, fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn`` in a short-lived thread moved into namespace ``ns``.

    Python 3.11 has no os.setns; pyroute2's netns.setns moves only the calling thread,
    which is what we want: the caller stays where it is, and sockets or ethtool handles
    made by ``fn`` keep the namespace they were made in.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            if ns:
                _enter_netns(ns)
            box["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _enter_netns(ns: str) -> None:
    from pyroute2 import netns  # imported late: --help and flag errors need no pyroute2

    netns.setns(ns, flags=0)  # flags=0: never create a namespace by accident


# Offloads that make the kernel hand AF_PACKET frames that are not on-the-wire frames:
# TSO/GSO/GRO give super-frames above the MTU, TX checksum offload leaves the L4
# checksum unfinished (CHECKSUM_PARTIAL) so a relayed copy would carry a bad checksum.
OFFLOADS = (
    "tx-checksum-ipv4",
    "tx-checksum-ip-generic",
    "tx-checksum-ipv6",
    "tx-checksum-sctp",
    "tx-scatter-gather",
    "tx-tcp-segmentation",
    "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation",
    "tx-udp-segmentation",
    "tx-generic-segmentation",
    "rx-gro",
    "rx-gro-list",
    "rx-udp-gro-forwarding",
    "rx-lro",
)


def disable_offloads(ifname: str, ns: str | None = None) -> list[str]:
    """Turn the OFFLOADS off on ``ifname`` (like ``ethtool -K``); return what changed."""

    def work() -> list[str]:
        from pyroute2.ethtool import Ethtool

        with Ethtool() as tool:
            current = tool.get_features(ifname)
            changed = []
            for name in OFFLOADS:
                feature = current.features.get(name)
                if feature is not None and feature.available and feature.enable:
                    feature.enable = False
                    changed.append(name)
            if changed:
                tool.set_features(ifname, current)
            return changed

    return run_in_netns(ns, work)


class ImpairedWire:
    """Relay frames between ``if_a`` and ``if_b`` with one Impairment per direction.

    ``start()`` opens the sockets inside ``netns`` (in the relay thread) and returns once
    they are bound, raising if that failed; ``stop()`` wakes the loop, joins the thread
    and closes the sockets. Frames still queued at stop are discarded. ``on_failure`` is
    called from the relay thread if the loop dies of an exception (see ``error``).
    """

    def __init__(
        self,
        if_a: str,
        if_b: str,
        a_to_b: Impairment | None = None,
        b_to_a: Impairment | None = None,
        seed: int = 0,
        netns: str | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.if_a, self.if_b, self.netns = if_a, if_b, netns
        self._on_failure = on_failure
        self.a_to_b = Direction(a_to_b or Impairment(), direction_rng(seed, "a_to_b"))
        self.b_to_a = Direction(b_to_a or Impairment(), direction_rng(seed, "b_to_a"))
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._sock_a: socket.socket | None = None
        self._sock_b: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # --- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "ImpairedWire":
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._main, name="impaired-wire", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError("impaired wire did not come up")
        if self._error is not None:
            self.stop()
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> "ImpairedWire":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def error(self) -> BaseException | None:
        """An exception that ended the relay loop early, if any."""
        return self._error

    def counters(self) -> dict[str, dict[str, int]]:
        """A snapshot: {"a_to_b": {...}, "b_to_a": {...}}, plus "queued" frames."""
        self._read_socket_drops()
        out = {}
        for name, d in (("a_to_b", self.a_to_b), ("b_to_a", self.b_to_a)):
            snap = asdict(d.counters)
            snap["queued"] = d.queued()
            out[name] = snap
        return out

    def _read_socket_drops(self) -> None:
        """Add what the kernel dropped at each input socket since the last read (PACKET_STATISTICS,
        packet(7): reading resets it). Such frames never reach the relay, so no other counter sees them."""
        for direction, sock in ((self.a_to_b, self._sock_a), (self.b_to_a, self._sock_b)):
            if sock is None:
                continue
            try:
                _packets, drops = _TPACKET_STATS.unpack(
                    sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _TPACKET_STATS.size))
            except OSError:
                continue  # closed meanwhile
            direction.counters.socket_drops += drops

    # --- the relay thread ----------------------------------------------------------
    def _main(self) -> None:
        socks: list[socket.socket] = []
        try:
            if self.netns:
                _enter_netns(self.netns)
            sock_a = _open_packet_socket(self.if_a)
            socks.append(sock_a)
            sock_b = _open_packet_socket(self.if_b)
            socks.append(sock_b)
            self._sock_a, self._sock_b = sock_a, sock_b
        except BaseException as exc:
            self._error = exc
            for s in socks:
                s.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop(sock_a, sock_b)
        except BaseException as exc:
            self._error = exc
            if self._on_failure is not None:
                self._on_failure()
        finally:
            for s in socks:
                s.close()

    def _loop(self, sock_a: socket.socket, sock_b: socket.socket) -> None:
        # (input socket, its direction, output socket)
        routes = {
            sock_a.fileno(): (sock_a, self.a_to_b, sock_b),
            sock_b.fileno(): (sock_b, self.b_to_a, sock_a),
        }
        outputs = ((self.a_to_b, sock_b), (self.b_to_a, sock_a))
        buf = bytearray(MAX_FRAME)
        view = memoryview(buf)
        outgoing = socket.PACKET_OUTGOING
        ep = select.epoll()
        try:
            for fd in routes:
                ep.register(fd, select.EPOLLIN)
            ep.register(self._wake_r, select.EPOLLIN)
            while not self._stopping.is_set():
                now = time.monotonic()
                deadline = None
                for direction, out in outputs:
                    for frame in direction.pop_due(now):
                        _send(out, frame, direction.counters)
                    d = direction.next_deadline()
                    if d is not None and (deadline is None or d < deadline):
                        deadline = d
                # epoll rounds the timeout up to whole ms, so a near deadline cannot spin.
                timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                for fd, _events in ep.poll(timeout):
                    if fd == self._wake_r:
                        continue  # the loop condition decides
                    sock_in, direction, sock_out = routes[fd]
                    for _ in range(READ_BATCH):
                        try:
                            n, addr = sock_in.recvfrom_into(buf)
                        except (BlockingIOError, InterruptedError):
                            break
                        if addr[2] == outgoing or n < VNET_HDR.size:
                            continue  # our own write on this interface, or the kernel's
                        flags, gso_type, _, _, csum_start, csum_offset = VNET_HDR.unpack_from(buf)
                        if gso_type != VIRTIO_NET_HDR_GSO_NONE:
                            direction.counters.gso_dropped += 1
                            continue
                        if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
                            frame = complete_checksum(view[VNET_HDR.size:n], csum_start, csum_offset)
                            direction.counters.csum_completed += 1
                        else:
                            frame = bytes(view[VNET_HDR.size:n])
                        now = time.monotonic()
                        direction.push(frame, now)
                        if direction.impairment.delay == 0 and not direction.impairment.jitter:
                            # Fast path: nothing to wait for, write now (keeps order too).
                            for frame in direction.pop_due(now):
                                _send(sock_out, frame, direction.counters)
        finally:
            ep.close()


def _open_packet_socket(ifname: str) -> socket.socket:
    """A non-blocking AF_PACKET socket seeing every frame of ``ifname`` (promiscuous)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)
        sock.bind((ifname, ETH_P_ALL))
        ifindex = socket.if_nametoindex(ifname)
        # struct packet_mreq: int ifindex, u16 type, u16 alen, u8 address[8]
        mreq = ifindex.to_bytes(4, sys.byteorder) + PACKET_MR_PROMISC.to_bytes(2, sys.byteorder)
        mreq += bytes(2 + 8)
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def complete_checksum(frame: memoryview | bytes, csum_start: int, csum_offset: int) -> bytes:
    """Finish a CHECKSUM_PARTIAL frame: the field at csum_start+csum_offset holds the
    pseudo-header sum; the Internet checksum (RFC 1071) covers csum_start..end.

    2**16 == 1 (mod 0xFFFF), so the big integer of the bytes taken mod 0xFFFF is the
    ones-complement sum of its 16-bit words (0 standing for 0xFFFF); 0xFFFF - s is then
    never 0, which also keeps UDP's "no checksum" value out (RFC 768).
    """
    buf = bytearray(frame)
    field_at = csum_start + csum_offset
    if csum_start >= len(buf) or field_at + 2 > len(buf):
        return bytes(buf)  # nonsense offsets: relay as is, the peer will judge
    covered = bytes(buf[csum_start:])
    if len(covered) % 2:
        covered += b"\x00"
    s = int.from_bytes(covered, "big") % 0xFFFF
    buf[field_at:field_at + 2] = (0xFFFF - s).to_bytes(2, "big")
    return bytes(buf)


def _send(sock: socket.socket, frame: bytes, counters: DirectionCounters) -> None:
    try:
        sock.sendmsg([VNET_NONE, frame])  # header all zero: a plain, finished frame
    except OSError as exc:
        if exc.errno == errno.EMSGSIZE:
            counters.oversize += 1
        else:
            counters.send_errors += 1
        return
    counters.forwarded += 1


# --- CLI ------------------------------------------------------------------------------
class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag gives exactly one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _percent(text: str) -> float:
    value = _non_negative(text)
    if value > 100.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage in 0..100")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0.0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


_KNOBS: dict[str, tuple[Callable[[str], Any], str, str]] = {
    "loss": (_percent, "PCT", "percent of frames dropped"),
    "delay": (_non_negative, "MS", "delay in ms"),
    "jitter": (_non_negative, "MS", "ms, uniform +/- around the delay"),
    "reorder": (_percent, "PCT", "percent of frames held back by --reorder-gap"),
    "reorder_gap": (_non_negative, "MS", "extra ms for reordered frames (default 10)"),
    "duplicate": (_percent, "PCT", "percent of frames sent twice"),
    "corrupt": (_percent, "PCT", "percent of frames with one bit flipped"),
    "limit": (_positive_int, "N", "queue size in frames per direction (default 1000)"),
}


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="impaired_wire",
        description="Relay Ethernet frames between two interfaces with seeded impairments. "
        "Runs until SIGTERM/SIGINT, then prints counters as JSON; SIGUSR1 prints them too.",
    )
    p.add_argument("--netns", help="network namespace holding both interfaces (default: current)")
    p.add_argument("--a", required=True, metavar="IF", help="interface A")
    p.add_argument("--b", required=True, metavar="IF", help="interface B")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    both = p.add_argument_group("impairments, both directions")
    per = p.add_argument_group("per-direction overrides (win over the both-directions value)")
    for knob, (kind, metavar, text) in _KNOBS.items():
        flag = knob.replace("_", "-")
        both.add_argument(f"--{flag}", dest=knob, type=kind, metavar=metavar, help=text)
        for d in ("a_to_b", "b_to_a"):
            per.add_argument(
                f"--{d.replace('_', '-')}-{flag}", dest=f"{d}_{knob}", type=kind, metavar=metavar
            )
    return p


def impairments_from_args(args: argparse.Namespace) -> tuple[Impairment, Impairment]:
    defaults = {f.name: f.default for f in fields(Impairment)}
    out = []
    for d in ("a_to_b", "b_to_a"):
        values = {}
        for knob in _KNOBS:
            value = getattr(args, f"{d}_{knob}")
            if value is None:
                value = getattr(args, knob)
            values[knob] = defaults[knob] if value is None else value
        out.append(Impairment(**values))
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        a_to_b, b_to_a = impairments_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    # Block the signals before the relay thread exists so that only sigwait sees them.
    waited = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    main_thread = threading.get_ident()
    wire = ImpairedWire(
        args.a, args.b, a_to_b, b_to_a, seed=args.seed, netns=args.netns,
        on_failure=lambda: signal.pthread_kill(main_thread, signal.SIGTERM),  # end sigwait
    )
    try:
        wire.start()
    except Exception as exc:
        sys.stderr.write(f"impaired_wire: cannot start: {exc}\n")
        return 1
    print(json.dumps({"ready": True, "a": args.a, "b": args.b, "netns": args.netns}), flush=True)
    try:
        while True:
            sig = signal.sigwait(waited)
            print(json.dumps(wire.counters()), flush=True)
            if sig != signal.SIGUSR1:
                break
    finally:
        wire.stop()
    if wire.error is not None:
        sys.stderr.write(f"impaired_wire: relay failed: {wire.error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
