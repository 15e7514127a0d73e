"""``pystack plot``: captures read back, a connection's series, and the SVG's structure, checked against
dpkt's reading of the same capture."""

from __future__ import annotations

import random
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import dpkt
import pytest

from pystack.link.memory import FakeClock, MemoryWire
from pystack.link.pcap import PcapWriter
from pystack.link.pcapng import PcapngWriter
from pystack.plot.capture import CaptureError, read_capture
from pystack.plot.tcpseries import series
from pystack.plot.timeseq import render
from pystack.reasons import explain_frames
from pystack.stack import Stack
from pystack.wire.ipv4 import addr_to_int

from stack.conftest import connected, transfer

A_IP, B_IP = addr_to_int("192.0.2.2"), addr_to_int("192.0.2.1")
A_MAC, B_MAC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
SVG = "{http://www.w3.org/2000/svg}"
SIZE = 300_000


def _capture(path: Path, pcapng: bool) -> tuple[Stack, Path]:
    """A (192.0.2.2) sends SIZE bytes to B's port 80 over a wire that drops 3 % of A's data frames; both
    directions recorded in ``path`` with the fake clock's times (pcapng: A's reasons as comments)."""
    clock = FakeClock()
    a = Stack(A_MAC, rng=random.Random(1))
    b = Stack(B_MAC, rng=random.Random(2))
    a.configure(A_IP, 24, B_IP, clock.now)
    b.configure(B_IP, 24, None, clock.now)
    drops = random.Random(9)
    wire = MemoryWire(a, b, clock=clock, latency=0.002,
                      fault=lambda i, f: [] if i == 0 and len(f) > 200 and drops.random() < 0.03 else [f])
    writer = PcapngWriter(str(path)) if pcapng else PcapWriter(str(path))
    explain_frames(a, writer)
    client, server = connected(a, b, wire)
    assert transfer(client, server, wire, bytes(SIZE)) == bytes(SIZE)
    wire.run(duration=1.0)
    for t, _sender, frame in wire.log:
        writer.write(frame, timestamp_ns=int(t * 1e9))
    writer.close()
    return a, path


def _dpkt_tcp(path: Path) -> list[tuple[str, dpkt.tcp.TCP, int]]:
    """(source address, TCP header, payload length) of each frame, as dpkt reads the file."""
    out = []
    with open(path, "rb") as fh:
        reader = dpkt.pcapng.Reader(fh) if path.suffix == ".pcapng" else dpkt.pcap.Reader(fh)
        for _ts, buf in reader:
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP):
                out.append((".".join(map(str, ip.src)), ip.data, ip.len - ip.hl * 4 - ip.data.off * 4))
    return out


def _by_id(root: ET.Element) -> dict[str, ET.Element]:
    return {e.get("id"): e for e in root.iter() if e.get("id")}


def _numbers(d: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]


@pytest.fixture(scope="module")
def lossy_pcapng(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stack, Path]:
    return _capture(tmp_path_factory.mktemp("plot") / "lossy.pcapng", pcapng=True)


def test_the_reader_gives_dpkts_frames_with_comments(lossy_pcapng: tuple[Stack, Path]) -> None:
    _a, path = lossy_pcapng
    ours = list(read_capture(str(path)))
    with open(path, "rb") as fh:
        theirs = list(dpkt.pcapng.Reader(fh))
    assert [f.data for f in ours] == [bytes(buf) for _ts, buf in theirs]
    assert all(abs(f.time - ts) < 1e-6 for f, (ts, _b) in zip(ours, theirs))
    sent = [f for f in ours if f.data[6:12] == A_MAC]
    assert all(f.outbound for f in sent) and not any(f.outbound for f in ours if f.data[6:12] == B_MAC)
    assert any(f.comment and f.comment.startswith("new data; cwnd=") for f in sent)


def test_the_series_is_the_senders_segments_and_the_receivers_acks(lossy_pcapng: tuple[Stack, Path]) -> None:
    a, path = lossy_pcapng
    s = series(lambda: read_capture(str(path)))
    assert s.sender == ("192.0.2.2", s.sender[1]) and s.receiver == ("192.0.2.1", 80)
    frames = _dpkt_tcp(path)
    carrying = [(t, n) for src, t, n in frames if src == "192.0.2.2" and (n or t.flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN))]
    assert len(s.segments) == len(carrying)
    assert sum(g.retransmission for g in s.segments) == a.counters["tcp.retransmits"] > 0
    new = sorted((g.start, g.end) for g in s.segments if not g.retransmission)
    assert new[0] == (0, 1)  # the SYN, at the ISN
    covered = sum(end - start for start, end in new)
    assert covered == 1 + SIZE  # the SYN, then every byte once as new data (no FIN: A did not close)
    assert max(ack.ack for ack in s.acks) == 1 + SIZE
    assert any(ack.sack for ack in s.acks)  # the losses made SACK blocks
    assert len(s.cwnd) == sum(1 for f in read_capture(str(path)) if f.comment and "cwnd=" in f.comment)


def test_the_svg_has_axes_segments_ack_line_and_cwnd(lossy_pcapng: tuple[Stack, Path]) -> None:
    a, path = lossy_pcapng
    s = series(lambda: read_capture(str(path)))
    root = ET.fromstring(render(s))
    assert root.tag == SVG + "svg"
    width, height = float(root.get("width")), float(root.get("height"))
    ids = _by_id(root)
    for axis in ("x-axis", "y-axis", "cwnd-x-axis", "cwnd-y-axis"):
        labels = [t.text for t in ids[axis].iter(SVG + "text")]
        assert len(labels) >= 4, (axis, labels)
    assert int(ids["segments"].get("data-count")) == sum(not g.retransmission for g in s.segments)
    assert int(ids["retransmissions"].get("data-count")) == a.counters["tcp.retransmits"]
    assert ids["segments"].get("d").count("V") == int(ids["segments"].get("data-count"))
    assert int(ids["ack-line"].get("data-count")) == len(s.acks) > 0
    assert int(ids["window-edge"].get("data-count")) == len(s.acks)
    assert int(ids["sack-blocks"].get("data-count")) > 0
    assert int(ids["cwnd"].get("data-count")) == len(s.cwnd) > 0
    for name in ("segments", "retransmissions", "ack-line", "window-edge", "sack-blocks", "cwnd", "ssthresh"):
        values = _numbers(ids[name].get("d"))
        assert values and all(0 <= v <= max(width, height) for v in values), name


def test_a_classic_pcap_draws_without_the_cwnd_panel(tmp_path: Path) -> None:
    _a, path = _capture(tmp_path / "plain.pcap", pcapng=False)
    ids = _by_id(ET.fromstring(render(series(lambda: read_capture(str(path)), "80"))))
    assert "cwnd-panel" not in ids and int(ids["segments"].get("data-count")) > 200


def test_bad_captures_and_choices_are_one_clear_error(lossy_pcapng: tuple[Stack, Path], tmp_path: Path) -> None:
    _a, path = lossy_pcapng
    with pytest.raises(ValueError, match="no TCP connection in the capture matches --conn 443"):
        series(lambda: read_capture(str(path)), "443")
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CaptureError, match="cut short"):
        list(read_capture(str(cut)))
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello world, not a capture")
    with pytest.raises(CaptureError, match="neither a pcap nor a pcapng"):
        list(read_capture(str(junk)))
    big_endian = tmp_path / "be.pcap"
    big_endian.write_bytes(struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                           + struct.pack(">IIII", 7, 500000, 3, 3) + b"abc")
    (frame,) = read_capture(str(big_endian))
    assert frame.data == b"abc" and frame.time == 7.5
