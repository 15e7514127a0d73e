"""The kernel trusts pystack's TCP: after a clean exchange in both directions (a 20 MiB download, a
20 MiB upload, an echo with half-close, closes from both sides) the kernel's own counters of the
namespace show no segment it refused, rate-limited, reset or found broken, and pystack's show none
of the kernel's that it refused.

Counters of retransmission (RetransSegs, TCPTimeouts, ...) are left out on purpose: they depend on
scheduling on a loaded machine, not on whether a segment was acceptable. PAWS drops (a timestamp that
went backwards) have their own test, read from the wire as well.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import lab
from tcp_lab import (DISTRUST, HTTP_URL, PAWS, MiB, capture, curl, kernel_distrust, kernel_mib, random_file,
                     sha256_file, tsval_regressions)

pytestmark = pytest.mark.integration

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
    grew = kernel_distrust(before, after)
    assert not grew, f"the kernel refused or reset segments from pystack: {grew}"
    # The exchange did happen through this kernel: 20 MiB in, 20 MiB out (bytes: segments may be TSO'd).
    assert after["IpExt.InOctets"] - before["IpExt.InOctets"] > 20 * MiB
    assert after["IpExt.OutOctets"] - before["IpExt.OutOctets"] > 20 * MiB

    counters = daemon.stop()
    # An old duplicate (the kernel retransmitted what pystack had) is answered with an ACK and counted
    # as out_of_window, as RFC 9293 3.10.7.4 wants: a retransmission, not a refused segment.
    answered = ("drop.tcp.out_of_window", "drop.tcp.oow_ack_limited")
    refused = {k: v for k, v in counters.items()
               if k.startswith(("drop.ipv4.", "drop.tcp.", "drop.arp.")) and k not in answered}
    assert not refused, f"pystack refused segments from the kernel: {refused}"
    assert counters.get("tcp.passive_opens") == 3, counters


def test_tsval_never_goes_backwards(start_stack: Callable[..., lab.Daemon], tmp_path: Path) -> None:
    """pystack's timestamps, read by tcpdump on the TAP as the kernel receives them, never decrease on
    a connection, and the kernel drops none of its segments as old duplicates (PAWS)."""
    www = tmp_path / "www"
    www.mkdir()
    daemon = start_stack("--http", str(www))
    ns = daemon.ns
    want = random_file(www / "f.bin", 20 * MiB)
    before = kernel_mib(ns)
    with capture(ns, lab.TAP, tmp_path / "tap.pcap") as pcap:
        got = tmp_path / "got.bin"
        curl(ns, "-o", str(got), f"{HTTP_URL}/f.bin")
        assert sha256_file(got) == want
        proc = curl(ns, "--data-binary", f"@{www / 'f.bin'}", f"{HTTP_URL}/sha256")
        assert proc.stdout == want + "\n"
    after = kernel_mib(ns)
    regressions = tsval_regressions(pcap, lab.STACK_IP)
    assert not regressions, f"{len(regressions)} segments with an older TSval, e.g. {regressions[:5]}"
    paws = {k: after[k] - before.get(k, 0) for k in PAWS if after[k] != before.get(k, 0)}
    assert not paws, f"the kernel dropped pystack segments as PAWS: {paws}"
