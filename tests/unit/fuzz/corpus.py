"""The fuzzers' seed corpus: a pcap of a short, real session between two in-memory stacks.

Mutating frames that pystack itself produced gets the fuzzer past the first checks (lengths,
versions, checksums once fixed up) into the parts of the code that only well-formed traffic
reaches: reassembly, ICMP errors, the TCP state machine with every option pystack negotiates.
The session is written to a pcap with ``PcapWriter`` and read back with dpkt, so the corpus is
literally "our own pcap"; ``PYSTACK_FUZZ_PCAP`` (paths separated by ``:``) adds more captures,
for example one taken with ``pystack run --pcap`` against the kernel.

:func:`corpus6` is the IPv6 one: the same kind of session over IPv6 (DAD, MLD, router solicitation,
neighbour discovery, pings and UDP fragmented both ways, TCP with loss), and what a host only receives,
made by hand and sent as from the peer: a router advertisement (SLAAC), an MLD query, a redirect,
extension header chains, routing headers, atomic, tiny, overlapping and incomplete fragments, a
Packet Too Big.
"""

from __future__ import annotations

import functools
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import dpkt

from pystack.apps.udp_echo import UdpEcho
from pystack.config import StackConfig
from pystack.link.memory import FakeClock, MemoryWire
from pystack.link.pcap import PcapWriter
from pystack.stack import Stack
from pystack.tcp.state import State
from pystack.wire import ethernet, icmp, icmpv6, ipv4, ipv6
from pystack.wire.icmpv6 import PrefixInfo

A_IP = ipv4.addr_to_int("192.0.2.2")  # the stack under test ("pystack")
B_IP = ipv4.addr_to_int("192.0.2.1")  # its peer ("the kernel")
A_MAC = bytes.fromhex("020000000002")
B_MAC = bytes.fromhex("020000000001")
A6 = ipv6.addr_to_int("2001:db8::2")
B6 = ipv6.addr_to_int("2001:db8::1")
A_LL = ipv6.addr_to_int("fe80::ff:fe00:2")  # modified EUI-64 of A_MAC (RFC 4291 appendix A)
B_LL = ipv6.addr_to_int("fe80::ff:fe00:1")
ROUTER_LL = ipv6.addr_to_int("fe80::1")
"""The router B plays in the IPv6 session (its advertisements, query and redirect come from it)."""
HTTP_PORT = 80


def make_pair(config: StackConfig | None = None, seed: int = 7,
              ipv6_too: bool = False) -> tuple[Stack, Stack, MemoryWire]:
    """A (192.0.2.2) and B (192.0.2.1) on an in-memory wire, addresses announced, time at 1004 s; with
    ``ipv6_too`` also A6 and B6 (2001:db8::2 and ::1) and their link-local addresses, past DAD."""
    rng = random.Random(seed)  # IP idents and ports: keep the corpus repeatable
    clock = FakeClock()
    a = Stack(A_MAC, config or StackConfig(), rng=rng)
    b = Stack(B_MAC, config or StackConfig(), rng=rng)
    a.configure(A_IP, 24, B_IP, clock.now)
    b.configure(B_IP, 24, None, clock.now)
    if ipv6_too:
        for stack, address in ((a, A6), (b, B6)):
            stack.start_ipv6(clock.now)
            stack.add_address6(address, 64, clock.now)
    wire = MemoryWire(a, b, clock=clock)
    wire.run(duration=max(a.config.arp_announcements * a.config.arp_announce_interval, 5.0 if ipv6_too else 0))
    return a, b, wire


@dataclass
class Transfer:
    """A TCP connection B -> A (B connects, as the kernel does to pystack) and both ends' bytes."""

    client: object
    server: object
    up: bytes
    down: bytes


def tcp_transfer(a: Stack, b: Stack, wire: MemoryWire, up: bytes, down: bytes, port: int = HTTP_PORT,
                 close: bool = True, on_connected: Callable[[Any, Any], None] | None = None, over_ipv6: bool = False,
                 ) -> tuple[bytes, bytes, Transfer]:
    """B connects to A, sends ``up`` while A sends ``down``, then both close (when ``close``).
    ``on_connected(client, server)`` is called once the handshake is done. ``over_ipv6``: between A6
    and B6.

    Returns what A received and what B received; raises AssertionError with the states if the
    transfer stalls (nothing left to happen on the wire before the bytes arrived).
    """
    tcp_a, tcp_b = (a.tcp6, b.tcp6) if over_ipv6 else (a.tcp, b.tcp)
    listener = tcp_a.listeners.get((0, port)) or tcp_a.listen(0, port, 16)
    client = tcp_b.connect(B6 if over_ipv6 else B_IP, A6 if over_ipv6 else A_IP, port, wire.clock.now)
    wire.run(until=lambda: listener.readable or client.error is not None, limit=300)
    server = listener.accept()
    assert server is not None, f"handshake failed: client {client.state} error {client.error}"
    if on_connected is not None:
        on_connected(client, server)
    got_a, got_b = bytearray(), bytearray()
    sent_up = sent_down = 0
    deadline = wire.clock.now + 600  # fake seconds: far beyond any retransmission backoff that still works
    idle = 0  # passes in a row in which neither bytes nor the fake clock moved
    while len(got_a) < len(up) or len(got_b) < len(down):
        before = (len(got_a), len(got_b), sent_up, sent_down, wire.clock.now)
        now = wire.clock.now
        if sent_up < len(up):
            sent_up += client.send(up[sent_up:sent_up + 65536], now)
        if sent_down < len(down):
            sent_down += server.send(down[sent_down:sent_down + 65536], now)
        more_up, more_down = sent_up < len(up), sent_down < len(down)
        # Run until there is something to read, or room for what is left to send; when neither can
        # happen at this instant, run() moves the fake clock on to the next timer (a retransmission).
        wire.run(until=lambda: server.recv_available or client.recv_available
                 or (more_up and client.send_space) or (more_down and server.send_space), limit=30)
        while server.recv_available:
            got_a += server.recv(1 << 20, wire.clock.now)
        while client.recv_available:
            got_b += client.recv(1 << 20, wire.clock.now)
        idle = idle + 1 if before == (len(got_a), len(got_b), sent_up, sent_down, wire.clock.now) else 0
        if wire.clock.now > deadline or idle > 100 or client.error or server.error:
            raise AssertionError(f"transfer stalled: client {client.state}/{client.error}, server "
                                 f"{server.state}/{server.error}, got {len(got_a)}/{len(up)} up, "
                                 f"{len(got_b)}/{len(down)} down")
    transfer = Transfer(client, server, up, down)
    if close:
        client.close(wire.clock.now)
        wire.run(until=lambda: server.at_eof or server.error is not None, limit=300)
        server.close(wire.clock.now)
        wire.run(until=lambda: server.state == State.CLOSED and client.state in (State.TIME_WAIT, State.CLOSED),
                 limit=300)
    return bytes(got_a), bytes(got_b), transfer


def _udp_and_lossy_tcp(a: Stack, b: Stack, wire: MemoryWire, rng: random.Random, up: int, down: int,
                       over_ipv6: bool = False) -> None:
    """B's UDP to A's echo port (four sizes, one fragmented) and to a closed port; a TCP transfer of ``up``
    and ``down`` random bytes losing one in 29 large frames (so SACK blocks and retransmissions appear),
    closed gracefully; a connection refused with RST."""
    a_ip, b_ip, udp_b, tcp_b = (A6, B6, b.udp6, b.tcp6) if over_ipv6 else (A_IP, B_IP, b.udp, b.tcp)
    udp = udp_b.bind(0, 0)
    for size in (0, 5, 512, 3000):
        udp.sendto(rng.randbytes(size), (a_ip, 7), wire.clock.now)
        udp.sendto(b"closed port", (a_ip, 9999), wire.clock.now)
        wire.run(duration=0.1)
    dropped = {"n": 0}

    def lossy(_sender: int, frame: bytes) -> list[bytes]:
        if len(frame) > 1000:
            dropped["n"] += 1
            if dropped["n"] % 29 == 0:
                return []
        return [frame]

    wire.fault = lossy
    tcp_transfer(a, b, wire, rng.randbytes(up), rng.randbytes(down), over_ipv6=over_ipv6)
    wire.fault = None
    refused = tcp_b.connect(b_ip, a_ip, 81, wire.clock.now)
    wire.run(until=lambda: refused.error is not None, limit=30)


def record_session(seed: int = 7) -> list[bytes]:
    """Every frame of a short session: ARP, pings of three sizes (one fragmented) both ways, UDP echo
    (one datagram fragmented), UDP to a closed port (ICMP port unreachable), a TCP transfer both ways
    with some loss (so SACK blocks and retransmissions appear) and a graceful close, a connection
    refused with RST, and an abort."""
    a, b, wire = make_pair(seed=seed)
    rng = random.Random(seed)
    UdpEcho(a)
    now = wire.clock.now
    for size in (56, 1472, 4000):
        b.send_ip(A_IP, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x1234_0001, bytes(size)), now)
        a.send_ip(B_IP, ipv4.PROTO_ICMP, icmp.build(icmp.TYPE_ECHO_REQUEST, 0, 0x4321_0001, bytes(size)), now)
        wire.run(duration=0.1)
    _udp_and_lossy_tcp(a, b, wire, rng, 120_000, 60_000)
    _, _, aborted = tcp_transfer(a, b, wire, b"GET / HTTP/1.0\r\n\r\n", b"partial", close=False)
    aborted.client.abort(wire.clock.now)
    wire.run(duration=1)
    return [frame for _t, _sender, frame in wire.log]


def _from_b(wire: MemoryWire, a: Stack, packet: bytes, mac: bytes = B_MAC) -> None:
    """A packet B sends to A that no pystack would send (a router's, or a hostile host's): logged as B's
    and handed to A; A's answers go out on the wire's next run."""
    dst = ipv6.parse(packet).dst
    frame = ethernet.build(ipv6.multicast_mac(dst) if ipv6.is_multicast(dst) else A_MAC, mac,
                           ethernet.ETHERTYPE_IPV6, packet)
    wire.log.append((wire.clock.now, 1, frame))
    a.receive_frame(frame, wire.clock.now)
    wire.run(duration=0.05)


def _echo6(src: int, dst: int, size: int, ident: int = 0x6666_0001) -> bytes:
    return icmpv6.build(icmpv6.TYPE_ECHO_REQUEST, 0, ident, bytes(size), src, dst)


def record_session6(seed: int = 7) -> list[bytes]:
    """Every frame of a short IPv6 session: DAD, MLD reports, router solicitations; a router advertisement
    (SLAAC, DAD of the new address, RDNSS, MTU); pings of three sizes both ways (fragmented both ways), to
    the link-local address and to all nodes; UDP echo (one datagram fragmented) and UDP to a closed port
    (port unreachable); TCP both ways with some loss and a close, a refusal; then, sent as B: an MLD
    query, a unicast NS without a link-layer address, an unsolicited NA, a redirect, pings behind
    destination options, hop-by-hop options, routing headers (type 0 with Segments Left 0 and 1), an
    unknown Next Header, an atomic fragment, tiny fragments, an overlapping pair, a first fragment
    without its upper-layer header, and a Packet Too Big about a packet of A's."""
    a, b, wire = make_pair(seed=seed, ipv6_too=True)
    rng = random.Random(seed)
    UdpEcho(a)
    prefix = PrefixInfo(ipv6.addr_to_int("2001:db8:1::"), 64, True, True, 3600, 1800)
    options = (icmpv6.lladdr_option(icmpv6.OPT_SOURCE_LLADDR, B_MAC) + icmpv6.mtu_option(1500)
               + icmpv6.rdnss_option(600, [B6]) + icmpv6.prefix_option(prefix))
    _from_b(wire, a, ipv6.build(ROUTER_LL, ipv6.ALL_NODES, ipv6.NH_ICMPV6, icmpv6.build_ra(ROUTER_LL, options=options),
                                hop_limit=255))
    wire.run(duration=3)  # the SLAAC address passes DAD
    for size in (56, 1452, 4000):
        b.send_ip6(A6, ipv6.NH_ICMPV6, _echo6(B6, A6, size), wire.clock.now)
        a.send_ip6(B6, ipv6.NH_ICMPV6, _echo6(A6, B6, size, 0x7777_0001), wire.clock.now)
        wire.run(duration=0.1)
    for dst, src in ((A_LL, B_LL), (ipv6.ALL_NODES, B_LL)):
        b.send_ip6(dst, ipv6.NH_ICMPV6, _echo6(src, dst, 56), wire.clock.now, src=src)
        wire.run(duration=0.1)
    _udp_and_lossy_tcp(a, b, wire, rng, 90_000, 40_000, over_ipv6=True)

    # What only routers and hostile hosts send, from B.
    query = icmpv6.build_mld_query(ROUTER_LL, ipv6.ALL_NODES, max_response_delay=1000)
    _from_b(wire, a, icmpv6.mld_packet(ROUTER_LL, ipv6.ALL_NODES, query))
    _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_ICMPV6, icmpv6.build_ns(B6, A6, A6), hop_limit=255))
    _from_b(wire, a, ipv6.build(B_LL, ipv6.ALL_NODES, ipv6.NH_ICMPV6,
                                icmpv6.build_na(B_LL, ipv6.ALL_NODES, B_LL, target_lladdr=B_MAC), hop_limit=255))
    redirect = icmpv6.build_redirect(ROUTER_LL, A6, B_LL, ipv6.addr_to_int("2001:db8:2::9"), target_lladdr=B_MAC)
    _from_b(wire, a, ipv6.build(ROUTER_LL, A6, ipv6.NH_ICMPV6, redirect, hop_limit=255))
    echo = _echo6(B6, A6, 24)
    padn = ipv6.options_header(ipv6.NH_ICMPV6, [(ipv6.OPT_PADN, bytes(4))])
    _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_DEST_OPTS, padn + echo))
    hbh = ipv6.options_header(ipv6.NH_DEST_OPTS, [(0x1E, b"\xaa\xbb")])  # unknown, "skip" (RFC 8200 4.2)
    _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_HOP_BY_HOP, hbh + padn + echo))
    for left in (0, 1):
        routing = ipv6.routing_header(ipv6.NH_ICMPV6, 0, left, bytes(4) + B6.to_bytes(16, "big"))
        _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_ROUTING, routing + echo))
    _from_b(wire, a, ipv6.build(B6, A6, 253, echo))  # an unknown Next Header: a parameter problem
    _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_FRAGMENT, ipv6.fragment_header(ipv6.NH_ICMPV6, 0, False, 7) + echo))
    big = _echo6(B6, A6, 40)
    for i, offset in enumerate(range(0, len(big), 16)):  # tiny fragments, 16 bytes each
        part = big[offset:offset + 16]
        frag = ipv6.fragment_header(ipv6.NH_ICMPV6, offset, offset + 16 < len(big), 8)
        _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_FRAGMENT, frag + part))
    for offset, more in ((0, True), (8, False)):  # an overlapping pair (RFC 5722)
        frag = ipv6.fragment_header(ipv6.NH_ICMPV6, offset, more, 9)
        _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_FRAGMENT, frag + big[offset:offset + 16]))
    frag = ipv6.fragment_header(ipv6.NH_DEST_OPTS, 0, True, 10)  # a first fragment cut inside its chain
    _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_FRAGMENT, frag + ipv6.options_header(ipv6.NH_ICMPV6)))
    mine = next(f for _t, who, f in wire.log if who == 0 and f[12:14] == b"\x86\xdd" and len(f) > 1200)
    too_big = icmpv6.build_error(icmpv6.TYPE_PACKET_TOO_BIG, 0, 1280, bytes(mine[14:]), B6, A6)
    _from_b(wire, a, ipv6.build(B6, A6, ipv6.NH_ICMPV6, too_big))
    wire.run(duration=1)
    return [frame for _t, _sender, frame in wire.log]


def write_pcap(frames: list[bytes], path: Path) -> None:
    writer = PcapWriter(str(path))
    for i, frame in enumerate(frames):
        writer.write(frame, timestamp_ns=1_000_000_000 * 1000 + i * 1000)
    writer.close()


def read_pcap(path: Path) -> list[bytes]:
    """Frames of a pcap (micro- or nanosecond), read with dpkt: an independent reader of our writer."""
    with open(path, "rb") as fh:
        return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(fh)]


@functools.lru_cache(maxsize=None)
def corpus() -> tuple[bytes, ...]:
    """The recorded session, through a pcap file and back, plus any captures in PYSTACK_FUZZ_PCAP."""
    with tempfile.TemporaryDirectory(prefix="pystack-fuzz-") as tmp:
        path = Path(tmp) / "session.pcap"
        frames = record_session()
        write_pcap(frames, path)
        loaded = read_pcap(path)
    assert loaded == frames, "the pcap did not round-trip"
    for extra in filter(None, os.environ.get("PYSTACK_FUZZ_PCAP", "").split(":")):
        loaded += read_pcap(Path(extra))
    return tuple(loaded)


@functools.lru_cache(maxsize=None)
def corpus6() -> tuple[bytes, ...]:
    """The IPv6 session, through a pcap file and back (see :func:`corpus`)."""
    with tempfile.TemporaryDirectory(prefix="pystack-fuzz6-") as tmp:
        path = Path(tmp) / "session6.pcap"
        frames = record_session6()
        write_pcap(frames, path)
        loaded = read_pcap(path)
    assert loaded == frames, "the pcap did not round-trip"
    return tuple(loaded)


def examples(default: int) -> int:
    """How many examples a fuzz test runs: ``default``, scaled by PYSTACK_FUZZ_EXAMPLES (the number of
    hypothesis examples; the main suite's default is 100)."""
    wanted = int(os.environ.get("PYSTACK_FUZZ_EXAMPLES", "100"))
    return max(1, default * wanted // 100)
