"""Helpers of the TCP integration tests (test_tcp_*.py): random files, curl, ``ss``, nftables loss,
the relay lab through the impaired wire, and an embedded pystack HTTP client.

Everything runs in namespaces the tests made (pystack_lab.lab). Each check compares SHA-256 digests
of what was sent and what arrived, so a transfer cannot pass by length or by luck.

Run as a program (``python tcp_lab.py client ...`` inside a namespace with ``ip netns exec``) this
module is the embedded client: it opens a TAP, gives the kernel side an address, runs pystack in a
thread and answers one HTTP GET per line of JSON on stdin with one line of JSON on stdout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pystack_lab import impaired_wire, lab

REPO = Path(__file__).resolve().parents[2]

MiB = 1024 * 1024
HTTP_URL = f"http://{lab.STACK_IP}"

# --- files --------------------------------------------------------------------------------------


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` (in 1 MiB pieces); return their SHA-256 in hex."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(left, MiB))
            digest.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


# --- curl ---------------------------------------------------------------------------------------


def curl(ns: lab.Namespace, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """The kernel's curl in ``ns`` (silent, errors shown, no proxy from the environment, bounded in
    time); a non-zero exit fails the test with curl's stderr."""
    argv = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "10", "--max-time", str(int(timeout)), *args]
    try:
        proc = ns.run(argv, timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"curl did not finish within {timeout} s: {argv}")
    if proc.returncode != 0:
        pytest.fail(f"curl exited with {proc.returncode}: {proc.stderr.strip()}\nargv: {argv}")
    return proc


# --- ss -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SocketRow:
    state: str
    local: tuple[str, int]
    peer: tuple[str, int]


def _endpoint(text: str) -> tuple[str, int]:
    """``192.0.2.1:80`` -> ("192.0.2.1", 80); a listener's wildcard peer ``0.0.0.0:*`` has port 0."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def ss_tcp(ns: lab.Namespace) -> list[SocketRow]:
    """The kernel's TCP sockets in ``ns`` as ``ss -tan`` lists them (listeners included)."""
    proc = ns.run(["ss", "-tanH"], timeout=15, check=True)
    rows = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        rows.append(SocketRow(parts[0], _endpoint(parts[3]), _endpoint(parts[4])))
    return rows


def ss_state(ns: lab.Namespace, local: tuple[str, int], peer: tuple[str, int]) -> str | None:
    """The state ``ss`` shows for one connection, or None when the kernel has no such socket."""
    for row in ss_tcp(ns):
        if row.local == local and row.peer == peer:
            return row.state
    return None


def wait_state(ns: lab.Namespace, local: tuple[str, int], peer: tuple[str, int], want: str | None,
               timeout: float = 5.0) -> str | None:
    """Poll ``ss`` until the connection is in state ``want`` (None: gone), bounded in time; return the
    last state seen."""
    deadline = time.monotonic() + timeout
    while True:
        state = ss_state(ns, local, peer)
        if state == want or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


# --- tcpdump: an independent reading of the wire -------------------------------------------------


@contextlib.contextmanager
def capture(ns: lab.Namespace, ifname: str, path: Path, snaplen: int = 128) -> Iterator[Path]:
    """tcpdump on ``ifname`` in ``ns`` (headers only) writing ``path``; stopped by PID on the way out,
    after which the file is complete (tcpdump's own count of what it captured must match what its
    filter received, or the reading would be partial)."""
    proc = ns.spawn(["tcpdump", "-i", ifname, "--immediate-mode", "-U", "-n", "-B", "32768", "-s", str(snaplen),
                     "-w", str(path), "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "listening on pst0, ..." once the capture runs
        if "listening on" not in line:
            raise lab.LabError(f"tcpdump did not start: {line.strip()}")
        yield path
        time.sleep(0.5)  # let it write what is still in its buffer before it is stopped
    finally:
        lab.stop_process(proc)
    assert proc.stderr is not None
    summary = proc.stderr.read()
    captured = re.search(r"(\d+) packets? captured", summary)
    received = re.search(r"(\d+) packets? received by filter", summary)
    if not captured or not received or captured.group(1) != received.group(1):
        raise lab.LabError(f"tcpdump missed packets: {summary.strip()}")


def tsval_regressions(pcap: Path, src_ip: str) -> list[tuple[int, int, int]]:
    """Per TCP connection from ``src_ip``, every segment whose TSval is below one sent before it on that
    connection (RFC 7323 5.4: the timestamp clock must not go backwards): (port, highest, tsval)."""
    import ipaddress

    import dpkt

    src = ipaddress.IPv4Address(src_ip).packed
    highest: dict[tuple[int, int], int] = {}
    found = []
    with open(pcap, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            if not isinstance(ip, dpkt.ip.IP) or ip.src != src or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            seg = ip.data
            tsval = next((int.from_bytes(v[:4], "big") for k, v in dpkt.tcp.parse_opts(seg.opts)
                          if k == dpkt.tcp.TCP_OPT_TIMESTAMP), None)
            if tsval is None:
                continue
            key = (seg.sport, seg.dport)
            top = highest.get(key)
            if top is not None and (top - tsval) & 0xFFFFFFFF and ((top - tsval) & 0xFFFFFFFF) < 0x80000000:
                found.append((seg.dport, top, tsval))
            else:
                highest[key] = tsval
    return found


# --- the kernel's own TCP/IP counters ----------------------------------------------------------


def kernel_mib(ns: lab.Namespace) -> dict[str, int]:
    """The namespace's SNMP and extended counters (/proc/net/snmp and /proc/net/netstat, per netns)
    as {"Tcp.InErrs": n, "TcpExt.PAWSEstab": n, "Ip.InHdrErrors": n, ...}. A fresh namespace starts at 0."""
    proc = ns.run(["cat", "/proc/net/snmp", "/proc/net/netstat"], timeout=15, check=True)
    mib: dict[str, int] = {}
    lines = proc.stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        group, _, keys = names.partition(":")
        for key, value in zip(keys.split(), values.partition(":")[2].split()):
            mib[f"{group}.{key}"] = int(value)
    return mib


# What the kernel counts when a peer sends something it does not accept (or when it resets or gives up
# on a connection). Retransmission counters are not here: they follow the machine's load.
DISTRUST = (
    "Ip.InHdrErrors", "Ip.InAddrErrors", "Ip.InUnknownProtos", "Ip.InDiscards", "Ip.ReasmFails",
    "Tcp.InErrs", "Tcp.InCsumErrors", "Tcp.OutRsts", "Tcp.AttemptFails", "Tcp.EstabResets",
    "TcpExt.PAWSActive", "TcpExt.OutOfWindowIcmps",
    "TcpExt.TCPChallengeACK", "TcpExt.TCPSYNChallenge",
    "TcpExt.TCPACKSkippedSynRecv", "TcpExt.TCPACKSkippedSeq",
    "TcpExt.TCPACKSkippedFinWait2", "TcpExt.TCPACKSkippedTimeWait", "TcpExt.TCPACKSkippedChallenge",
    "TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose", "TcpExt.TCPAbortOnTimeout", "TcpExt.TCPAbortFailed",
    "TcpExt.TCPZeroWindowDrop", "TcpExt.TCPRcvQDrop", "TcpExt.TCPBacklogDrop", "TcpExt.ListenDrops",
)
PAWS = ("TcpExt.PAWSEstab", "TcpExt.TCPACKSkippedPAWS")
"""Segments the kernel dropped because their timestamp went backwards (RFC 7323 5.3). Kept apart
from DISTRUST: test_tcp_trust.py checks them on their own (see the xfail there)."""


def kernel_distrust(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The DISTRUST counters that grew between two :func:`kernel_mib` readings, with how much."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in DISTRUST if after.get(k, 0) != before.get(k, 0)}


# --- nftables loss ------------------------------------------------------------------------------

NFT_TABLE = "pstloss"


def nft_loss(ns: lab.Namespace, ifname: str, percent: int) -> None:
    """Drop ``percent`` % of IPv4 packets each way on ``ifname``, at random, on the kernel's side.

    The output chain sees what the kernel sends to pystack, the prerouting chain what pystack sends
    to the kernel; each rule counts what it dropped (see :func:`nft_drops`). ARP is not IPv4 and
    passes, so the loss is TCP's to repair, not ARP's.
    """
    ruleset = f"""
table ip {NFT_TABLE} {{
    chain out {{
        type filter hook output priority 0; policy accept;
        oifname "{ifname}" numgen random mod 100 < {percent} counter drop
    }}
    chain in {{
        type filter hook prerouting priority 0; policy accept;
        iifname "{ifname}" numgen random mod 100 < {percent} counter drop
    }}
}}
"""
    proc = ns.run(["nft", "-f", "-"], input=ruleset, timeout=15)
    if proc.returncode != 0:
        raise lab.LabError(f"nft refused the loss rules: {proc.stderr.strip()}")


def nft_drops(ns: lab.Namespace) -> dict[str, int]:
    """Packets dropped so far by :func:`nft_loss`'s rules: {"out": n, "in": n}."""
    proc = ns.run(["nft", "-j", "list", "table", "ip", NFT_TABLE], timeout=15, check=True)
    drops: dict[str, int] = {}
    for item in json.loads(proc.stdout)["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        for expr in rule["expr"]:
            if "counter" in expr:
                drops[rule["chain"]] = expr["counter"]["packets"]
    return drops


# --- the relay lab: pystack -- impaired wire -- kernel ------------------------------------------


RELAY_VETH = "vr0"  # the veth end in R, bridged to pst0 by the relay
PEER_VETH = "vp0"  # the veth end in P, 192.0.2.1/24


@dataclass
class RelayLab:
    r: lab.Namespace  # pystack's TAP and the relay; no address
    p: lab.Namespace  # the kernel peer at 192.0.2.1
    daemon: lab.Daemon
    wire: impaired_wire.ImpairedWire


@contextlib.contextmanager
def relay_lab(*daemon_args: str, impairment: impaired_wire.Impairment, seed: int,
              workdir: Path) -> Iterator[RelayLab]:
    """pystack in namespace R on TAP pst0 (no --host-address), an ImpairedWire bridging pst0 and a veth
    end in R, and the kernel peer in namespace P (192.0.2.1/24) on the other veth end.

    Offloads are off on every relayed interface so that AF_PACKET sees frames as a wire would carry
    them (impaired_wire.disable_offloads). Both namespaces go away on the way out.
    """
    with lab.namespace("pst-r") as r, lab.namespace("pst-p") as p:
        lab.veth(r, RELAY_VETH, p, PEER_VETH)
        for ns, ifname in ((r, RELAY_VETH), (p, PEER_VETH)):
            ns.disable_ipv6(ifname)
            impaired_wire.disable_offloads(ifname, ns.name)
            ns.link_up(ifname)
        p.add_address(PEER_VETH, lab.HOST_ADDRESS)
        # --no-offload: a wire carries MTU-sized frames; the relay cannot pass TSO super-frames.
        with lab.pystack_daemon(r, "--no-offload", *daemon_args, host_address=None, workdir=workdir) as daemon:
            impaired_wire.disable_offloads(lab.TAP, r.name)
            wire = impaired_wire.ImpairedWire(lab.TAP, RELAY_VETH, impairment, impairment, seed=seed, netns=r.name)
            wire.start()
            try:
                yield RelayLab(r, p, daemon, wire)
            finally:
                wire.stop()
            if wire.error is not None:
                raise lab.LabError(f"the impaired wire failed: {wire.error!r}")


# --- the kernel's HTTP server, for pystack as a client ------------------------------------------


def kernel_http_server(ns: lab.Namespace, directory: Path, port: int) -> subprocess.Popen[Any]:
    """``python3 -m http.server`` speaking HTTP/1.1 on 192.0.2.1:``port`` in ``ns``, once it listens."""
    proc = ns.spawn(["python3", "-m", "http.server", "--bind", lab.HOST_IP, "--directory", str(directory),
                     "--protocol", "HTTP/1.1", str(port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(ns, (lab.HOST_IP, port), proc)
    return proc


def wait_listening(ns: lab.Namespace, addr: tuple[str, int], proc: subprocess.Popen[Any],
                   timeout: float = 15.0) -> None:
    """Poll ``ss`` until a listener on ``addr`` exists (the server came up), bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        if any(row.state == "LISTEN" and row.local == addr for row in ss_tcp(ns)):
            return
        if proc.poll() is not None:
            raise lab.LabError(f"server exited with {proc.returncode} before listening on {addr}")
        if time.monotonic() > deadline:
            raise lab.LabError(f"nothing listened on {addr} within {timeout} s")
        time.sleep(0.05)


def wait_connectable(ns: lab.Namespace, addr: tuple[str, int], proc: subprocess.Popen[Any] | None = None,
                     timeout: float = 30.0) -> None:
    """Until the kernel can connect to ``addr`` (a listener on pystack's side is up, and for IPv6 its
    address configured), bounded in time; a program ``proc`` that exits first fails at once."""
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise lab.LabError(f"the program exited with {proc.returncode} before {addr} answered")
        probe = ns.socket(family, socket.SOCK_STREAM)
        try:
            probe.settimeout(1)
            probe.connect(addr)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise lab.LabError(f"nothing answered on {addr} within {timeout} s") from None
            time.sleep(0.2)
        finally:
            probe.close()


# --- the embedded client: pystack as an HTTP client, run in a namespace -------------------------


class EmbeddedClient:
    """Drives ``tcp_lab.py client`` running in a namespace: one JSON request per line, one answer."""

    def __init__(self, ns: lab.Namespace, tap: str = lab.TAP, address: str = lab.STACK_ADDRESS,
                 host_address: str = lab.HOST_ADDRESS) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = ns.spawn([sys.executable, __file__, "client", "--tap", tap, "--address", address,
                              "--host-address", host_address],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                             text=True, cwd=str(REPO))
        self.ready = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise lab.LabError(f"embedded client exited ({self.proc.returncode}): {self.stderr()}")
        return json.loads(line)

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def request(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def finish(self, timeout: float = 15.0) -> dict[str, int]:
        """Close stdin: the client stops its stack and answers with its counters."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        counters = self._answer()
        self.proc.wait(timeout)
        return counters

    def close(self) -> None:
        lab.stop_process(self.proc)
        self._stderr.close()


def _client_main(argv: Sequence[str]) -> int:
    """The embedded client program (runs inside the namespace, as root, with ``ip netns exec``)."""
    import argparse
    import ipaddress

    from pystack.api.socket import AF_INET, SOCK_STREAM, socket
    from pystack.hostside import configure_host_side
    from pystack.link.tap import TapLink
    from pystack.runtime import Runtime
    from pystack.stack import Stack

    parser = argparse.ArgumentParser(prog="tcp_lab client")
    parser.add_argument("--tap", required=True)
    parser.add_argument("--address", required=True, type=ipaddress.IPv4Interface)
    parser.add_argument("--host-address", required=True, type=ipaddress.IPv4Interface)
    parser.add_argument("--mtu", type=int, default=1500)
    args = parser.parse_args(argv)

    link = TapLink(args.tap, args.mtu)
    configure_host_side(link.name, args.host_address, args.mtu)
    with contextlib.suppress(FileNotFoundError):  # a quiet TAP: no IPv6 router solicitations
        Path(f"/proc/sys/net/ipv6/conf/{link.name}/disable_ipv6").write_text("1")
    stack = Stack(bytes([0x02]) + secrets.token_bytes(5))
    runtime = Runtime(stack, link)
    stack.configure(int(args.address.ip), args.address.network.prefixlen, None, runtime.now())
    loop = runtime.start_thread()
    print(json.dumps({"ready": True, "tap": link.name}), flush=True)

    def get(req: dict[str, Any]) -> dict[str, Any]:
        """One HTTP/1.1 GET over a pystack TCP socket; the body is hashed, never kept."""
        sock = socket(runtime, AF_INET, SOCK_STREAM)
        sock.settimeout(req.get("timeout", 60))
        sock.connect((req["host"], req["port"]))
        local = sock.getsockname()
        request = (f"GET {req['path']} HTTP/1.1\r\nHost: {req['host']}:{req['port']}\r\n"
                   f"User-Agent: pystack-tcp-lab\r\nConnection: keep-alive\r\n\r\n")
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed inside the response header: {head!r}")
            head += chunk
        head, _, body = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0]
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(headers["content-length"])
        digest = hashlib.sha256(body)
        got = len(body)
        time.sleep(req.get("stall", 0.0))  # a reader that stops: pystack's window closes to zero
        pause = req.get("pause", 0.0)  # a slow reader: pystack's receive window fills and reopens
        while got < length:
            chunk = sock.recv(min(req.get("chunk", 65536), length - got))
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
            if pause:
                time.sleep(pause)
        sock.close()  # pystack closes first: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT (RFC 9293 3.6)
        deadline = time.monotonic() + 10
        while sock.state.name not in ("TIME_WAIT", "CLOSED") and time.monotonic() < deadline:
            time.sleep(0.02)
        return {"status": status, "length": length, "received": got, "sha256": digest.hexdigest(),
                "local": list(local), "state_after_close": sock.state.name}

    for line in sys.stdin:
        try:
            answer = get(json.loads(line))
        except Exception as exc:  # reported to the test, which fails with it
            answer = {"error": repr(exc)}
        print(json.dumps(answer), flush=True)

    runtime.stop()
    loop.join(10)
    with runtime.lock:
        counters = dict(stack.counters.items())
    runtime.close()
    print(json.dumps(counters), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        sys.exit(_client_main(sys.argv[2:]))
    sys.exit("usage: tcp_lab.py client --tap NAME --address CIDR --host-address CIDR")
