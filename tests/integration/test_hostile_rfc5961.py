"""Blind in-window attacks (RFC 5961) against live kernel -> pystack connections.

An off-path attacker knows the 4-tuple (here: the kernel's port, read from the wire) but not the
sequence numbers. Forged RSTs, SYNs and data, with correct checksums and no timestamp option (a blind
attacker cannot know one), are written raw into the TAP while a kernel socket downloads from or uploads
to pystack. The rules (RFC 5961):

- a RST outside the window is dropped silently (3.2); inside it but not exactly RCV.NXT, it earns a
  challenge ACK and changes nothing;
- a SYN in a synchronized state earns a challenge ACK whatever its sequence number (4.2);
- data outside the window is dropped (and ACKed); data inside it whose ACK is older than
  SND.UNA - MAX.SND.WND earns a challenge ACK, beyond SND.MAX an ACK, and is dropped either way (5.2).

The transfer must complete byte-exact (SHA-256: a single accepted forged byte would show), and each
challenge ACK must be on the wire: pystack's pure ACKs, read from its own --pcap with dpkt.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from pathlib import Path

import dpkt
import pytest

import hostile_lab as hl
from pystack_lab import lab
from tcp_lab import MiB, random_file

pytestmark = pytest.mark.integration

HALF = 1 << 31
PACED = 20
"""In-window forgeries per burst: bursts 0.25 s apart stay under the 100/s challenge-ACK limit."""


@pytest.fixture
def daemon(ns: lab.Namespace, tmp_path: Path, www: Path, daemon_ready: None):
    with hl.observed_daemon(ns, "--http", str(www), "--echo", "--pcap", str(tmp_path / "pystack.pcap"),
                            workdir=tmp_path) as observed:
        yield observed


class Attacker:
    """Forges segments on one connection, as from the kernel's side."""

    def __init__(self, wire: hl.RawWire, conn: hl.Conn, rng: random.Random) -> None:
        self.wire, self.conn, self.rng = wire, conn, rng

    def frame(self, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
        return self.wire.eth(hl.ETH_IPV4, hl.ipv4(hl.HOST_INT, hl.STACK_INT, 6, hl.tcp(
            hl.HOST_INT, hl.STACK_INT, self.conn.kernel_port, self.conn.stack_port, seq, ack, flags,
            window=self.rng.randrange(1, 0x10000), payload=payload), ident=self.rng.randrange(0x10000)))

    def far(self, rcv_nxt: int) -> int:
        """A guess that misses the window: half the sequence space away, give or take 2^29."""
        return (rcv_nxt + HALF + self.rng.randrange(-(1 << 29), 1 << 29)) & 0xFFFFFFFF

    def junk(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(1, 1200))


def pystack_pure_acks(pcap: Path, kernel_port: int) -> list[tuple[int, int]]:
    """(seq, ack) of every segment pystack sent on the connection with only ACK set and no data."""
    out = []
    with open(pcap, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP) or ip.src != hl.STACK or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            seg = ip.data
            if seg.dport == kernel_port and seg.flags == dpkt.tcp.TH_ACK and not seg.data:
                out.append((seg.seq, seg.ack))
    return out


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_blind_attacks_on_a_download(daemon: hl.Observed, www: Path, tmp_path: Path) -> None:
    """A kernel socket downloads 12 MiB (paced, its last part held until the attack is over) while every
    kind of blind forgery arrives; the SHA-256 of what it read must be the file's."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    digest = random_file(www / "file.bin", 12 * MiB)
    with hl.sniffer(ns) as sn, hl.raw_wire(ns) as wire:
        download = hl.HeldTransfer(ns, "download", path="/file.bin", rate=2 * MiB, hold=4 * MiB)
        download.start()
        conn = sn.connection(80)
        deadline = time.monotonic() + 10
        while sn.view(conn).stack.segments < 20:  # the response is flowing
            assert time.monotonic() < deadline, "the download did not start"
            time.sleep(0.05)
        view = sn.view(conn)
        rcv_nxt = view.stack_rcv_nxt()  # the request is all the kernel sends: this stays put
        window = view.stack_window()
        assert window > 10_000, view
        atk = Attacker(wire, conn, rng)
        before = daemon.counters()
        acks_before = len(sn.view(conn).stack_pure_acks)

        # Out-of-window RSTs (with and without ACK) and data: dropped, the data answered with an ACK.
        wire.send([atk.frame(atk.far(rcv_nxt), rng.getrandbits(32), rng.choice((hl.RST, hl.RST | hl.ACK)))
                   for _ in range(1000)])
        wire.send([atk.frame(atk.far(rcv_nxt), view.kernel.ack, hl.ACK | hl.PSH, atk.junk()) for _ in range(500)])
        # In-window, inexact RSTs; SYNs anywhere; in-window data with an impossible ACK: challenge ACKs.
        in_window = [atk.frame((rcv_nxt + 1 + rng.randrange(min(window, 60_000) - 2)) & 0xFFFFFFFF, 0, hl.RST)
                     for _ in range(40)]
        syns = [atk.frame(rng.getrandbits(32), 0, hl.SYN) for _ in range(40)]
        too_old = [atk.frame((rcv_nxt + 1 + rng.randrange(1000)) & 0xFFFFFFFF,
                             (view.kernel.ack - (1 << 30)) & 0xFFFFFFFF, hl.ACK | hl.PSH, atk.junk())
                   for _ in range(40)]
        unsent = [atk.frame((rcv_nxt + 1 + rng.randrange(1000)) & 0xFFFFFFFF,
                            (view.stack.seq_next + (1 << 30)) & 0xFFFFFFFF, hl.ACK | hl.PSH, atk.junk())
                  for _ in range(40)]
        for group in (in_window, syns, too_old, unsent):
            for i in range(0, len(group), PACED):
                wire.send(group[i:i + PACED])
                time.sleep(0.25)
        after = daemon.counters()
        got = download.finish()
        acks_seen = len(sn.view(conn).stack_pure_acks) - acks_before
        assert wire.tx_dropped() == 0
    c = delta(after, before)
    print(f"blind attacks on a download: {dict(sorted(c.items()))}\npure ACKs from pystack on the wire: {acks_seen}")
    assert got == digest, "the download is not the file"
    assert c.get("tcp.rst_received", 0) == 0, c
    assert c.get("drop.tcp.rst_out_of_window", 0) >= 1000, c
    assert c.get("drop.tcp.out_of_window", 0) >= 500, c
    assert c.get("drop.tcp.syn_in_synchronized", 0) >= 40, c
    assert c.get("drop.tcp.ack_too_old", 0) >= 40 and c.get("drop.tcp.ack_unsent", 0) >= 40, c
    challenged = 40 + 40 + 40  # inexact RSTs, SYNs, too-old ACKs
    assert c.get("tcp.challenge_acks", 0) + c.get("drop.tcp.challenge_ack_limited", 0) >= challenged, c
    assert c.get("drop.tcp.challenge_ack_limited", 0) == 0, "pacing should keep under the limit"
    # On the wire: a pure ACK for each challenge, each unacceptable ACK and each out-of-window data segment
    # (the latter two may be rate-limited or merged with others, so only the challenges are counted exactly).
    assert acks_seen >= challenged, f"{acks_seen} pure ACKs seen for {challenged} challenges"
    counters = daemon.daemon.stop()
    assert counters.get("drop.internal_error", 0) == 0
    pcap_acks = pystack_pure_acks(tmp_path / "pystack.pcap", conn.kernel_port)
    challenge_acks = [a for a in pcap_acks if a[1] == rcv_nxt]
    assert len(challenge_acks) >= challenged, f"{len(challenge_acks)} pure ACKs of RCV.NXT in pystack's pcap"


def test_blind_attacks_on_an_upload(daemon: hl.Observed, www: Path, tmp_path: Path) -> None:
    """A kernel socket uploads 12 MiB to POST /sha256 (paced, its last part held until the attack is over)
    while forged data, RSTs and SYNs arrive: pystack's digest of what it received is the body's, so not
    one forged byte got into the stream."""
    ns = daemon.ns
    rng = random.Random(secrets.randbits(32))
    body = rng.randbytes(12 * MiB)
    digest = hashlib.sha256(body).hexdigest()
    with hl.sniffer(ns) as sn, hl.raw_wire(ns) as wire:
        upload = hl.HeldTransfer(ns, "upload", body=body, rate=2 * MiB, hold=2 * MiB)
        upload.start()
        conn = sn.connection(80)
        deadline = time.monotonic() + 10
        while sn.view(conn).kernel.segments < 50:
            assert time.monotonic() < deadline, "the upload did not start"
            time.sleep(0.05)
        atk = Attacker(wire, conn, rng)
        before = daemon.counters()
        sent = {"rst": 0, "data": 0, "bad_ack": 0, "syn": 0}
        for _round in range(10):
            view = sn.view(conn)
            rcv_nxt, window = view.stack_rcv_nxt(), view.stack_window()
            frames = []
            for _ in range(100):
                frames.append(atk.frame(atk.far(rcv_nxt), rng.getrandbits(32), hl.RST))
                frames.append(atk.frame(atk.far(rcv_nxt), view.stack.seq_next, hl.ACK | hl.PSH, atk.junk()))
            sent["rst"] += 100
            sent["data"] += 100
            for _ in range(8):
                seq = (rcv_nxt + window // 2 + rng.randrange(1000)) & 0xFFFFFFFF
                # pystack's SND.UNA is what the kernel acknowledges, its SND.MAX the end of what it sent.
                ack = rng.choice((view.kernel.ack - (1 << 30), view.stack.seq_next + (1 << 30))) & 0xFFFFFFFF
                frames.append(atk.frame(seq, ack, hl.ACK | hl.PSH, atk.junk()))
                frames.append(atk.frame(rng.getrandbits(32), 0, hl.SYN))
            sent["bad_ack"] += 8
            sent["syn"] += 8
            rng.shuffle(frames)
            wire.send(frames)
            time.sleep(0.3)
        after = daemon.counters()
        answer = upload.finish()
        assert wire.tx_dropped() == 0
    c = delta(after, before)
    print(f"blind attacks on an upload, sent {sent}: {dict(sorted(c.items()))}")
    assert answer == digest, "pystack's SHA-256 of the upload is not the body's: forged bytes got in"
    assert c.get("tcp.rst_received", 0) == 0, c
    assert c.get("drop.tcp.rst_out_of_window", 0) >= sent["rst"], c
    assert c.get("drop.tcp.syn_in_synchronized", 0) >= sent["syn"], c
    rejected = c.get("drop.tcp.out_of_window", 0) + c.get("drop.tcp.ack_too_old", 0) + c.get("drop.tcp.ack_unsent", 0)
    assert rejected >= sent["data"] + sent["bad_ack"], c
    assert daemon.counters().get("drop.internal_error", 0) == 0
