"""Scanners and odd peers: nmap and hping3 against the daemon, and what RFC 9293 says they should see.

- nmap ``-sS -sU -O`` (SYN scan, UDP scan, OS detection with its odd probes: SYN+FIN+URG+PSH, NULL,
  ACK to open and closed ports, ECN SYNs, ICMP echoes with odd codes) on a few ports of 192.0.2.2
  only: the states it reports are the true ones.
- hping3 with SYN, SYN+FIN, FIN, XMAS (FIN+PSH+URG), NULL, ACK and RST to a closed and to an open
  port; each answer, read from the wire, is checked field by field:
  * closed port (RFC 9293 3.10.7.1): a RST is dropped; with ACK the answer is <SEQ=SEG.ACK><RST>;
    without, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><RST,ACK> (SEG.LEN counts SYN and FIN);
  * LISTEN (3.10.7.2): a RST is ignored; an ACK gets <SEQ=SEG.ACK><RST>; a SYN gets SYN-ACK with
    ACK = SEG.SEQ+1 (for SYN+FIN, RFC 9293 says the same; Linux drops it: either is accepted, a RST
    is not); anything else (FIN, XMAS, NULL) is dropped without an answer.
- Afterwards nothing is left behind: no half-open or established connection, no internal error, and
  a normal curl works.
"""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

import hostile_lab as hl
from pystack_lab import lab
from tcp_lab import HTTP_URL

pytestmark = pytest.mark.integration

CLOSED_TCP, CLOSED_UDP = 22, 53


@pytest.fixture(scope="module")
def scanners(require_tools: Callable[..., None]) -> None:
    require_tools("nmap", "hping3")


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello after the scan\n")
    return root


@pytest.fixture
def daemon(scanners: None, ns: lab.Namespace, tmp_path: Path, www: Path, daemon_ready: None):
    with hl.observed_daemon(ns, "--echo", "--discard", "--http", str(www), workdir=tmp_path) as observed:
        yield observed


def settled(daemon: hl.Observed, timeout: float = 15.0) -> dict:
    """Wait until pystack holds no half-open or established connection; return that snapshot."""
    deadline = time.monotonic() + timeout
    while True:
        snap = daemon.snapshot()
        sizes = snap["sizes"]
        if not sizes["tcp_syn_received"] and not sizes["tcp_established"]:
            return snap
        assert time.monotonic() < deadline, f"connections left behind: {sizes}"
        time.sleep(0.3)


def after_the_scan(daemon: hl.Observed) -> None:
    settled(daemon)
    daemon.check_bounds()
    proc = hl.spawn_curl(daemon.ns, f"{HTTP_URL}/hello.txt", timeout=30)
    code, out, err = hl.finish(proc)
    assert code == 0 and out == "hello after the scan\n", f"curl {code}: {err}"
    assert daemon.counters().get("drop.internal_error", 0) == 0


def test_nmap_syn_udp_and_os_scan(daemon: hl.Observed) -> None:
    ns = daemon.ns
    rss_before = daemon.rss_mib()
    argv = ["nmap", "-n", "-Pn", "-sS", "-sU", "-O", "-p", f"T:7,9,80,{CLOSED_TCP},U:7,{CLOSED_UDP}",
            "--max-retries", "2", "--host-timeout", "150s", "-oX", "-", lab.STACK_IP]
    proc = ns.run(argv, timeout=200)
    assert proc.returncode == 0, proc.stderr
    root = ET.fromstring(proc.stdout)
    states = {(p.get("protocol"), int(p.get("portid"))): p.find("state").get("state") for p in root.iter("port")}
    osmatch = [m.get("name") for m in root.iter("osmatch")][:3]
    print(f"\nnmap: {states}; OS guesses: {osmatch or 'none'}")
    assert states == {("tcp", 7): "open", ("tcp", 9): "open", ("tcp", 80): "open", ("tcp", CLOSED_TCP): "closed",
                      ("udp", 7): "open", ("udp", CLOSED_UDP): "closed"}, states
    after_the_scan(daemon)
    hl.report_rss("nmap", rss_before, daemon.rss_mib())


# flags name -> (hping3 flags, the segment's SEG.LEN contribution from SYN and FIN, has ACK)
PROBES = {
    "SYN": (["-S"], 1, False),
    "SYN+FIN": (["-S", "-F"], 2, False),
    "FIN": (["-F"], 1, False),
    "XMAS": (["-F", "-P", "-U"], 1, False),
    "NULL": ([], 0, False),
    "ACK": (["-A"], 0, True),
    "RST": (["-R"], 0, False),
}


def hping(ns: lab.Namespace, port: int, sport: int, seq: int, ack: int, flags: list[str]) -> str:
    argv = ["hping3", "-c", "1", "-p", str(port), "-s", str(sport), "-k", "-M", str(seq), "-L", str(ack),
            *flags, lab.STACK_IP]
    try:
        proc = ns.run(argv, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hping3 did not finish: {argv}")
    return proc.stdout + proc.stderr


def answers_to(sniffer: hl.Sniffer, sport: int, source: int | None = hl.STACK_INT) -> list[tuple[int, int, int]]:
    """(flags, seq, ack) of every TCP segment pystack sent to the kernel's port ``sport`` (from ``source``,
    or from any address when None)."""
    out = []
    with sniffer.lock:
        frames = list(sniffer.frames)
    for _t, outgoing, frame in frames:
        got = hl.parse_tcp_frame(frame)
        if got and not outgoing and got[1] == hl.HOST_INT and got[3] == sport and source in (None, got[0]):
            out.append((got[6], got[4], got[5]))
    return out


@pytest.mark.parametrize("port_kind", ["closed", "listen"])
def test_hping3_flag_combinations_get_rfc_answers(daemon: hl.Observed, port_kind: str) -> None:
    ns = daemon.ns
    port = CLOSED_TCP if port_kind == "closed" else 80
    start = daemon.counters()
    results = {}
    with hl.sniffer(ns) as sn:
        sn.keep_frames = True
        for i, (name, (flags, syn_fin_len, has_ack)) in enumerate(PROBES.items()):
            sport, seq, ack = 41000 + i, 1_000_000 * (i + 1), 7_000_000 * (i + 1)
            output = hping(ns, port, sport, seq, ack, flags)
            time.sleep(0.3)
            results[name] = (answers_to(sn, sport), seq, ack, syn_fin_len, has_ack, output)
    lines = []
    for name, (answers, seq, ack, seg_len, has_ack, output) in results.items():
        lines.append(f"{name:8} -> {[(hl_flags(f), s, a) for f, s, a in answers] or 'no answer'}")
    print(f"\nhping3 to a {port_kind} port {port}:\n  " + "\n  ".join(lines))
    for name, (answers, seq, ack, seg_len, has_ack, output) in results.items():
        first = answers[0] if answers else None
        if name == "RST":
            assert not answers, f"{name}: a RST was answered: {answers}"
        elif has_ack:  # both kinds of port: <SEQ=SEG.ACK><CTL=RST>
            assert first == (hl.RST, ack, 0) or (first and first[0] == hl.RST and first[1] == ack), \
                f"{name}: {answers}\n{output}"
        elif port_kind == "closed":  # <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            assert first == (hl.RST | hl.ACK, 0, seq + seg_len), f"{name}: {answers}\n{output}"
        elif name == "SYN":
            assert first and first[0] == hl.SYN | hl.ACK and first[2] == seq + 1, f"{name}: {answers}\n{output}"
        elif name == "SYN+FIN":
            assert not answers or (first[0] == hl.SYN | hl.ACK and first[2] == seq + 1), f"{name}: {answers}"
        else:  # FIN, XMAS, NULL to LISTEN: dropped silently
            assert not answers, f"{name} to LISTEN was answered: {answers}"
    c = {k: v - start.get(k, 0) for k, v in daemon.counters().items()}
    print(f"  counters: {dict(sorted((k, v) for k, v in c.items() if k.startswith(('drop.tcp', 'tcp.rst'))))}")
    if port_kind == "listen":
        assert c.get("drop.tcp.listen_no_syn", 0) >= 3 and c.get("drop.tcp.listen_rst", 0) >= 1, c
    else:
        assert c.get("drop.tcp.no_socket", 0) >= len(PROBES), c
    after_the_scan(daemon)


def hl_flags(flags: int) -> str:
    names = ((hl.SYN, "S"), (hl.FIN, "F"), (hl.RST, "R"), (hl.PSH, "P"), (hl.ACK, "A"), (hl.URG, "U"))
    return "".join(n for bit, n in names if flags & bit) or "-"


def test_tcp_to_the_broadcast_address_gets_no_answer(daemon: hl.Observed) -> None:
    """A SYN to 192.0.2.255:80 and an ACK to 192.0.2.255:81 are discarded (RFC 1122 4.2.3.10): no SYN-ACK,
    no RST, from any source address."""
    ns = daemon.ns
    bcast = hl.ip_int("192.0.2.255")
    with hl.sniffer(ns) as sn, hl.raw_wire(ns) as wire:
        sn.keep_frames = True
        frames = [wire.eth(hl.ETH_IPV4, hl.ipv4(hl.HOST_INT, bcast, 6, hl.tcp(hl.HOST_INT, bcast, 42000, 80, 1, 0,
                                                                               hl.SYN)), dst=b"\xff" * 6),
                  wire.eth(hl.ETH_IPV4, hl.ipv4(hl.HOST_INT, bcast, 6, hl.tcp(hl.HOST_INT, bcast, 42001, 81, 1, 5,
                                                                               hl.ACK)), dst=b"\xff" * 6)]
        wire.send(frames)
        time.sleep(0.5)
        answers = answers_to(sn, 42000, source=None) + answers_to(sn, 42001, source=None)
    assert not answers, f"pystack answered TCP sent to 192.0.2.255: {answers}"
