"""The whole stack (``Stack.receive_frame``) under mutated and generated frames.

Properties, checked frame by frame:
- nothing raises out of the core, and ``drop.internal_error`` (an exception the core caught) stays 0;
- every frame leaves a trace: a drop counted by a ``layer.reason``, or a counted event, an answer,
  or state the stack now holds (a fragment waiting for its datagram, an ARP entry refreshed);
- whatever the stack sends back is well-formed (checksums right, our addresses, within the MTU);
- once the garbage stops and time passes, nothing of it is left: no partial datagram, no pending
  ARP resolution, no half-open connection.
"""

from __future__ import annotations

import random
import re
import struct
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

from pystack.apps.udp_echo import UdpEcho
from pystack.stack import Stack
from pystack_lab.reference import ref_checksum, ref_ones_sum

from .corpus import A_IP, A_MAC, B_IP, B_MAC, corpus, examples, make_pair, record_session
from .mutate import ETH_LEN, ip_layout, ipv6_layout, mutate
from .strategies import ethernet_frames

DROP_KEY = re.compile(r"^drop\.[a-z0-9_]+\.[a-z0-9_]+$")
QUIET = ("frames_in", "frames_out", "tcp.in_segments")
"""Counters every frame (or answer) moves; a trace must be something more specific."""


def fuzz_target(gateway: bool = True) -> tuple[Stack, object]:
    """Stack A as the daemon runs it: UDP echo on 7, a TCP listener on 80 (B is its peer on the wire),
    with a default gateway (B) or, as ``pystack run`` without ``--gateway``, none."""
    a, _b, wire = make_pair()
    if not gateway:
        a.gateway = None
    UdpEcho(a)
    a.tcp.listen(0, 80, 64)
    a.frames_to_send()
    return a, wire.clock


def held_state(stack: Stack) -> tuple:
    """What the stack holds that a frame may change without a counter (accepted, not dropped)."""
    r = stack.reassembler
    partial = tuple((key, len(dg.starts), dg.total) for key, dg in r.datagrams.items())
    arp = tuple((ip, e.mac, e.expires) for ip, e in stack.arp.entries.items())
    return r.bytes_held, partial, arp, len(stack.arp.pending), len(stack.tcp.connections), held_state6(stack)


def held_state6(stack: Stack) -> tuple:
    """The IPv6 part: partial packets, neighbours and their states, addresses, routers, prefixes, DNS
    servers, path MTUs, groups, connections over IPv6."""
    if not stack.ipv6_enabled:
        return ()
    r6 = stack._ipv6.reassembler
    nd = stack.nd
    return (r6.bytes_held, tuple((k, len(p.starts), p.total) for k, p in r6.packets.items()),
            tuple((ip, e.state, e.lladdr, e.is_router, len(e.queue)) for ip, e in nd.neighbours.entries.items()),
            tuple((a.address, a.state) for a in stack.addresses6), tuple(nd.routers.routers),
            tuple(nd.routers.prefixes), tuple(nd.routers.dns_servers), tuple(stack._ipv6.path_mtu),
            tuple(nd.mld.groups), len(stack.tcp6.connections))


def is_arp_reply_for_us(frame: bytes) -> bool:
    """A well-formed ARP reply to us refreshes the sender's entry, maybe to the very same values (same
    MAC, same fake time), so no trace can show; it is accepted, not dropped."""
    return (len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[14:20] == b"\x00\x01\x08\x00\x06\x04"
            and frame[20:22] == b"\x00\x02" and struct.unpack_from("!I", frame, 38)[0] == A_IP)


def sent_problems(frame: bytes, mac: bytes = A_MAC, ip: int = A_IP, mtu: int = 1500,
                  ours6: frozenset[int] = frozenset()) -> list[str]:
    """What is wrong with a frame the stack sent (empty when nothing is); ``ours6`` are the stack's IPv6
    addresses, those its IPv6 packets may come from."""
    if len(frame) < ETH_LEN:
        return ["shorter than an Ethernet header"]
    problems = []
    if frame[6:12] != mac:
        problems.append("source MAC is not ours")
    if frame[12:14] == b"\x86\xdd":
        return problems + sent_problems6(frame, ours6, mtu)
    if frame[12:14] == b"\x08\x06":
        if len(frame) < 42 or frame[14:20] != b"\x00\x01\x08\x00\x06\x04" or frame[22:28] != mac:
            problems.append("malformed ARP")
        return problems
    if frame[12:14] != b"\x08\x00":
        return problems + [f"unexpected ethertype {frame[12:14].hex()}"]
    layout = ip_layout(frame)
    if layout is None or frame[ETH_LEN] >> 4 != 4:
        return problems + ["malformed IPv4 header"]
    ihl, end, proto = layout
    total = struct.unpack_from("!H", frame, ETH_LEN + 2)[0]
    if total != len(frame) - ETH_LEN:
        problems.append(f"total length {total} for a {len(frame) - ETH_LEN}-byte datagram")
    if total > mtu:
        problems.append(f"{total}-byte datagram over the {mtu}-byte MTU")
    if ref_checksum(frame[ETH_LEN:ETH_LEN + ihl]) != 0:
        problems.append("bad IPv4 header checksum")
    if struct.unpack_from("!I", frame, ETH_LEN + 12)[0] != ip:
        problems.append("source address is not ours")
    if frame[ETH_LEN + 8] == 0:
        problems.append("TTL 0")
    if struct.unpack_from("!H", frame, ETH_LEN + 6)[0] & 0x3FFF:
        return problems  # a fragment: the transport checksum covers the whole datagram
    seg = frame[ETH_LEN + ihl:end]
    if proto == 1 and ref_checksum(seg) != 0:
        problems.append("bad ICMP checksum")
    elif proto in (6, 17):
        pseudo = ref_ones_sum(frame[ETH_LEN + 12:ETH_LEN + 20] + struct.pack("!BBH", 0, proto, len(seg)))
        if ref_checksum(seg, pseudo) != 0:
            problems.append(f"bad {'TCP' if proto == 6 else 'UDP'} checksum")
    return problems


ND_TYPES = frozenset(range(133, 138))


def sent_problems6(frame: bytes, ours: frozenset[int], mtu: int) -> list[str]:
    """What is wrong with an IPv6 packet the stack sent (RFC 8200, RFC 4861 7.1, RFC 3810 5)."""
    layout = ipv6_layout(frame)
    if layout is None or frame[ETH_LEN] >> 4 != 6:
        return ["malformed IPv6 header"]
    problems = []
    length = struct.unpack_from("!H", frame, ETH_LEN + 4)[0]
    if length != len(frame) - ETH_LEN - 40:
        problems.append(f"payload length {length} for a {len(frame) - ETH_LEN - 40}-byte payload")
    if len(frame) - ETH_LEN > mtu:
        problems.append(f"{len(frame) - ETH_LEN}-byte packet over the {mtu}-byte MTU")
    src = int.from_bytes(frame[ETH_LEN + 8:ETH_LEN + 24], "big")
    dst = int.from_bytes(frame[ETH_LEN + 24:ETH_LEN + 40], "big")
    start, end, nh, fragment = layout
    icmp_type = frame[start] if nh == 58 and start < end and not fragment else None
    if src not in ours and not (src == 0 and icmp_type in (135, 143)):  # DAD probes, MLD before an address
        problems.append(f"source {src:#x} is not ours")
    if dst == 0 or dst >> 120 == 0xFF and frame[0:6] != b"\x33\x33" + frame[ETH_LEN + 36:ETH_LEN + 40]:
        problems.append("destination unspecified, or a group not sent to its MAC")
    hop_limit = frame[ETH_LEN + 7]
    if hop_limit == 0 or icmp_type in ND_TYPES and hop_limit != 255 or icmp_type == 143 and hop_limit != 1:
        problems.append(f"hop limit {hop_limit} for ICMPv6 type {icmp_type}")
    if not fragment and nh in (6, 17, 58) and end - start >= 8:
        pseudo = ref_ones_sum(frame[ETH_LEN + 8:ETH_LEN + 40] + struct.pack("!IxxxB", end - start, nh))
        if ref_checksum(frame[start:end], pseudo) != 0:
            problems.append(f"bad checksum (Next Header {nh})")
    return problems


def ours6(stack: Stack) -> frozenset[int]:
    return frozenset(a.address for a in stack.addresses6) if stack.ipv6_enabled else frozenset()


def feed(stack: Stack, clock: object, frames: list[bytes]) -> Counter[str]:
    """Feed frames one by one, checking each; returns how many of each drop reason were counted."""
    before_all = Counter(stack.counters)
    for i, frame in enumerate(frames):
        before = dict(stack.counters)
        state = held_state(stack)
        stack.receive_frame(frame, clock.now)
        out = stack.frames_to_send()
        assert stack.counters["drop.internal_error"] == 0, f"internal error on frame {i}: {frame.hex()}"
        changed = {k for k, v in stack.counters.items() if v != before.get(k, 0)} - set(QUIET)
        if not (changed or out or held_state(stack) != state or is_arp_reply_for_us(frame)):
            pytest.fail(f"frame {i} left no trace (dropped without a counted reason?): {frame.hex()}")
        mine = ours6(stack)
        for reply in out:
            assert not sent_problems(reply, ours6=mine), \
                f"answer to frame {i} {frame.hex()}: {sent_problems(reply, ours6=mine)}: {bytes(reply).hex()}"
        if i % 200 == 199:  # time moves on: timers fire between bursts
            clock.now += 0.5
            stack.handle_timer(clock.now)
            mine = ours6(stack)
            for reply in stack.frames_to_send():
                assert not sent_problems(reply, ours6=mine), sent_problems(reply, ours6=mine)
    bad = [k for k in stack.counters if k.startswith("drop.") and not DROP_KEY.match(k)]
    assert not bad, f"drop counters without a layer.reason name: {bad}"
    return Counter(stack.counters) - before_all


def drain(stack: Stack, clock: object, seconds: float = 300.0) -> None:
    """Let ``seconds`` pass with no input, firing every timer; then nothing of the garbage may remain."""
    end = clock.now + seconds
    while True:
        deadline = stack.get_timer()
        if deadline is None or deadline > end:
            break
        clock.now = max(clock.now, deadline)
        stack.handle_timer(clock.now)
        mine = ours6(stack)
        for reply in stack.frames_to_send():
            assert not sent_problems(reply, ours6=mine), sent_problems(reply, ours6=mine)
    clock.now = end
    assert stack.counters["drop.internal_error"] == 0
    assert not stack.reassembler.datagrams and stack.reassembler.bytes_held == 0, "partial datagrams left"
    assert not stack.arp.pending, "ARP resolutions left pending"
    half_open = [c for c in stack.tcp.connections.values() if c.state.name != "TIME_WAIT"]
    assert not half_open, f"connections left behind by garbage: {half_open}"


@pytest.mark.parametrize("gateway", [True, False], ids=["gateway", "no_gateway"])
@pytest.mark.parametrize("seed", range(3))
def test_mutated_session_frames_are_dropped_counted_or_handled(seed: int, gateway: bool) -> None:
    frames = corpus()
    rng = random.Random(seed)
    stack, clock = fuzz_target(gateway)
    garbage = [mutate(rng, rng.choice(frames), frames)[0] for _ in range(examples(3000))]
    got = feed(stack, clock, garbage)
    drop_reasons = {k for k in got if k.startswith("drop.")}
    assert len(drop_reasons) >= 25, f"the mutations reached few checks: {sorted(drop_reasons)}"
    drain(stack, clock)


def test_the_session_itself_replayed_is_handled() -> None:
    """The unmutated corpus, replayed to a fresh stack: a baseline that every frame is traced."""
    stack, clock = fuzz_target()
    feed(stack, clock, list(corpus()))
    drain(stack, clock)


_shared: dict[str, tuple[Stack, object]] = {}


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=ethernet_frames())
def test_generated_frames_through_the_stack(frame: bytes) -> None:
    if "target" not in _shared:  # one stack for every example: state accumulates, as in real life
        _shared["target"] = fuzz_target()
    stack, clock = _shared["target"]
    feed(stack, clock, [frame])


def test_generated_frames_leave_nothing_behind() -> None:
    if "target" not in _shared:
        pytest.skip("runs after test_generated_frames_through_the_stack")
    stack, clock = _shared.pop("target")
    drain(stack, clock)


@pytest.mark.parametrize("size", [0, 1, 13, 14, 15, 33, 34, 60, 1514, 1515, 9014, 65535, 65550, 200_000])
def test_frames_of_every_size(size: int) -> None:
    """Zero-length up to giant frames, as valid as their size allows (an echo request padded out)."""
    stack, clock = fuzz_target()
    rng = random.Random(size)
    echo = bytearray(struct.pack("!BBHI", 8, 0, 0, 1) + rng.randbytes(max(0, min(size, 65535) - 42)))
    struct.pack_into("!H", echo, 2, ref_checksum(echo))
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, min(20 + len(echo), 0xFFFF), 1, 0, 64, 1, 0, B_IP, A_IP))
    struct.pack_into("!H", ip, 10, ref_checksum(ip))
    frame = (A_MAC + B_MAC + b"\x08\x00" + ip + echo + rng.randbytes(max(0, size - 65535)))[:size]
    feed(stack, clock, [frame])


# --- regressions: bugs the fuzzer found (fixed in dafed79 and 701970e) -----------------------------


def test_arp_reply_for_another_host_is_counted() -> None:
    """Requests for another host count arp.requests_ignored; replies for another host must leave a trace too."""
    stack, clock = fuzz_target()
    reply = struct.pack("!HHBBH6sI6sI", 1, 0x0800, 6, 4, 2, b"\x02\0\0\0\0\x33", B_IP + 0x30,
                        b"\x02\0\0\0\0\x44", B_IP + 0x40)
    before = dict(stack.counters)
    stack.receive_frame(b"\xff" * 6 + b"\x02\0\0\0\0\x33" + b"\x08\x06" + reply, clock.now)
    changed = {k for k, v in stack.counters.items() if v != before.get(k, 0)} - set(QUIET)
    assert changed, "an ARP reply for 192.0.2.65 left no counter at all"


def test_tcp_segments_fit_the_mtu_with_sack_blocks() -> None:
    """A transfer both ways with some loss, so data segments carry SACK blocks (the recorded session)."""
    oversized = []
    for frame in record_session():
        layout = ip_layout(frame)
        if layout and layout[2] == 6:
            flags_offset = struct.unpack_from("!H", frame, ETH_LEN + 6)[0]
            if flags_offset & 0x3FFF:
                oversized.append(frame)
    assert not oversized, f"{len(oversized)} IP fragments of TCP segments (each segment > MTU)"


@pytest.mark.parametrize("sender", ["255.255.255.255", "192.0.2.255", "224.0.0.1", "127.0.0.1"])
def test_arp_from_a_martian_sender_is_dropped(sender: str) -> None:
    """IPv4 drops these sources as ipv4.martian_source; ARP must neither answer nor cache them (as Linux)."""
    stack, clock = fuzz_target()
    sip = struct.unpack("!I", bytes(int(x) for x in sender.split(".")))[0]
    request = struct.pack("!HHBBH6sI6sI", 1, 0x0800, 6, 4, 1, b"\x02\0\0\0\0\x33", sip, bytes(6), A_IP)
    stack.receive_frame(b"\xff" * 6 + b"\x02\0\0\0\0\x33" + b"\x08\x06" + request, clock.now)
    answers = stack.frames_to_send()
    assert sip not in stack.arp.entries and not answers, f"{sender} was cached and answered"


def test_echo_request_from_off_subnet_without_gateway_is_dropped_and_counted() -> None:
    """``pystack run`` without --gateway, pinged from off-link: no route back is a counted drop, not an
    exception out of the core."""
    stack, clock = fuzz_target(gateway=False)
    echo = bytearray(struct.pack("!BBHI", 8, 0, 0, 0x00010001) + bytes(32))
    struct.pack_into("!H", echo, 2, ref_checksum(echo))
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(echo), 1, 0, 64, 1, 0, 0xC6336407, A_IP))
    struct.pack_into("!H", ip, 10, ref_checksum(ip))  # from 198.51.100.7
    stack.receive_frame(A_MAC + B_MAC + b"\x08\x00" + ip + echo, clock.now)
    assert stack.counters["drop.internal_error"] == 0, dict(stack.counters.drops())


@pytest.mark.parametrize("dst", [0xC00002FF, 0xFFFFFFFF], ids=["subnet_broadcast", "limited_broadcast"])
@pytest.mark.parametrize("flags,port", [(0x10, 81), (0x02, 81), (0x02, 80)], ids=["ack_closed", "syn_closed", "syn_listen"])
def test_tcp_to_a_broadcast_address_is_dropped(dst: int, flags: int, port: int) -> None:
    """RFC 1122 4.2.3.10: TCP to a broadcast address is discarded; no RST, no SYN-ACK, no half-open
    connection, and never a segment from the broadcast address as source (3.2.1.3)."""
    stack, clock = fuzz_target()
    stack.arp.update(B_IP, B_MAC, clock.now, create=True)  # so any answer would go out at once
    segment = struct.pack("!HHIIBBHHH", 40000, port, 1000, 5000, 5 << 4, flags, 65535, 0, 0)
    pseudo = struct.pack("!IIBBH", B_IP, dst, 0, 6, len(segment))
    segment = segment[:16] + struct.pack("!H", ref_checksum(pseudo + segment)) + segment[18:]
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(segment), 1, 0, 64, 6, 0, B_IP, dst))
    struct.pack_into("!H", ip, 10, ref_checksum(ip))
    stack.receive_frame(b"\xff" * 6 + B_MAC + b"\x08\x00" + ip + segment, clock.now)
    answers = stack.frames_to_send()
    assert not answers and not stack.tcp.connections, [sent_problems(a) for a in answers]
