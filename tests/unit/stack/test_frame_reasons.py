"""Why each frame was sent: senders' notes matched to their frames by key, and written as pcapng comments."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import dpkt
import dpkt.pcapng as pcapng_dpkt
import pytest

from pystack import reasons
from pystack.config import StackConfig
from pystack.link.pcap import PcapWriter
from pystack.link.pcapng import PcapngWriter
from pystack.reasons import FrameReasons, explain_frames, frame_key
from pystack.stack import Stack
from pystack.tcp import why
from pystack.tcp.config import TcpConfig
from pystack.wire import arp, ethernet, ipv4, tcp, udp

from .conftest import A_IP, A_MAC, B_IP, B_MAC, connected, make_pair, transfer


def _comments(path: Path) -> list[tuple[bytes, str | None]]:
    """(frame, comment) of each Enhanced Packet Block, read with dpkt."""
    data = path.read_bytes()
    out = []
    offset = 0
    while offset < len(data):
        block_type, total = struct.unpack_from("<II", data, offset)
        if block_type == pcapng_dpkt.PCAPNG_BT_EPB:
            block = pcapng_dpkt.EnhancedPacketBlockLE(data[offset:offset + total])
            texts = [o.data.decode() for o in block.opts if o.code == pcapng_dpkt.PCAPNG_OPT_COMMENT]
            out.append((bytes(block.pkt_data), texts[0] if texts else None))
        offset += total
    return out


def _capture(stack: Stack, sender: int, log: list, path: Path) -> list[tuple[bytes, str | None]]:
    """What a pcapng writer explained for ``stack`` writes for the frames ``sender`` put on the wire."""
    writer = PcapngWriter(str(path))
    writer.mac = stack.mac
    writer.explain = explain.take
    for _t, s, frame in log:
        if s == sender:
            writer.write(frame)
    writer.close()
    return _comments(path)


explain: FrameReasons  # set by the tests below, read by _capture


def test_keys_are_the_frames_fields() -> None:
    seg = tcp.build(A_IP, B_IP, 1234, 80, 0xDEADBEEF, 1, tcp.ACK, 100)
    frame = ethernet.build(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV4, ipv4.build(A_IP, B_IP, 6, seg))
    assert frame_key(frame) == reasons.tcp_key(A_IP, B_IP, 1234, 80, 0xDEADBEEF)
    dgram = udp.build(A_IP, B_IP, 68, 67, b"x")
    frame = ethernet.build(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV4, ipv4.build(A_IP, B_IP, 17, dgram))
    assert frame_key(frame) == reasons.udp_key(A_IP, B_IP, 68, 67)
    request = arp.build(arp.OP_REQUEST, A_MAC, A_IP, bytes(6), B_IP)
    frame = ethernet.build(ethernet.BROADCAST, A_MAC, ethernet.ETHERTYPE_ARP, request)
    assert frame_key(frame) == reasons.arp_key(arp.OP_REQUEST, A_IP, B_IP)
    later_fragment = bytearray(ethernet.build(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV4, ipv4.build(A_IP, B_IP, 17, dgram)))
    later_fragment[21] = 0x10  # fragment offset 16 * 8 bytes: no UDP header in it
    assert frame_key(bytes(later_fragment)) is None
    assert frame_key(b"\x00" * 20) is None


def test_notes_of_one_key_are_taken_in_order_and_the_table_is_bounded() -> None:
    notes = FrameReasons()
    seg = tcp.build(A_IP, B_IP, 1234, 80, 7, 1, tcp.ACK, 100)
    frame = ethernet.build(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV4, ipv4.build(A_IP, B_IP, 6, seg))
    key = reasons.tcp_key(A_IP, B_IP, 1234, 80, 7)
    notes.note(key, "first")
    notes.note(key, "second")
    assert [notes.take(frame), notes.take(frame), notes.take(frame)] == ["first", "second", None]
    for i in range(reasons.MAX_KEYS + 10):
        notes.note(("other", i), "x")
    assert len(notes) == reasons.MAX_KEYS and notes.forgotten == 10


def test_the_classic_pcap_format_gets_no_reasons(tmp_path: Path) -> None:
    a, _b, _wire = make_pair()
    writer = PcapWriter(str(tmp_path / "c.pcap"))
    assert explain_frames(a, writer) is None and a.tcp.why is None
    writer.close()


def _lossy(fault_seed: int, loss: float, tmp_path: Path, cfg: StackConfig | None = None):
    """A sends 400 kB to B over a wire that drops ``loss`` of A's data segments: (A, comments of A's frames)."""
    global explain
    drops = random.Random(fault_seed)

    def fault(sender: int, frame: bytes) -> list[bytes]:
        if sender == 0 and len(frame) > 200 and drops.random() < loss:
            return []
        return [frame]

    a, b, wire = make_pair(cfg)
    wire.fault = fault
    writer = PcapngWriter(str(tmp_path / "unused.pcapng"))
    explain = explain_frames(a, writer)  # type: ignore[assignment]
    writer.close()
    client, server = connected(a, b, wire)
    data = random.Random(3).randbytes(400_000)
    assert transfer(client, server, wire, data) == data
    return a, _capture(a, 0, wire.log, tmp_path / "a.pcapng")


@pytest.mark.parametrize("sack", [True, False], ids=["sack", "newreno"])
def test_retransmissions_are_commented_as_many_times_as_they_are_counted(tmp_path: Path, sack: bool) -> None:
    cfg = StackConfig(tcp=TcpConfig(sack=sack))
    a, frames = _lossy(5, 0.03, tmp_path, cfg)
    tcp_frames = [(f, c) for f, c in frames if frame_key(f) is not None and frame_key(f)[0] == "tcp"]
    assert all(c is not None for _f, c in tcp_frames), [c for _f, c in tcp_frames][:20]
    comments = [c for _f, c in tcp_frames]
    retransmissions = [c for c in comments if "retransmission" in c]
    assert a.counters["tcp.retransmits"] > 0
    assert len(retransmissions) == a.counters["tcp.retransmits"]
    fast = [c for c in comments if c.startswith("fast retransmission")]
    assert len(fast) == a.counters["tcp.fast_retransmits"] > 0
    probes = [c for c in comments if c.startswith("tail loss probe")]
    assert len(probes) == a.counters.get("tcp.tail_loss_probes", 0)
    assert comments[0].startswith("SYN; cwnd=")
    # Every byte goes out once as new data under one of the new-data reasons, and never again so.
    new_data = (why.NEW_DATA, why.LIMITED_TRANSMIT, why.SACK_NEW, why.TLP_NEW)
    first_sent = sum(len(dpkt.ethernet.Ethernet(f).data.data.data) for f, c in tcp_frames
                     if c.split(";")[0] in new_data)
    assert first_sent == 400_000
    assert all(" cwnd=" in c and " ssthresh=" in c and " srtt=" in c for c in comments)


def test_rst_for_a_closed_port_and_a_delayed_ack_say_so(tmp_path: Path) -> None:
    global explain
    a, b, wire = make_pair()
    writer = PcapngWriter(str(tmp_path / "unused.pcapng"))
    explain = explain_frames(b, writer)  # type: ignore[assignment]
    writer.close()
    client = a.tcp.connect(A_IP, B_IP, 81, wire.clock.now)
    wire.run(until=lambda: client.error is not None)
    client, _server = connected(a, b, wire)
    client.send(b"hello", wire.clock.now)  # one small segment: B holds its ACK for the delayed-ACK timer
    wire.run(duration=1.0)
    comments = [c for _f, c in _capture(b, 1, wire.log, tmp_path / "b.pcapng") if c is not None]
    assert comments[0] == "ARP reply: asked for our address"
    comments = comments[1:]
    assert comments[0] == why.RST_CLOSED_PORT
    assert comments[1].startswith("SYN-ACK; cwnd=")
    assert comments[-1].startswith(why.DELAYED_ACK + ";")


def test_arp_and_icmp_say_why(tmp_path: Path) -> None:
    from pystack.link.memory import FakeClock, MemoryWire
    from pystack.wire import icmp

    from .conftest import C_IP

    clock = FakeClock()
    a = Stack(A_MAC, rng=random.Random(1))
    b = Stack(B_MAC, rng=random.Random(2))
    notes = FrameReasons()
    a.explain(notes.note)
    a.configure(A_IP, 24, None, clock.now)
    b.configure(B_IP, 24, None, clock.now)
    wire = MemoryWire(a, b, clock=clock)
    wire.run(duration=5)
    a.tcp.connect(A_IP, C_IP, 80, clock.now)  # nobody has C: ARP asks, then asks again
    wire.run(duration=1.5)
    endpoint = b.udp.bind(0, 5000)
    endpoint.sendto(b"anyone?", (A_IP, 9), clock.now)  # no socket on A's port 9
    request = icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x12340001, b"ping")
    b.send_ip(A_IP, 1, request, clock.now)
    wire.run(duration=1)
    comments = [notes.take(f) for _t, s, f in wire.log if s == 0]
    assert comments.count("ARP announcement of our address (RFC 5227 2.3)") == a.config.arp_announcements
    assert "ARP request: a datagram waits for this next hop's MAC" in comments
    assert "ARP request again, retry #1: no reply yet" in comments
    assert "ARP reply: asked for our address" in comments
    assert "port unreachable: no socket on this port (RFC 1122 4.1.3.1)" in comments
    assert "echo reply (RFC 792)" in comments
    assert None not in comments, comments
