"""The test lab: throwaway network namespaces, veth pairs, and the pystack daemon run inside them.

Shared by the integration tests, ``make demo`` and ``make bench`` (see docs/lab.md). Links, addresses and
routes are made with pyroute2 netlink calls, never by parsing ``ip`` output. Every namespace gets a random
suffix and is removed in a ``finally``; every process started in one is remembered by PID and stopped by PID.
Nothing here addresses anything outside the namespaces it made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute, netns

REPO = Path(__file__).resolve().parent.parent

# The single-namespace lab shape (docs/lab.md, "Two shapes of lab").
TAP = "pst0"
HOST_IP = "192.0.2.1"
STACK_IP = "192.0.2.2"
HOST_ADDRESS = f"{HOST_IP}/24"
STACK_ADDRESS = f"{STACK_IP}/24"
# IPv6 on the TAP (RFC 3849 documentation prefix; docs/lab.md).
HOST_IP6 = "2001:db8::1"
STACK_IP6 = "2001:db8::2"
HOST_ADDRESS6 = f"{HOST_IP6}/64"
STACK_ADDRESS6 = f"{STACK_IP6}/64"
IFA_F_NODAD = 0x02
"""linux/if_addr.h: an IPv6 address used at once, without the second duplicate address detection takes."""

# Debian tools the lab drives (their packages are in debian-packages.txt).
TOOLS = ("ip", "ping", "nc", "tcpdump")

ETH_P_ALL = 0x0003

T = TypeVar("T")


class LabError(RuntimeError):
    """The lab could not be built or a process in it misbehaved (message says what, with its stderr)."""


def missing_prerequisites(tools: Sequence[str] = TOOLS) -> str | None:
    """Why the lab cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, TAP devices)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return f"needs the lab's Debian tools: {', '.join(missing)} (make install brings them: debian-packages.txt)"
    return None


def pystack_command() -> list[str]:
    """How to start the daemon: the package run by this interpreter, so any venv works."""
    return [sys.executable, "-m", "pystack"]


class Namespace:
    """One network namespace made by :func:`namespace`, with helpers for links and processes in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._procs: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    # --- netlink, from this (root) namespace, through pyroute2 ---

    def ipr(self) -> IPRoute:
        """A netlink socket inside the namespace; use it as a context manager."""
        return IPRoute(netns=self.name)

    def index(self, ifname: str) -> int:
        with self.ipr() as ipr:
            found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LabError(f"no interface {ifname!r} in {self.name}")
        return found[0]

    def link_up(self, ifname: str) -> None:
        with self.ipr() as ipr:
            ipr.link("set", index=self._lookup(ipr, ifname), state="up")

    def set_mtu(self, ifname: str, mtu: int) -> None:
        with self.ipr() as ipr:
            ipr.link("set", index=self._lookup(ipr, ifname), mtu=mtu)

    def add_address(self, ifname: str, cidr: str) -> None:
        iface = ipaddress.IPv4Interface(cidr)
        with self.ipr() as ipr:
            ipr.addr("add", index=self._lookup(ipr, ifname), address=str(iface.ip),
                     prefixlen=iface.network.prefixlen)

    def add_address6(self, ifname: str, cidr: str, *, nodad: bool = True) -> None:
        """An IPv6 address, by default usable at once (``nodad``: the kernel skips DAD's wait)."""
        iface = ipaddress.IPv6Interface(cidr)
        with self.ipr() as ipr:
            ipr.addr("add", index=self._lookup(ipr, ifname), address=str(iface.ip),
                     prefixlen=iface.network.prefixlen, flags=IFA_F_NODAD if nodad else 0)

    def add_route(self, dst: str, gateway: str) -> None:
        """A route to ``dst`` (CIDR, or ``"default"``) via ``gateway``."""
        with self.ipr() as ipr:
            if dst == "default":
                ipr.route("add", dst="0.0.0.0/0", gateway=gateway)
            else:
                ipr.route("add", dst=dst, gateway=gateway)

    def link_stats(self, ifname: str) -> dict[str, int]:
        """The interface's 64-bit counters (rx_packets, tx_dropped, ...) as the kernel keeps them."""
        with self.ipr() as ipr:
            msg = ipr.link("get", index=self._lookup(ipr, ifname))[0]
        stats = msg.get("IFLA_STATS64") or msg.get("IFLA_STATS") or {}
        return dict(stats)

    def mac(self, ifname: str) -> bytes:
        with self.ipr() as ipr:
            msg = ipr.link("get", index=self._lookup(ipr, ifname))[0]
        return bytes(int(p, 16) for p in msg.get("IFLA_ADDRESS").split(":"))

    def neighbour_mac(self, ip: str) -> bytes | None:
        """The kernel's ARP entry for ``ip`` in this namespace, if it has one with a link-layer address."""
        with self.ipr() as ipr:
            for msg in ipr.get_neighbours(dst=ip):
                lladdr = msg.get("NDA_LLADDR")
                if lladdr:
                    return bytes(int(p, 16) for p in lladdr.split(":"))
        return None

    def wait_for_link(self, ifname: str, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            with self.ipr() as ipr:
                found = ipr.link_lookup(ifname=ifname)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise LabError(f"interface {ifname!r} did not appear in {self.name} within {timeout} s")
            time.sleep(0.05)

    @staticmethod
    def _lookup(ipr: IPRoute, ifname: str) -> int:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LabError(f"no interface {ifname!r}")
        return found[0]

    # --- code run inside the namespace ---

    def call_in(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a short-lived thread that entered the namespace; return or raise its result.

        pyroute2's ``setns`` moves only the calling thread (Python 3.11 has no ``os.setns``), so the
        caller's own namespace never changes. Sockets opened there keep working from any thread.
        """
        box: dict[str, Any] = {}

        def body() -> None:
            try:
                netns.setns(self.name, flags=0)  # flags=0: never create a namespace by mistake
                box["result"] = fn(*args)
            except BaseException as exc:  # handed back to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=body, name=f"in-{self.name}", daemon=True)
        thread.start()
        thread.join(30)
        if thread.is_alive():
            raise LabError(f"call into {self.name} did not return within 30 s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket created inside the namespace (usable from any thread)."""
        return self.call_in(socket.socket, family, kind, proto)

    def packet_socket(self, ifname: str) -> socket.socket:
        """An AF_PACKET socket bound to ``ifname``: ``send`` puts raw frames on that link, ``recv`` sees all."""
        sock = self.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((ifname, ETH_P_ALL))  # the name resolves in the socket's own namespace
        except OSError:
            sock.close()
            raise
        return sock

    def write_proc(self, path: str, value: str) -> None:
        """Write a /proc/sys file as seen from inside the namespace (net sysctls are per namespace)."""

        def write() -> None:
            with open(path, "w") as f:
                f.write(value)

        self.call_in(write)

    def read_proc(self, path: str) -> str:
        def read() -> str:
            with open(path) as f:
                return f.read().strip()

        return self.call_in(read)

    def disable_ipv6(self, ifname: str) -> None:
        """Keep the kernel from sending router solicitations and MLD on ``ifname`` (quiet tests).

        A link whose MTU is below IPv6's minimum (1280) has no IPv6 at all, and no file to write.
        """
        try:
            self.write_proc(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "1")
        except FileNotFoundError:
            self.index(ifname)  # still raise if the interface itself is missing

    # --- processes ---

    def cmd(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, check: bool = False,
            input: str | bytes | None = None, text: bool = True) -> subprocess.CompletedProcess[Any]:
        """Run a command in the namespace to completion, output captured; killed after ``timeout``."""
        return subprocess.run(self.cmd(argv), capture_output=True, timeout=timeout, check=check,
                              input=input, text=text, stdin=None if input is not None else subprocess.DEVNULL)

    def spawn(self, argv: Sequence[str], **popen_kw: Any) -> subprocess.Popen[Any]:
        """Start a command in the namespace; it is stopped by PID when the namespace is closed.

        ``ip netns exec`` execs the command, so the PID is the command's own.
        """
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.cmd(argv), **popen_kw)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop every process started here (by PID), then remove the namespace."""
        errors: list[str] = []
        for proc in self._procs:
            try:
                stop_process(proc)
            except Exception as exc:  # keep going: the namespace must go
                errors.append(f"pid {proc.pid}: {exc}")
        self._procs.clear()
        try:
            netns.remove(self.name)
        except FileNotFoundError:
            pass
        if errors:
            raise LabError("; ".join(errors))


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM the process by PID, wait, SIGKILL if it lingers; return its exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


@contextlib.contextmanager
def namespace(prefix: str = "pst") -> Iterator[Namespace]:
    """A fresh namespace ``<prefix>-<random hex>`` with loopback up, removed on the way out."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    netns.create(name)
    ns = Namespace(name)
    try:
        ns.link_up("lo")
        yield ns
    finally:
        ns.close()


def veth(a: Namespace, a_if: str, b: Namespace, b_if: str) -> None:
    """A veth pair with ``a_if`` in ``a`` and ``b_if`` in ``b`` (both down, no address)."""
    with a.ipr() as ipr:
        ipr.link("add", ifname=a_if, kind="veth", peer={"ifname": b_if, "net_ns_fd": b.name})


# --- the pystack daemon in a namespace ---


class Daemon:
    """A running ``pystack run``; its stderr is collected line by line by a reader thread."""

    def __init__(self, ns: Namespace, argv: list[str], stats_path: Path) -> None:
        self.ns = ns
        self.argv = argv
        self.stats_path = stats_path
        self.lines: list[str] = []
        self.counters: dict[str, int] | None = None
        self.returncode: int | None = None
        self._ready = threading.Event()
        self.proc = ns.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        self._reader = threading.Thread(target=self._read, name="pystack-stderr", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if "ready" in line:
                self._ready.set()

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first stderr line matching the regular expression ``pattern``, waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            lines = self.lines[:]
            for line in lines[seen:]:
                if (found := regex.search(line)) is not None:
                    return found
            seen = len(lines)
            if self.proc.poll() is not None:
                self._reader.join(2)
                lines = self.lines[:]
                found = next((m for m in map(regex.search, lines[seen:]) if m), None)
                if found is not None:
                    return found
                raise LabError(f"pystack exited (status {self.proc.returncode}) before logging {pattern!r}:\n"
                               f"{self.stderr()}")
            if time.monotonic() > deadline:
                raise LabError(f"pystack did not log {pattern!r} within {timeout} s; its stderr so far:\n"
                               f"{self.stderr()}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise LabError(f"pystack exited with status {self.proc.returncode} before it was ready:\n"
                               f"{self.stderr()}")
            if time.monotonic() > deadline:
                raise LabError(f"pystack was not ready within {timeout} s; its stderr so far:\n{self.stderr()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """SIGTERM, wait, and return the counters it wrote to --stats-json ({} if it wrote none)."""
        if self.counters is not None:
            return self.counters
        self.returncode = stop_process(self.proc, timeout)
        self._reader.join(5)
        try:
            self.counters = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            self.counters = {}
        return self.counters


@contextlib.contextmanager
def pystack_daemon(ns: Namespace, *extra: str, tap: str = TAP, address: str | None = STACK_ADDRESS,
                   host_address: str | None = HOST_ADDRESS, ready_timeout: float = 20.0,
                   quiet_ipv6: bool = True, workdir: Path | None = None) -> Iterator[Daemon]:
    """Start ``pystack run`` in ``ns`` (single-namespace shape by default) and stop it with SIGTERM on exit.

    Yields once the daemon logged its ``ready`` line; raises :class:`LabError` with its stderr otherwise.
    After the block, ``daemon.counters`` holds what it wrote to ``--stats-json``.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pystack-")))
        stats_path = workdir / f"stats-{secrets.token_hex(3)}.json"
        argv = [*pystack_command(), "run", "--tap", tap]
        if address is not None:
            argv += ["--address", address]
        if host_address is not None:
            argv += ["--host-address", host_address]
        argv += ["--stats-json", str(stats_path), *extra]
        daemon = Daemon(ns, argv, stats_path)
        try:
            daemon.wait_ready(ready_timeout)
            if quiet_ipv6:
                ns.disable_ipv6(tap)
            yield daemon
        finally:
            daemon.stop()


# --- kernel tools, parsed ---


def parse_ping(output: str) -> dict[str, Any]:
    """Transmitted/received counts and per-reply RTTs (ms) from iputils ping output."""
    rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", output)]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    sent, received = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return {"transmitted": sent, "received": received, "rtts": rtts}


def ping(ns: Namespace, dst: str, *, count: int = 5, size: int = 56, interval: float = 0.2,
         wait: float = 2.0, deadline: float | None = None, extra: Sequence[str] = ()) -> dict[str, Any]:
    """The kernel's ping from ``ns``; returns counts, RTTs and the raw output."""
    if deadline is None:
        deadline = count * interval + wait + 3
    argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-s", str(size), "-W", str(wait),
            "-w", str(int(deadline + 0.999)), *extra, dst]
    proc = ns.run(argv, timeout=deadline + 10)
    result = parse_ping(proc.stdout)
    result["output"] = proc.stdout + proc.stderr
    result["returncode"] = proc.returncode
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]
