"""The kernel trusts pystack's TCP: after a clean exchange in both directions (a 20 MiB download, a
20 MiB upload, an echo with half-close, closes from both sides) the kernel's own counters of the
namespace show no segment it refused, rate-limited, reset or found broken, and pystack's show none
of the kernel's that it refused.

Counters of retransmission (RetransSegs, TCPTimeouts, ...) are left out on purpose: they depend on
scheduling on a loaded machine, not on whether a segment was acceptable.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

import lab
from tcp_lab import HTTP_URL, MiB, curl, kernel_mib, random_file, sha256_file

pytestmark = pytest.mark.integration

# What the kernel counts when a peer sends something it does not accept.
DISTRUST = (
    "Ip.InHdrErrors", "Ip.InAddrErrors", "Ip.InUnknownProtos", "Ip.InDiscards", "Ip.ReasmFails",
    "Tcp.InErrs", "Tcp.InCsumErrors", "Tcp.OutRsts", "Tcp.AttemptFails", "Tcp.EstabResets",
    "TcpExt.PAWSActive", "TcpExt.PAWSEstab", "TcpExt.OutOfWindowIcmps",
    "TcpExt.TCPChallengeACK", "TcpExt.TCPSYNChallenge",
    "TcpExt.TCPACKSkippedSynRecv", "TcpExt.TCPACKSkippedPAWS", "TcpExt.TCPACKSkippedSeq",
    "TcpExt.TCPACKSkippedFinWait2", "TcpExt.TCPACKSkippedTimeWait", "TcpExt.TCPACKSkippedChallenge",
    "TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose", "TcpExt.TCPAbortOnTimeout", "TcpExt.TCPAbortFailed",
    "TcpExt.TCPZeroWindowDrop", "TcpExt.TCPRcvQDrop", "TcpExt.TCPBacklogDrop", "TcpExt.ListenDrops",
    "TcpExt.TCPWinProbe",
)


def test_kernel_and_pystack_refuse_nothing_of_each_other(start_stack: Callable[..., lab.Daemon],
                                                        tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    daemon = start_stack("--echo", "--http", str(www))
    ns = daemon.ns
    before = kernel_mib(ns)

    want_down = random_file(www / "down.bin", 20 * MiB)
    got = tmp_path / "got.bin"
    curl(ns, "-o", str(got), "-H", "Connection: close", f"{HTTP_URL}/down.bin")  # pystack closes first
    assert sha256_file(got) == want_down
    up = tmp_path / "up.bin"
    want_up = random_file(up, 20 * MiB)
    proc = curl(ns, "--data-binary", f"@{up}", f"{HTTP_URL}/sha256")  # keep-alive: curl closes first
    assert proc.stdout == want_up + "\n"
    payload = os.urandom(MiB)
    sock = ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(30)
        sock.connect((lab.STACK_IP, 7))
        sock.sendall(payload[: MiB // 2])  # fits in the buffers on both sides while we do not read
        sock.shutdown(socket.SHUT_WR)
        echoed = b""
        while chunk := sock.recv(65536):
            echoed += chunk
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload[: MiB // 2]).digest()

    after = kernel_mib(ns)
    missing = [k for k in DISTRUST if k not in after]
    assert not missing, f"this kernel has no counter {missing}"
    grew = {k: after[k] - before.get(k, 0) for k in DISTRUST if after[k] != before.get(k, 0)}
    assert not grew, f"the kernel refused or reset segments from pystack: {grew}"
    assert after["Tcp.InSegs"] - before["Tcp.InSegs"] > 20 * MiB // 1460  # the exchange did happen

    counters = daemon.stop()
    refused = {k: v for k, v in counters.items() if k.startswith(("drop.ipv4.", "drop.tcp.", "drop.arp."))}
    assert not refused, f"pystack refused segments from the kernel: {refused}"
    assert counters.get("tcp.passive_opens") == 3, counters
