"""TCP carried by two whole stacks (Ethernet, ARP, IPv4) on the in-memory wire."""

from __future__ import annotations

import random

from pystack.tcp.state import State

from .conftest import A_IP, B_IP, connected, exchange_and_close, make_pair, transfer


def test_connection_over_ip_moves_bytes_both_ways_and_closes():
    a, b, wire = make_pair()
    client, server = connected(a, b, wire)
    exchange_and_close(client, server, wire)
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
    client, server = connected(a, b, wire)
    data = random.Random(2).randbytes(200_000)
    got = transfer(server, client, wire, data)
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
        client, server = connected(a, b, wire)
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


def _ipv4_frames(wire, sender, protocol):
    """(IPv4 packet, frame) of every frame ``sender`` put on the wire carrying ``protocol``."""
    from pystack.wire import ethernet
    from pystack.wire import ipv4 as ipv4_wire

    out = []
    for _t, s, frame in wire.log:
        if s != sender or frame[12:14] != ethernet.ETHERTYPE_IPV4.to_bytes(2, "big"):
            continue
        ip = ipv4_wire.parse(memoryview(frame)[14:])
        if ip.protocol == protocol:
            out.append(ip)
    return out


def test_tcp_segments_carry_dont_fragment_both_data_and_pure_acks():
    """Like Linux (path MTU discovery, RFC 1191 / RFC 9293 3.7.2), every TCP segment pystack sends
    has DF set and is never a fragment: handshake, data segments, pure ACKs and FINs, both ways."""
    from pystack.wire import tcp as tcp_wire

    a, b, wire = make_pair()
    client, server = connected(a, b, wire)
    data = random.Random(3).randbytes(20_000)
    got = transfer(client, server, wire, data)
    server.send(b"reply", wire.clock.now)
    wire.run(until=lambda: client.readable)
    assert client.recv(100, wire.clock.now) == b"reply"  # unread data would make close() send a RST
    client.close(wire.clock.now)
    wire.run(duration=1)
    assert bytes(got) == data
    kinds = {0: set(), 1: set()}
    for sender in (0, 1):
        packets = _ipv4_frames(wire, sender, 6)
        assert packets
        for ip in packets:
            seg = tcp_wire.parse(ip.payload, ip.src, ip.dst)
            kind = ("syn" if seg.flags & 0x02 else "fin" if seg.flags & 0x01 else "rst" if seg.flags & 0x04
                    else "data" if seg.payload else "ack")
            kinds[sender].add(kind)
            assert ip.dont_fragment, f"{kind} segment from stack {sender} without DF: flags_offset {ip.flags_offset:#x}"
            assert not ip.more_fragments and ip.fragment_offset == 0
    # a (the client) sent data and b (the receiver) pure ACKs; both sent a SYN, a its FIN
    assert {"syn", "data", "fin"} <= kinds[0] and {"syn", "ack", "data"} <= kinds[1], kinds


def test_udp_sets_dont_fragment_when_the_datagram_fits_the_mtu_as_linux():
    """Linux's UDP default (IP_PMTUDISC_WANT): DF on what fits the MTU; larger datagrams are fragmented
    locally and their fragments go without DF."""
    a, b, wire = make_pair()
    server = b.udp.bind(0, 4000)
    client = a.udp.bind(0, 0)
    client.sendto(bytes(1472), (B_IP, 4000), wire.clock.now)  # 1500 bytes of IPv4: fits
    client.sendto(bytes(1473), (B_IP, 4000), wire.clock.now)  # one byte over: two fragments
    wire.run()
    assert server.recvfrom() == (bytes(1472), (A_IP, client.port))
    assert server.recvfrom() == (bytes(1473), (A_IP, client.port))
    whole, *fragments = _ipv4_frames(wire, 0, 17)
    assert whole.dont_fragment and not whole.is_fragment
    assert len(fragments) == 2 and all(f.is_fragment and not f.dont_fragment for f in fragments)


def test_echo_reply_that_fits_the_mtu_does_not_set_dont_fragment_unless_asked():
    from pystack.wire import icmp as icmp_wire
    from pystack.wire import ipv4 as ipv4_wire
    from pystack.wire import udp as udp_wire

    a, b, wire = make_pair()
    server = b.udp.bind(0, 4000)
    request = icmp_wire.build(icmp_wire.TYPE_ECHO_REQUEST, 0, 0x12340001, bytes(1400))
    a.send_ip(B_IP, ipv4_wire.PROTO_ICMP, request, wire.clock.now)
    wire.run()
    assert b.counters["icmp.echo_replies_sent"] == 1
    (reply_ip,) = _ipv4_frames(wire, 1, 1)
    assert icmp_wire.parse(reply_ip.payload).type == icmp_wire.TYPE_ECHO_REPLY
    assert not reply_ip.dont_fragment and not reply_ip.is_fragment

    # asked for: send_ip(dont_fragment=True) sets it on a datagram that fits
    segment = udp_wire.build(A_IP, B_IP, 5000, 4000, b"df please")
    a.send_ip(B_IP, udp_wire.PROTO_UDP, segment, wire.clock.now, dont_fragment=True)
    wire.run()
    assert server.recvfrom() == (b"df please", (A_IP, 5000))
    asked = _ipv4_frames(wire, 0, 17)[-1]
    assert asked.dont_fragment and not asked.is_fragment


def test_reconnecting_from_a_port_the_server_holds_in_time_wait_is_accepted_at_once():
    """The server closes first, so it keeps the 4-tuple in TIME-WAIT; the client reconnects from the same
    port at once. RFC 6191 lets the server take the new SYN when its TSval is above the old incarnation's,
    so the TSval clock must not restart at a random point per connection (RFC 7323 5.4 offsets are per
    host pair, as in Linux since 4.13). With a random offset per connection about half of these
    reconnections would be dropped under PAWS and wait for a SYN retransmission."""
    a, b, wire = make_pair()
    listener = b.tcp.listen(0, 80, 8)
    for i in range(16):
        started = wire.clock.now
        client = a.tcp.connect(A_IP, B_IP, 80, wire.clock.now, local_port=40000)
        wire.run(until=lambda: listener.readable, limit=5)
        server = listener.accept()
        assert server is not None, f"reconnection {i} was not accepted"
        assert wire.clock.now - started < 0.5, f"reconnection {i} needed a SYN retransmission"
        server.close(wire.clock.now)  # the server closes first: TIME-WAIT is on its side
        wire.run(until=lambda: client.at_eof)
        client.close(wire.clock.now)
        wire.run(until=lambda: client.state == State.CLOSED, limit=5)
        assert server.state == State.TIME_WAIT
        wire.clock.now += 0.01
    assert b.counters["drop.tcp.paws"] == 0


def _over_delay(upload: bool, read: bool = True, **tcp: int) -> tuple[float, int, int]:
    """6 MiB over 20 ms of round trip, B to A (or A to B with ``upload``), the receiver reading all it gets
    unless not ``read``, and the other buffer large enough never to limit: seconds taken (fake clock) and
    the buffer under test's cap (B's send buffer, or B's receive buffer) before and after."""
    from pystack.config import StackConfig

    config = StackConfig()
    if upload:
        config.tcp.send_buffer = 8 << 20
    else:
        config.tcp.recv_buffer = 8 << 20
    for name, value in tcp.items():
        setattr(config.tcp, name, value)
    a, b, wire = make_pair(config, latency=0.010)
    client, server = connected(a, b, wire)
    cap = (lambda: server._rb.cap) if upload else (lambda: server._snd.cap)
    before = cap()
    data = random.Random(3).randbytes(6 << 20)
    started = wire.clock.now
    if not read:
        client.send(data, wire.clock.now)
        wire.run(duration=2.0)
    else:
        sender, receiver = (client, server) if upload else (server, client)
        assert transfer(sender, receiver, wire, data) == data
    return wire.clock.now - started, before, cap()


def test_the_send_buffer_grows_with_the_window_so_delay_does_not_cap_the_rate():
    """256 KiB per 20 ms round trip is 13 MB/s whatever the path allows: Linux grows a sender's buffer
    to follow its congestion window (tcp_sndbuf_expand, up to tcp_wmem[2]); so does pystack."""
    fixed, start, fixed_cap = _over_delay(upload=False, send_buffer_max=0)
    grown, start2, grown_cap = _over_delay(upload=False, send_buffer_max=4 << 20)
    assert start == start2 == 256 * 1024 == fixed_cap
    assert grown_cap == 4 << 20  # grew to the ceiling, and not past it
    assert fixed >= 0.9 * 0.020 * (6 << 20) / (256 << 10)  # one buffer per round trip, at best
    assert grown < fixed / 2


def test_the_receive_buffer_grows_while_the_reader_keeps_up():
    """Linux's receive auto-tuning (tcp_rcv_space_adjust): a reader that takes more each round trip gets
    a larger window, so 256 KiB per 20 ms (13 MB/s) does not cap what the path carries."""
    fixed, start, fixed_cap = _over_delay(upload=True, recv_buffer_max=0)
    grown, start2, grown_cap = _over_delay(upload=True, recv_buffer_max=6 << 20)
    assert start == start2 == fixed_cap == 256 * 1024
    assert 256 * 1024 < grown_cap <= 6 << 20
    assert fixed >= 0.9 * 0.020 * (6 << 20) / (256 << 10)
    assert grown < fixed / 2


def test_a_reader_that_does_not_read_keeps_the_small_buffer():
    _seconds, start, cap = _over_delay(upload=True, read=False, recv_buffer_max=6 << 20)
    assert cap == start == 256 * 1024


def test_only_a_connection_that_saw_loss_holds_its_own_queue_and_scoreboard():
    """An idle connection carries no out-of-order queue and no SACK scoreboard of its own (memory per
    idle connection); loss gives each side its own, and the shared empty ones stay empty."""
    from pystack.tcp import recovery
    from pystack.tcp.reassembly import NOTHING_HELD

    drops = random.Random(6)
    a, b, wire = make_pair(fault=lambda _i, frame: [] if len(frame) > 1000 and drops.random() < 0.05 else [frame])
    client, server = connected(a, b, wire)
    assert server._ooo is NOTHING_HELD and client._rec.sacked is recovery._NOTHING_SACKED
    data = random.Random(7).randbytes(300_000)
    assert transfer(client, server, wire, data) == data
    assert server._ooo is not NOTHING_HELD and client._rec.sacked is not recovery._NOTHING_SACKED
    assert not NOTHING_HELD and NOTHING_HELD.fin_pos is None and not recovery._NOTHING_SACKED
    assert client._ooo is NOTHING_HELD  # it received nothing out of order
