"""TCP's direct way in (pystack.iface.tcp.TcpGlue.receive_direct): a plain IPv4 segment for us goes to TCP
without the layered Ethernet and IPv4 parse. It must take exactly what the layered path would deliver, and
leave the rest to it, so that what comes out (frames and counters) is the same whichever path a frame takes
(the mutated frames of test_fast_paths.py check that too)."""

from __future__ import annotations

import dataclasses

import pytest

from pystack.config import StackConfig
from pystack.iface.ethernet import EthernetLink
from pystack.iface.tcp import TcpGlue
from pystack.tcp.config import TcpConfig
from pystack.wire import ethernet, ipv4

from .conftest import A_IP, A_MAC, B_IP, B_MAC, make_pair
from .twins import calls, mutated, outcome, twin_configs

SECRET = bytes(range(16))


def _syn(a, wire) -> bytes:
    """A's SYN to B port 80, as it leaves A (ARP already resolved both ways)."""
    a.tcp.connect(A_IP, B_IP, 80, wire.clock.now, local_port=40000)
    (frame,) = a.frames_to_send()
    return frame


def _listening_b(config: StackConfig | None = None):
    """(a, b, wire) with B listening on port 80, both ARP caches filled, B's ISNs from a fixed secret."""
    config = config or StackConfig()
    a, b, wire = make_pair(dataclasses.replace(config, tcp=dataclasses.replace(TcpConfig(), isn_secret=SECRET)))
    a.send_ip(B_IP, ipv4.PROTO_UDP, b"\x00\x01\x00\x02\x00\x08\x00\x00", wire.clock.now)
    wire.run(duration=0.1)  # B answers ARP for A's first datagram, and learns A on the way
    b.tcp.listen(0, 80, 64)
    a.frames_to_send()
    b.frames_to_send()
    return a, b, wire


def _twins():
    """(a, fast_b, layered_b, wire): two listening Bs in the same state, fast paths on and off."""
    fast, layered = twin_configs()
    a, fast_b, wire = _listening_b(fast)
    _a2, layered_b, _wire2 = _listening_b(layered)
    return a, fast_b, layered_b, wire


def test_a_plain_segment_skips_the_layered_path():
    a, b, _layered_b, wire = _twins()
    frame = _syn(a, wire)
    segments = b.counters["tcp.in_segments"]
    with calls(TcpGlue.receive_direct, EthernetLink.receive) as seen:
        b.receive_frame(frame, wire.clock.now)
    (syn_ack,) = b.frames_to_send()
    assert seen == {"TcpGlue.receive_direct": 1}
    assert b.counters["tcp.in_segments"] == segments + 1
    assert syn_ack[:6] == A_MAC and syn_ack[47] == 0x12  # SYN+ACK back to A
    assert b.counters["drop.internal_error"] == 0


def test_the_direct_path_answers_as_the_layered_path_does():
    a, fast_b, layered_b, wire = _twins()
    frame = _syn(a, wire)
    fast = outcome(fast_b, frame, wire.clock.now)
    with calls(TcpGlue.receive_direct) as seen:
        layered = outcome(layered_b, frame, wire.clock.now)
    assert not seen  # the switch off: the direct path is not even asked
    assert len(fast[0]) == 1 and fast == layered


def _with(offset: int, value: int, refix: bool = True):
    return lambda frame: mutated(frame, [(offset, value)], len(frame), refix)


def _with_ip_options(frame: bytes) -> bytes:
    segment = frame[34:]
    return frame[:14] + ipv4.build_header(A_IP, B_IP, ipv4.PROTO_TCP, len(segment), ident=1, ttl=64,
                                          options=b"\x94\x04\x00\x00") + segment


@pytest.mark.parametrize("change, counter", [
    (_with(20, 0x80), "drop.ipv4.reserved_flag"),
    (_with(24, 0x00, refix=False), "drop.ipv4.bad_checksum"),
    (_with(6, 0x03, refix=False), "drop.ethernet.multicast_source"),
    (_with(26, 127), "drop.ipv4.martian_source"),
    (_with(33, 99), "drop.ipv4.not_for_us"),
    (lambda f: f[:16] + (len(f) - 14 + 1).to_bytes(2, "big") + f[18:], None),  # IP longer than the frame
    (lambda f: f[:40] + bytes([f[40] ^ 0xFF]) + f[41:], "drop.tcp.bad_checksum"),  # TCP judges its own
])
def test_what_is_wrong_is_dropped_and_counted_once(change, counter):
    a, b, wire = _listening_b()
    frame = change(_syn(a, wire))
    drops = b.counters.total_drops()
    b.receive_frame(frame, wire.clock.now)
    assert b.frames_to_send() == []
    assert b.counters.total_drops() == drops + 1
    if counter:
        assert b.counters[counter] == 1


def test_a_segment_with_ip_options_is_delivered_by_the_layered_path():
    a, b, _layered_b, wire = _twins()
    with calls(EthernetLink.receive) as seen:
        b.receive_frame(_with_ip_options(_syn(a, wire)), wire.clock.now)
    assert seen and len(b.frames_to_send()) == 1


@pytest.mark.parametrize("fast_paths", [True, False])
def test_a_segment_in_a_broadcast_frame_is_dropped(fast_paths):
    """TCP is unicast only (RFC 1122 4.2.3.10); Linux drops it in a link-layer broadcast too, whatever
    the IP destination says."""
    a, b, wire = _listening_b(StackConfig(fast_paths=fast_paths))
    frame = _syn(a, wire)
    assert frame[:6] == B_MAC
    b.receive_frame(ethernet.BROADCAST + frame[6:], wire.clock.now)
    assert b.frames_to_send() == []
    assert b.counters["drop.ipv4.transport_not_unicast"] == 1
