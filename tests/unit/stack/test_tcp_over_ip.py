"""TCP carried by two whole stacks (Ethernet, ARP, IPv4) on the in-memory wire."""

from __future__ import annotations

import hashlib
import random

from pystack.tcp.state import State

from .conftest import A_IP, B_IP, make_pair


def _connected(a, b, wire):
    """A client on ``a`` connected to a listener on ``b`` port 80: (client, accepted server side)."""
    listener = b.tcp.listen(0, 80, 8)
    client = a.tcp.connect(A_IP, B_IP, 80, wire.clock.now)
    wire.run(until=lambda: listener.readable)
    return client, listener.accept()


def test_connection_over_ip_moves_bytes_both_ways_and_closes():
    a, b, wire = make_pair()
    client, server = _connected(a, b, wire)
    assert server is not None and client.state == State.ESTABLISHED
    data = random.Random(1).randbytes(300_000)
    sent = 0
    got = bytearray()
    while len(got) < len(data):
        if sent < len(data):
            sent += client.send(data[sent:], wire.clock.now)
        wire.run(until=lambda: server.readable)
        while server.recv_available:
            got += server.recv(1 << 20, wire.clock.now)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    server.send(b"thanks", wire.clock.now)
    wire.run(until=lambda: client.readable)
    assert client.recv(100, wire.clock.now) == b"thanks"
    client.close(wire.clock.now)
    wire.run(until=lambda: server.at_eof)
    server.close(wire.clock.now)
    wire.run(duration=1)
    assert server.state == State.CLOSED
    assert client.state in (State.TIME_WAIT, State.CLOSED)
    assert a.counters["drop.internal_error"] == 0 and b.counters["drop.internal_error"] == 0


def test_connect_to_closed_port_is_refused():
    a, b, wire = make_pair()
    client = a.tcp.connect(A_IP, B_IP, 81, wire.clock.now)
    wire.run(until=lambda: client.error is not None)
    assert client.error == 111  # ECONNREFUSED


def test_segmentation_offload_sends_super_frames_that_cut_into_wire_segments():
    from pystack.wire import ipv4 as ipv4_wire
    from pystack.wire import tcp as tcp_wire
    from pystack.wire.gso import GsoFrame, segment

    a, b, wire = make_pair()
    b.enable_segmentation_offload()
    client, server = _connected(a, b, wire)
    data = random.Random(2).randbytes(200_000)
    sent = 0
    got = bytearray()
    while len(got) < len(data):
        if sent < len(data):
            sent += server.send(data[sent:], wire.clock.now)
        wire.run(until=lambda: client.readable)
        while client.recv_available:
            got += client.recv(1 << 20, wire.clock.now)
    assert bytes(got) == data
    supers = [f for _t, s, f in wire.log if s == 1 and type(f) is GsoFrame]
    assert supers and max(len(f) for f in supers) > 1514
    for frame in supers:
        for piece in segment(frame, frame.gso_size):
            assert len(piece) <= 1514
            ip = ipv4_wire.parse(memoryview(piece)[14:])
            assert ip.dont_fragment
            tcp_wire.parse(ip.payload, ip.src, ip.dst)  # each wire segment verifies
    assert b.counters["gso_frames_out"] == len(supers)


def test_a_batch_of_in_order_segments_is_acknowledged_once():
    from pystack.wire import ipv4 as ipv4_wire
    from pystack.wire import tcp as tcp_wire

    def acks(frames):
        out = []
        for f in frames:
            ip = ipv4_wire.parse(memoryview(f)[14:])
            if ip.protocol == 6:
                seg = tcp_wire.parse(ip.payload, ip.src, ip.dst)
                if not seg.payload:
                    out.append(seg)
        return out

    for batched in (False, True):
        a, b, wire = make_pair()
        client, server = _connected(a, b, wire)
        wire.run(duration=1)
        server.send(bytes(10 * 1448), wire.clock.now)
        data_frames = b.frames_to_send()
        assert len(data_frames) == 10
        if batched:
            a.begin_batch()
        for f in data_frames:
            a.receive_frame(f, wire.clock.now)
        if batched:
            a.end_batch(wire.clock.now)
        got = acks(a.frames_to_send())
        assert len(got) == (1 if batched else 5)
        assert got[-1].ack == server.snd_nxt  # the last ACK covers everything
