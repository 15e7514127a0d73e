"""TCP on a bad path: a download and an upload of the same size, both intact (SHA-256), through
(a) 5 % random loss each way from nftables on the kernel's side of the TAP, and
(b) the impaired wire: loss, delay with jitter, reordering, duplication and corruption, seeded.

The impairment counters prove the path really was bad and pystack's counters prove it repaired
its side, so neither test can pass on a clean path by accident.

What nftables loss is, seen from TCP: the prerouting chain drops pystack's segments after they
left pystack (real loss, pystack must retransmit; with TAP offload on, one packet there may be a
TSO super-frame of up to 64 KiB). The output chain sits inside the kernel's own
transmit path: a dropped pure ACK is lost, but a dropped data segment is reported back to the
kernel's TCP as a failed transmit and sent again later, so kernel data never reaches pystack with
holes. Real loss of kernel data (and reordering) comes from the impaired wire in (b).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pystack_lab import impaired_wire as iw
from pystack_lab import lab
from tcp_lab import (HTTP_URL, MiB, curl, nft_drops, nft_loss, random_file, relay_lab,
                     sha256_file)

pytestmark = pytest.mark.integration

# Drop reasons of input that is not what was sent (a flipped bit), by the layer that noticed.
MALFORMED = ("drop.ethernet.", "drop.ipv4.", "drop.tcp.bad_checksum", "drop.tcp.truncated", "drop.tcp.bad_offset",
             "drop.tcp.bad_option", "drop.tcp.port_zero", "drop.icmp.", "drop.udp.", "drop.arp.")


def _down_and_up(ns: lab.Namespace, www: Path, tmp_path: Path, size: int, timeout: float) -> None:
    """curl downloads a random file from pystack and uploads another one of ``size`` to /sha256."""
    want_down = random_file(www / "down.bin", size)
    up = tmp_path / "up.bin"
    want_up = random_file(up, size)
    got = tmp_path / "got.bin"
    proc = curl(ns, "-o", str(got), "-w", "%{http_code} %{size_download}", f"{HTTP_URL}/down.bin",
                timeout=timeout)
    assert proc.stdout.split() == ["200", str(size)], proc.stdout
    assert sha256_file(got) == want_down, "download damaged on the bad path"
    proc = curl(ns, "--data-binary", f"@{up}", "-w", "%{http_code}", f"{HTTP_URL}/sha256", timeout=timeout)
    assert proc.stdout == want_up + "\n200", "upload damaged on the bad path (or a wrong answer)"


def test_nftables_5_percent_loss_each_way(start_stack: Callable[..., lab.Daemon], tmp_path: Path) -> None:
    """20 MiB down and 20 MiB up with nftables dropping 5 % of the IPv4 packets each way."""
    www = tmp_path / "www"
    www.mkdir()
    daemon = start_stack("--http", str(www))
    nft_loss(daemon.ns, lab.TAP, 5)
    _down_and_up(daemon.ns, www, tmp_path, 20 * MiB, timeout=300)
    drops = nft_drops(daemon.ns)
    counters = daemon.stop()
    # Both chains dropped: pystack's segments (in) and the kernel's (out)...
    assert drops.get("in", 0) > 0 and drops.get("out", 0) > 0, drops
    # ...and pystack repaired the loss of its own segments.
    assert counters.get("tcp.retransmits", 0) > 0, counters


@pytest.mark.parametrize("size", [pytest.param(2 * MiB, id="2MiB"),
                                  pytest.param(20 * MiB, id="20MiB", marks=pytest.mark.slow)])
def test_impaired_wire_everything_at_once(daemon_ready: None, tmp_path: Path, size: int) -> None:
    """pystack's TAP in relay namespace R (no address), the kernel in P (192.0.2.1) across the relay:
    5 % loss, 10 ms delay +- 2 ms jitter, 25 % reordering, 1 % duplication, 0.1 % corruption, each way.

    pystack sends slowly on this path (its loss recovery falls back to RTOs often), so the 20 MiB
    run takes minutes and is marked slow; the 2 MiB run keeps the path in the main suite.
    """
    bad = iw.Impairment(loss=5, delay=10, jitter=2, reorder=25, duplicate=1, corrupt=0.1)
    www = tmp_path / "www"
    www.mkdir()
    with relay_lab("--http", str(www), impairment=bad, seed=7, workdir=tmp_path) as rl:
        _down_and_up(rl.p, www, tmp_path, size, timeout=120 + size / (20 * 1024))
        assert rl.daemon.alive(), rl.daemon.stderr()
    counters = rl.daemon.counters or {}
    c = rl.wire.counters()
    for d in ("a_to_b", "b_to_a"):  # a = pst0 (pystack's frames), b = the veth end towards the kernel
        assert c[d]["dropped"] > 0 and c[d]["reordered"] > 0 and c[d]["duplicated"] > 0, c
        assert c[d]["gso_dropped"] == c[d]["csum_completed"] == 0, c  # wire frames only: offloads off
    assert c["a_to_b"]["corrupted"] + c["b_to_a"]["corrupted"] > 0, c
    assert counters.get("tcp.retransmits", 0) > 0, counters
    # Each flipped bit that reached pystack was caught by a check and counted, never delivered (the
    # SHA-256 above); a corrupted frame may also have been the copy of a duplicate or still queued.
    malformed = sum(v for k, v in counters.items() if k.startswith(MALFORMED))
    if c["b_to_a"]["corrupted"]:
        assert malformed > 0, counters
