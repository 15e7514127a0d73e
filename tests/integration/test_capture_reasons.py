"""``--pcap FILE.pcapng``: tshark, an independent reader, shows why pystack sent each frame."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pystack.link.pcapng import LATER_PIECE
from pystack_lab import lab
from tcp_lab import HTTP_URL, MiB, curl, nft_drops, nft_loss, random_file, sha256_file

pytestmark = pytest.mark.integration



def _comments(ns: lab.Namespace, capture: Path) -> list[tuple[str, str, str]]:
    """(source address, TCP source port, comment) of every frame of ``capture`` that has a comment, as
    tshark reads them (address and port empty for a frame without them: ARP)."""
    proc = ns.run(["tshark", "-n", "-r", str(capture), "-Y", "frame.comment", "-T", "fields",
                   "-E", "separator=\t", "-e", "ip.src", "-e", "tcp.srcport", "-e", "frame.comment"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        src, port, comment = line.split("\t", 2)
        rows.append((src, port, comment))
    return rows


def test_retransmission_comments_match_the_counters_after_a_lossy_download(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], tmp_path: Path) -> None:
    """4 MiB from pystack (again, until the path has lost some) through 3 % nftables loss each way: every
    retransmission tcp.retransmits counted is one frame whose comment says so (an offloaded segment's first
    wire piece), and no other frame's is."""
    require_tools("tshark", "nft", "curl")
    www = tmp_path / "www"
    www.mkdir()
    want = random_file(www / "f.bin", 4 * MiB)
    capture = tmp_path / "capture.pcapng"
    daemon = start_stack("--http", str(www), "--pcap", str(capture))
    nft_loss(daemon.ns, lab.TAP, 3)
    got = tmp_path / "got.bin"
    # With offload the kernel sees pystack's segments as super-frames, some 64 per download: at 3 % the
    # path loses none of them about one time in seven, so download again until it has (at most 4 times).
    for _attempt in range(4):
        curl(daemon.ns, "-o", str(got), f"{HTTP_URL}/f.bin", timeout=240)
        assert sha256_file(got) == want
        drops = nft_drops(daemon.ns)
        if drops.get("in", 0) > 0:
            break
    counters = daemon.stop()
    assert daemon.returncode == 0, daemon.stderr()
    assert drops.get("in", 0) > 0, drops  # the path really lost pystack's segments

    rows = _comments(daemon.ns, capture)
    assert all(src == lab.STACK_IP for src, _p, _c in rows if src), rows[:5]  # only what pystack sent is explained
    assert any(c == "ARP reply: asked for our address" for src, _p, c in rows if not src)
    first_pieces = []
    for _src, port, comment in rows:
        if not port:
            continue  # not TCP
        if not comment.endswith(LATER_PIECE):
            first_pieces.append(comment)
    retransmissions = [c for c in first_pieces if "retransmission" in c]
    assert counters.get("tcp.retransmits", 0) > 0, counters
    refused = counters.get("drop.link.tx_refused", 0)  # written to no link, so in no capture
    assert counters["tcp.retransmits"] - refused <= len(retransmissions) <= counters["tcp.retransmits"], (
        len(retransmissions), counters)
    assert any(c.startswith("new data; cwnd=") for c in first_pieces)
    assert any(c.startswith("SYN-ACK; cwnd=") for c in first_pieces)
    assert all(re.search(r"; cwnd=\d+ ssthresh=(\d+|-) srtt=", c) for c in first_pieces if "RST" not in c)
