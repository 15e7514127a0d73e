"""TCP's direct way in (Stack._receive_tcp_direct): a plain IPv4 segment for us goes to TCP without the
layered Ethernet and IPv4 parse. It must take exactly what the layered path would deliver, and leave the
rest to it, so that what comes out (frames and counters) is the same whichever path a frame takes."""

from __future__ import annotations

import pytest

from pystack.tcp.isn import IsnGenerator
from pystack.wire import ethernet, ipv4

from .conftest import A_IP, A_MAC, B_IP, B_MAC, make_pair
from .twins import mutated, outcome

SECRET = bytes(range(16))


def _syn(a, wire) -> bytes:
    """A's SYN to B port 80, as it leaves A (ARP already resolved both ways)."""
    a.tcp.connect(A_IP, B_IP, 80, wire.clock.now, local_port=40000)
    (frame,) = a.frames_to_send()
    return frame


def _listening_b():
    """(a, b, wire) with B listening on port 80, both ARP caches filled, B's ISNs from a fixed secret."""
    a, b, wire = make_pair()
    a.send_ip(B_IP, ipv4.PROTO_UDP, b"\x00\x01\x00\x02\x00\x08\x00\x00", wire.clock.now)
    wire.run(duration=0.1)  # B answers ARP for A's first datagram, and learns A on the way
    b.tcp.cx.isn = IsnGenerator(SECRET)
    b.tcp.listen(0, 80, 64)
    a.frames_to_send()
    b.frames_to_send()
    return a, b, wire


def _layered_only(b) -> None:
    b._receive_tcp_direct = lambda frame, now: False


def test_a_plain_segment_skips_the_layered_path():
    a, b, wire = _listening_b()
    frame = _syn(a, wire)

    def layered(frame, now):
        raise AssertionError("the layered receive path ran")

    b._receive_frame = layered
    segments = b.counters["tcp.in_segments"]
    b.receive_frame(frame, wire.clock.now)
    (syn_ack,) = b.frames_to_send()
    assert b.counters["tcp.in_segments"] == segments + 1
    assert syn_ack[:6] == A_MAC and syn_ack[47] == 0x12  # SYN+ACK back to A
    assert b.counters["drop.internal_error"] == 0


def _twins():
    """(a, fast_b, layered_b, wire): two listening Bs in the same state, one that never takes the direct path."""
    a, fast_b, wire = _listening_b()
    _a2, layered_b, _wire2 = _listening_b()
    _layered_only(layered_b)
    layered_b._ident = fast_b._ident
    return a, fast_b, layered_b, wire


def test_the_direct_path_answers_as_the_layered_path_does():
    a, fast_b, layered_b, wire = _twins()
    frame = _syn(a, wire)
    fast = outcome(fast_b, frame, wire.clock.now)
    assert len(fast[0]) == 1 and fast == outcome(layered_b, frame, wire.clock.now)


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
    a, b, wire = _listening_b()
    called = []
    layered = b._receive_frame
    b._receive_frame = lambda frame, now: called.append(1) or layered(frame, now)
    b.receive_frame(_with_ip_options(_syn(a, wire)), wire.clock.now)
    assert called and len(b.frames_to_send()) == 1


@pytest.mark.parametrize("layered", [False, True])
def test_a_segment_in_a_broadcast_frame_is_dropped(layered):
    """TCP is unicast only (RFC 1122 4.2.3.10); Linux drops it in a link-layer broadcast too, whatever
    the IP destination says."""
    a, b, wire = _listening_b()
    if layered:
        _layered_only(b)
    frame = _syn(a, wire)
    assert frame[:6] == B_MAC
    b.receive_frame(ethernet.BROADCAST + frame[6:], wire.clock.now)
    assert b.frames_to_send() == []
    assert b.counters["drop.ipv4.transport_not_unicast"] == 1


def test_the_direct_and_layered_paths_agree_on_mutated_segments():
    """Whatever a segment looks like (any header byte flipped, the frame cut anywhere), both paths put
    the same frames out and move the same counters: the direct path takes only what the layered path
    would have delivered to TCP."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    a, fast_b, layered_b, wire = _twins()
    base = _syn(a, wire)
    now = wire.clock.now

    @given(st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), min_size=1, max_size=3),
           st.one_of(st.just(len(base)), st.integers(0, len(base))), st.booleans())
    @settings(max_examples=1000, deadline=None, database=None)
    def check(changes, cut, refix):
        frame = mutated(base, changes, cut, refix)
        assert outcome(fast_b, frame, now) == outcome(layered_b, frame, now)
        assert fast_b.counters["drop.internal_error"] == 0

    check()
