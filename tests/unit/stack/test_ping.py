"""Two in-memory stacks ping each other: ARP resolves, echo replies come back at every size."""

from __future__ import annotations

import pytest

from pystack.config import StackConfig
from pystack.iface.ethernet import EthernetLink
from pystack.iface.icmp import Icmpv4
from pystack.wire import ethernet, icmp, ipv4
from pystack.wire.checksum import internet_checksum

from .conftest import A_IP, A_MAC, B_IP, B_MAC, make_pair
from .twins import calls, outcome, twin_configs


def _ping(a, b, wire, size: int, seq: int = 1) -> list[tuple[int, int, bytes]]:
    replies: list[tuple[int, int, bytes]] = []
    a.echo_reply_handler = lambda src, rest, payload, now: replies.append((src, rest, payload))
    payload = bytes(i & 0xFF for i in range(size))
    a.send_ip(B_IP, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x4242_0000 | seq, payload), wire.clock.now)
    wire.run(until=lambda: bool(replies))
    return replies


@pytest.mark.parametrize("size", [0, 56, 1472, 1473, 4000, 65507])
def test_echo_reply_carries_the_payload_back_at_every_size(pair, size):
    a, b, wire = pair
    replies = _ping(a, b, wire, size)
    assert replies == [(B_IP, 0x4242_0001, bytes(i & 0xFF for i in range(size)))]
    assert b.counters["icmp.echo_replies_sent"] == 1
    assert a.counters.total_drops() == 0 and b.counters.total_drops() == 0


def test_large_echo_is_fragmented_to_the_mtu_and_reassembled(pair):
    a, b, wire = pair
    _ping(a, b, wire, 4000)
    ip_frames = [f for _t, _s, f in wire.log if f[12:14] == b"\x08\x00"]
    assert ip_frames and max(len(f) for f in ip_frames) <= 1500 + 14
    assert a.counters["ipv4.reassembled"] == 1 and b.counters["ipv4.reassembled"] == 1


def test_arp_resolves_once_then_uses_the_cache(pair):
    a, b, wire = pair
    _ping(a, b, wire, 56, 1)
    _ping(a, b, wire, 56, 2)
    assert a.counters["arp.requests_sent"] == 1
    assert a.arp.entries[B_IP].mac == B_MAC
    assert b.arp.entries[A_IP].mac == A_MAC  # learned from the request addressed to it (RFC 826 merge)


def test_stale_entry_is_refreshed_by_unicast_request(pair):
    a, b, wire = pair
    _ping(a, b, wire, 56, 1)
    wire.clock.now += a.config.arp_reachable_time + 1
    before = len(wire.log)
    _ping(a, b, wire, 56, 2)
    arp_requests = [f for _t, s, f in wire.log[before:] if s == 0 and f[12:14] == b"\x08\x06"]
    assert arp_requests and arp_requests[0][:6] == B_MAC  # unicast poll, RFC 1122 2.3.2.1


@pytest.mark.parametrize("recverr", [True, False], ids=["recverr", "plain"])
def test_unresolvable_neighbour_gives_up_and_tells_the_sender(pair, recverr):
    """As the kernel (arp_error_report: a host unreachable from ourselves), a soft error: a connected UDP
    socket with IP_RECVERR hears EHOSTUNREACH, one without hears nothing (both seen on Linux with a veth
    whose peer never answers ARP)."""
    a, b, wire = pair
    endpoint = a.udp.bind(0, 5000)
    endpoint.recverr = recverr
    endpoint.connect((ipv4.addr_to_int("192.0.2.77"), 9))
    endpoint.sendto(b"x", None, wire.clock.now)
    wire.run(duration=10)
    assert a.counters["arp.requests_sent"] == a.config.arp_max_retries
    assert a.counters["arp.resolution_failed"] == 1
    if not recverr:
        assert endpoint.recvfrom() is None
        return
    with pytest.raises(OSError) as info:
        endpoint.recvfrom()
    assert info.value.errno == 113  # EHOSTUNREACH


def test_pending_queue_is_bounded():
    cfg = StackConfig(arp_pending_bytes=4 * 29)  # four 1-byte UDP datagrams
    a, b, wire = make_pair(cfg)
    ep = a.udp.bind(0, 5000)
    for _ in range(10):
        ep.sendto(b"x", (ipv4.addr_to_int("192.0.2.77"), 9), wire.clock.now)
    assert len(a.arp.pending[ipv4.addr_to_int("192.0.2.77")].packets) == 4
    assert a.counters["drop.arp.pending_queue_full"] == 6


def test_never_answers_arp_for_addresses_not_ours(pair):
    a, b, wire = pair
    from pystack.wire import arp

    request = arp.build(arp.OP_REQUEST, B_MAC, B_IP, b"\0" * 6, ipv4.addr_to_int("192.0.2.9"))
    ignored = a.counters["arp.requests_ignored"]
    a.receive_frame(ethernet.build(ethernet.BROADCAST, B_MAC, ethernet.ETHERTYPE_ARP, request), wire.clock.now)
    assert a.frames_to_send() == []
    assert a.counters["arp.requests_ignored"] == ignored + 1


def test_address_configuration_is_announced(pair):
    a, _b, wire = pair
    from pystack.wire import arp

    announcements = [arp.parse(f[14:]) for _t, s, f in wire.log if s == 0 and f[12:14] == b"\x08\x06"]
    assert len(announcements) == a.config.arp_announcements
    assert all(p.sender_ip == p.target_ip == A_IP and p.op == arp.OP_REQUEST for p in announcements)
    times = [t for t, s, f in wire.log if s == 0 and f[12:14] == b"\x08\x06"]
    assert times[1] - times[0] == pytest.approx(a.config.arp_announce_interval)


def test_off_link_destination_goes_to_the_gateway(pair):
    a, b, wire = pair
    ep = a.udp.bind(0, 5000)
    ep.sendto(b"via router", (ipv4.addr_to_int("198.51.100.80"), 80), wire.clock.now)
    wire.run()
    udp_frames = [f for _t, s, f in wire.log if s == 0 and f[12:14] == b"\x08\x00"]
    assert udp_frames[-1][:6] == B_MAC  # the gateway's MAC, the final destination's IP
    assert ipv4.parse(udp_frames[-1][14:]).dst == ipv4.addr_to_int("198.51.100.80")


# --- the echo fast path (Stack.answer_echo) ----------------------------------------------------------
# A plain echo request is answered by one function instead of the layered receive and send paths. Its
# reply must be the layered path's byte for byte, and everything it declines must still get the layered
# path's answer or drop. Each test runs on twins: B with the fast paths on, and B with them off.


def _echo_request(a, payload: bytes = bytes(range(56))) -> bytes:
    a.send_ip(B_IP, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x12340001, payload), 0.0)
    (frame,) = a.frames_to_send()
    return frame


def _answer(b, frame: bytes) -> list[bytes]:
    b.receive_frame(frame, 1.0)
    return b.frames_to_send()


def _resolved_twins():
    """(a, fast_b, layered_b): B with both ARP caches filled, fast paths on and off, in the same state."""
    fast, layered = twin_configs()
    a, fast_b, wire = make_pair(fast)
    _ping(a, fast_b, wire, 8)
    a2, layered_b, wire2 = make_pair(layered)
    _ping(a2, layered_b, wire2, 8)
    assert [f for _t, _s, f in wire.log] == [f for _t, _s, f in wire2.log]
    return a, fast_b, layered_b


@pytest.mark.parametrize("size", [0, 1, 56, 1472])
def test_echo_fast_path_reply_is_the_layered_reply_byte_for_byte(size):
    a, fast_b, layered_b = _resolved_twins()
    frame = _echo_request(a, bytes(i * 7 & 0xFF for i in range(size)))
    with calls(Icmpv4.answer_echo, EthernetLink.receive) as seen:
        fast = _answer(fast_b, frame)
    assert seen == {"Icmpv4.answer_echo": 1}  # answered without the layered receive path
    with calls(Icmpv4.answer_echo, EthernetLink.receive) as seen:
        layered = _answer(layered_b, frame)
    assert seen == {"EthernetLink.receive": 1}  # the switch off: no fast path at all
    assert len(fast) == 1 and fast == layered
    assert fast_b.counters == layered_b.counters and fast_b.counters["drop.internal_error"] == 0


def test_ethernet_padding_is_not_echoed():
    a, fast_b, layered_b = _resolved_twins()
    frame = _echo_request(a, b"")  # 42 bytes: a real NIC pads it to 60
    (reply,) = _answer(fast_b, frame + bytes(18))
    assert len(reply) == len(frame) and reply == _answer(layered_b, frame + bytes(18))[0]


def _with_bad_icmp_checksum(frame: bytes) -> bytes:
    return frame[:36] + bytes([frame[36] ^ 0xFF]) + frame[37:]


def _with_router_alert(frame: bytes) -> bytes:
    payload = frame[34:]
    return frame[:14] + ipv4.build_header(A_IP, B_IP, ipv4.PROTO_ICMP, len(payload), ident=1, ttl=64,
                                          options=b"\x94\x04\x00\x00") + payload


def _with_reserved_flag(frame: bytes) -> bytes:
    header = bytearray(frame[14:34])
    header[6] |= 0x80  # RFC 791: the reserved bit must be zero
    header[10:12] = b"\x00\x00"
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")  # only the flag is wrong
    return frame[:14] + bytes(header) + frame[34:]


@pytest.mark.parametrize("change, counter", [
    (_with_reserved_flag, "drop.ipv4.reserved_flag"),
    (_with_bad_icmp_checksum, "drop.icmp.bad_checksum"),
    (lambda f: f[:24] + bytes([f[24] ^ 0xFF]) + f[25:], "drop.ipv4.bad_checksum"),
    (lambda f: f[:16] + (len(f) - 14 + 1).to_bytes(2, "big") + f[18:], None),  # IP longer than the frame
    (lambda f: f[:6] + b"\x03" + f[7:], "drop.ethernet.multicast_source"),
])
def test_what_the_fast_path_declines_is_dropped_and_counted_by_the_layered_path(change, counter):
    a, fast_b, layered_b = _resolved_twins()
    frame = change(_echo_request(a))
    for b in (fast_b, layered_b):
        drops = b.counters.total_drops()
        assert _answer(b, frame) == []
        assert b.counters.total_drops() == drops + 1
        if counter:
            assert b.counters[counter] == 1


def test_an_echo_request_with_ip_options_is_answered_by_the_layered_path():
    a, fast_b, layered_b = _resolved_twins()
    frame = _with_router_alert(_echo_request(a))
    with calls(EthernetLink.receive) as seen:
        replies = _answer(fast_b, frame)
    assert seen["EthernetLink.receive"] == 1 and len(replies) == 1
    assert replies == _answer(layered_b, frame)


def test_an_echo_from_an_unknown_neighbour_asks_arp_first():
    a, fast_b, _layered_b = _resolved_twins()
    frame = _echo_request(a)
    del fast_b.arp.entries[A_IP]
    out = _answer(fast_b, frame)
    assert len(out) == 1 and out[0][12:14] == b"\x08\x06"  # an ARP request; the reply waits for its answer


def test_an_echo_from_off_link_is_answered_through_the_gateway():
    """The fast path takes on-link neighbours only; an off-link source is routed (RFC 1122 3.3.1) by the
    layered path, to the gateway's MAC."""
    _a, fast_b, layered_b = _resolved_twins()
    far = ipv4.addr_to_int("198.51.100.7")
    request = icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x12340001, b"far away")
    frame = ethernet.header(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV4) + ipv4.build(far, B_IP, ipv4.PROTO_ICMP, request)
    for b in (fast_b, layered_b):
        b.gateway = A_IP
    (reply,) = _answer(fast_b, frame)
    assert reply[:6] == A_MAC and int.from_bytes(reply[30:34], "big") == far
    assert icmp.parse(reply[34:]).type == icmp.TYPE_ECHO_REPLY
    assert [reply] == _answer(layered_b, frame)


def test_an_echo_from_a_stale_neighbour_is_answered_with_a_unicast_arp_poll():
    """RFC 1122 2.3.2.1: a stale entry is still used and polled; the fast path leaves that to the layered
    path, which sends both."""
    a, fast_b, layered_b = _resolved_twins()
    frame = _echo_request(a)
    later = fast_b.arp.entries[A_IP].expires + 1
    fast = outcome(fast_b, frame, later)
    assert fast == outcome(layered_b, frame, later)
    assert sorted(f[12:14] for f in fast[0]) == [b"\x08\x00", b"\x08\x06"] and fast[0][1][:6] == A_MAC


def test_a_reply_larger_than_our_mtu_is_fragmented_by_the_layered_path():
    """A neighbour with a larger MTU may send a request whose reply does not fit ours: the fast path
    declines it, and the layered path fragments the reply (RFC 791)."""
    fast, layered = twin_configs(StackConfig(mtu=576))
    twins = []
    for config in (fast, layered):
        a, b, wire = make_pair(config)
        _ping(a, b, wire, 8)
        twins.append(b)
    request = icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x12340001, bytes(1000))
    frame = ethernet.header(B_MAC, A_MAC, ethernet.ETHERTYPE_IPV4) + ipv4.build(A_IP, B_IP, ipv4.PROTO_ICMP, request)
    replies = outcome(twins[0], frame, 1.0)
    assert replies == outcome(twins[1], frame, 1.0)
    assert len(replies[0]) == 2 and all(len(f) <= 14 + 576 for f in replies[0])


def test_a_reply_whose_updated_checksum_is_zero_is_left_to_the_layered_path():
    """RFC 1624: the incremental update can give 0x0000 where only a recomputation is sure; the fast path
    declines that one request in 65536, and the layered reply is sent."""
    a, fast_b, _layered_b = _resolved_twins()
    payload = b"edge"
    for rest in range(0x12340000, 0x12350000):
        request = icmp.build(icmp.TYPE_ECHO_REQUEST, 0, rest, payload)
        if request[2:4] == b"\xf7\xff":  # the reply's updated checksum is then 0
            break
    else:
        raise AssertionError("no request with checksum 0xF7FF")
    a.send_ip(B_IP, ipv4.PROTO_ICMP, request, 0.0)
    (frame,) = a.frames_to_send()
    assert fast_b.answer_echo(frame, 1.0) is None
    (reply,) = _answer(fast_b, frame)
    assert icmp.parse(reply[34:]).type == icmp.TYPE_ECHO_REPLY


def test_a_repeated_request_is_answered_from_what_the_first_one_established():
    """The second request of a ping (same addresses and fixed fields) skips the field-by-field checks:
    its reply must still be exact, with its own length, ident and checksums."""
    a, fast_b, layered_b = _resolved_twins()
    first = _echo_request(a, b"first")
    assert _answer(fast_b, first) == _answer(layered_b, first)
    frame = _echo_request(a, bytes(range(200)))
    with calls(Icmpv4.answer_echo, Icmpv4._echo_peer_for) as seen:
        fast = _answer(fast_b, frame)
    assert seen == {"Icmpv4.answer_echo": 1}  # no second full check
    assert len(fast) == 1 and fast == _answer(layered_b, frame)
    assert fast_b.counters["drop.internal_error"] == 0


@pytest.mark.parametrize("change", ["new address", "deconfigured", "smaller subnet"])
def test_what_the_fast_path_remembered_is_forgotten_when_the_address_changes(change):
    """The remembered request's checks depend on our address and netmask: after configure or deconfigure
    the same request must get what the layered path gives it (here: nothing, it is no longer for us or
    no longer on-link), not a reply from the old address."""
    a, fast_b, layered_b = _resolved_twins()
    frame = _echo_request(a)
    assert len(_answer(fast_b, frame)) == 1
    for b in (fast_b, layered_b):
        if change == "new address":
            b.configure(ipv4.addr_to_int("192.0.2.77"), 24, None, 1.0)
        elif change == "deconfigured":
            b.deconfigure()
        else:
            b.configure(B_IP, 31, None, 1.0)  # 192.0.2.0/31: A (192.0.2.2) is off-link now, with no gateway
        b.frames_to_send()  # announcements, if any
    assert fast_b.answer_echo(frame, 1.0) is None
    assert [f for f in _answer(fast_b, frame) if f[12:14] == b"\x08\x00"] == \
        [f for f in _answer(layered_b, frame) if f[12:14] == b"\x08\x00"] == []
