"""Malformed and hostile IPv6 written into the kernel side of the TAP: pystack drops and counts each frame by
reason, its tables stay at their bounds through floods of router advertisements and neighbour
solicitations, and the kernel's ``ping -6`` is answered during the spray and after it.

The frames are built here with struct (the RFC 1071 checksum of pystack_lab.reference over RFC 8200 8.1's
pseudo-header), independently of pystack's wire code, and written with an AF_PACKET socket bound to pst0
inside the test's namespace, in batches closed by a barrier (an echo request whose reply proves pystack has
read everything before it), as tests/integration/test_malformed.py does for IPv4.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable

import pytest

from pystack_lab import lab
from pystack_lab.reference import ref_checksum

pytestmark = pytest.mark.integration

ETH_IPV6 = 0x86DD
NH_HOP_BY_HOP, NH_TCP, NH_ROUTING, NH_FRAGMENT, NH_ICMPV6, NH_DEST_OPTS = 0, 6, 43, 44, 58, 60
HOST6 = socket.inet_pton(socket.AF_INET6, lab.HOST_IP6)
STACK6 = socket.inet_pton(socket.AF_INET6, lab.STACK_IP6)
ALL_NODES = socket.inet_pton(socket.AF_INET6, "ff02::1")
STACK_GROUP = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:2")  # pystack's solicited-node group
MAC = "02:00:00:00:00:02"
BATCH = 250
BARRIER_ID = 0xB6B6

# Kind -> (the drop reason pystack must count for each unit of that kind, units). A unit is one frame, but
# for the overlapping fragments: a pair, which earns one drop (RFC 5722, the whole packet goes).
PLAN: dict[str, tuple[str, int]] = {
    "truncated_header": ("ipv6.truncated", 600),
    "payload_beyond_frame": ("ipv6.truncated", 600),
    "bad_version": ("ipv6.bad_version", 300),
    "long_chain": ("ipv6.chain_too_long", 500),
    "looping_chain": ("ipv6.chain_too_long", 500),
    "hop_by_hop_again": ("ipv6.hop_by_hop_not_first", 300),
    "routing_type0": ("ipv6.routing_type0", 500),
    "unknown_next_header": ("ipv6.unknown_next_header", 300),
    "overlapping_fragments": ("ipv6.frag_overlap", 400),
    "tiny_first_fragment": ("ipv6.frag_incomplete_chain", 500),
    "fragment_bad_length": ("ipv6.frag_bad_length", 300),
    "nd_hop_limit_below_255": ("ndisc.bad_hop_limit", 600),
    "ra_zero_length_option": ("ndisc.bad_option_length", 300),
    "ra_not_link_local": ("ndisc.source_not_link_local", 300),
    "ra_bad_code": ("ndisc.bad_code", 200),
    "ra_truncated": ("ndisc.truncated", 200),
    "ns_for_random_target": ("ndisc.ns_not_for_us", 1500),
}
RA_FLOOD = 100
"""Routers, each advertising PREFIXES_PER_RA prefixes of its own (4000 in all)."""
PREFIXES_PER_RA = 40
NS_FLOOD = 2000
"""Neighbour solicitations for pystack's address, each from a random source with its own MAC."""
BOUNDS = {"max_onlink_prefixes": 16, "max_default_routers": 8, "max_addresses": 16, "neighbour_cache_size": 512}
"""pystack's Ipv6Config defaults the floods push past."""


def addr(value: int) -> bytes:
    return value.to_bytes(16, "big")


def random_global(rng: random.Random) -> bytes:
    """An address in 2001:db8::/64, the TAP's on-link prefix, that is neither side's."""
    return addr(0x2001_0DB8 << 96 | rng.randrange(0x100, 2**64))


def ipv6(src: bytes, dst: bytes, nh: int, payload: bytes, *, hop_limit: int = 64, version: int = 6,
         length: int | None = None) -> bytes:
    length = len(payload) if length is None else length
    return struct.pack("!IHBB", version << 28, length, nh, hop_limit) + src + dst + payload


def icmp6(src: bytes, dst: bytes, mtype: int, code: int, rest: bytes, body: bytes = b"") -> bytes:
    """An ICMPv6 message with its checksum over the pseudo-header (RFC 4443 2.3)."""
    msg = struct.pack("!BBH", mtype, code, 0) + rest + body
    pseudo = src + dst + struct.pack("!IxxxB", len(msg), NH_ICMPV6)
    return msg[:2] + struct.pack("!H", ref_checksum(pseudo + msg)) + msg[4:]


def echo(src: bytes, dst: bytes, ident: int, seq: int, data: bytes) -> bytes:
    return icmp6(src, dst, 128, 0, struct.pack("!HH", ident, seq), data)


def options_header(nh: int, body: bytes = b"") -> bytes:
    """A hop-by-hop or destination options header, padded with PadN (RFC 8200 4.2)."""
    pad = -(2 + len(body)) % 8
    if pad == 1:
        body += b"\x00"
    elif pad:
        body += bytes((1, pad - 2)) + bytes(pad - 2)
    return bytes((nh, (2 + len(body)) // 8 - 1)) + body


def routing_header(nh: int, rtype: int, segments_left: int, address: bytes) -> bytes:
    return bytes((nh, 2, rtype, segments_left)) + bytes(4) + address


def fragment_header(nh: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", nh, 0, offset | more, ident)


def prefix_option(prefix: bytes) -> bytes:
    """Prefix information, on-link and autonomous, lifetimes of an hour (RFC 4861 4.6.2)."""
    return struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 3600, 1800, 0) + prefix


class Forge:
    """The malformed frames of each kind, as from the kernel side of the TAP (its MAC and 2001:db8::1)
    unless the kind needs a router or a stranger."""

    def __init__(self, rng: random.Random, stack_mac: bytes, host_mac: bytes) -> None:
        self.rng, self.stack_mac, self.host_mac = rng, stack_mac, host_mac
        self.ident = rng.getrandbits(32)
        self.prefixes_given = 0

    def eth(self, payload: bytes, dst: bytes | None = None, src_mac: bytes | None = None) -> bytes:
        return (dst or self.stack_mac) + (src_mac or self.host_mac) + struct.pack("!H", ETH_IPV6) + payload

    def group_eth(self, group: bytes, payload: bytes, src_mac: bytes | None = None) -> bytes:
        return self.eth(payload, b"\x33\x33" + group[12:], src_mac)

    def stranger_mac(self) -> bytes:
        return b"\x02" + self.rng.randbytes(5)

    def link_local(self) -> bytes:
        return addr(0xFE80 << 112 | self.rng.getrandbits(64))

    def next_ident(self) -> int:
        self.ident = (self.ident + 1) & 0xFFFFFFFF
        return self.ident

    def data(self, low: int = 16, high: int = 256) -> bytes:
        return self.rng.randbytes(self.rng.randint(low, high))

    def echo(self) -> bytes:
        return echo(HOST6, STACK6, self.rng.randrange(0x10000), self.rng.randrange(0x10000), self.data())

    def ra(self, src: bytes, options: bytes, *, hop_limit: int = 255, code: int = 0, lifetime: int = 1800,
           body: bytes | None = None) -> bytes:
        rest = struct.pack("!BBH", 64, 0, lifetime)
        msg = icmp6(src, ALL_NODES, 134, code, rest, struct.pack("!II", 0, 0) + options if body is None else body)
        return self.group_eth(ALL_NODES, ipv6(src, ALL_NODES, NH_ICMPV6, msg, hop_limit=hop_limit), self.stranger_mac())

    def make(self, kind: str) -> list[bytes]:
        rng = self.rng
        if kind == "truncated_header":
            return [self.eth(ipv6(HOST6, STACK6, NH_ICMPV6, self.echo()))[:rng.randint(14, 14 + 39)]]
        if kind == "payload_beyond_frame":
            payload = self.echo()
            return [self.eth(ipv6(HOST6, STACK6, NH_ICMPV6, payload, length=rng.randint(len(payload) + 1, 0xFFFF)))]
        if kind == "bad_version":
            version = rng.choice([v for v in range(16) if v != 6])
            return [self.eth(ipv6(HOST6, STACK6, NH_ICMPV6, self.echo(), version=version))]
        if kind == "long_chain":  # 9 to 40 destination options headers: past the bound of 8 (RFC 8504 5.3)
            count = rng.randint(9, 40)
            chain = b"".join(options_header(NH_DEST_OPTS if i < count - 1 else NH_ICMPV6) for i in range(count))
            return [self.eth(ipv6(HOST6, STACK6, NH_DEST_OPTS, chain + self.echo()))]
        if kind == "looping_chain":  # routing headers naming routing headers, Segments Left 0 (each skipped)
            count = rng.randint(12, 40)
            chain = b"".join(routing_header(NH_ROUTING if i < count - 1 else NH_ICMPV6, rng.choice((0, 2, 4)), 0,
                                            HOST6) for i in range(count))
            return [self.eth(ipv6(HOST6, STACK6, NH_ROUTING, chain + self.echo()))]
        if kind == "hop_by_hop_again":  # a second hop-by-hop header (RFC 8200 4.1: only right after the header)
            chain = options_header(NH_HOP_BY_HOP) + options_header(NH_ICMPV6)
            return [self.eth(ipv6(HOST6, STACK6, NH_HOP_BY_HOP, chain + self.echo()))]
        if kind == "routing_type0":  # RFC 5095: refused, whatever it lists
            chain = routing_header(NH_ICMPV6, 0, rng.randint(1, 255), random_global(rng))
            return [self.eth(ipv6(HOST6, STACK6, NH_ROUTING, chain + self.echo()))]
        if kind == "unknown_next_header":
            nh = rng.choice((253, 254, 143, 139, 140, 100))
            return [self.eth(ipv6(HOST6, STACK6, nh, self.data()))]
        if kind == "overlapping_fragments":  # the second starts 8 bytes into the first's 16 (RFC 5722)
            ident, request = self.next_ident(), self.echo()
            first = fragment_header(NH_ICMPV6, 0, True, ident) + request[:16]
            second = fragment_header(NH_ICMPV6, 8, False, ident) + request[8:24]
            return [self.eth(ipv6(HOST6, STACK6, NH_FRAGMENT, part)) for part in (first, second)]
        if kind == "tiny_first_fragment":  # 8 bytes of a TCP header that needs 20 (RFC 7112)
            frag = fragment_header(NH_TCP, 0, True, self.next_ident()) + rng.randbytes(8)
            return [self.eth(ipv6(HOST6, STACK6, NH_FRAGMENT, frag))]
        if kind == "fragment_bad_length":  # more fragments follow, but this one is not a multiple of 8 long
            request = self.echo()
            cut = rng.choice([n for n in range(9, min(len(request), 64)) if n % 8])
            frag = fragment_header(NH_ICMPV6, 0, True, self.next_ident()) + request[:cut]
            return [self.eth(ipv6(HOST6, STACK6, NH_FRAGMENT, frag))]
        if kind == "nd_hop_limit_below_255":  # RFC 4861 7.1: proof it came from off the link
            hop_limit = rng.randint(0, 254)
            if rng.random() < 0.5:
                ns = icmp6(HOST6, STACK_GROUP, 135, 0, bytes(4), STACK6 + bytes((1, 1)) + self.host_mac)
                return [self.group_eth(STACK_GROUP, ipv6(HOST6, STACK_GROUP, NH_ICMPV6, ns, hop_limit=hop_limit))]
            return [self.ra(self.link_local(), b"", hop_limit=hop_limit)]
        if kind == "ra_zero_length_option":
            return [self.ra(self.link_local(), bytes((rng.randrange(1, 40), 0)) + bytes(6))]
        if kind == "ra_not_link_local":  # RFC 4861 6.1.2: a router speaks from its link-local address
            return [self.ra(random_global(rng), b"")]
        if kind == "ra_bad_code":
            return [self.ra(self.link_local(), b"", code=rng.randint(1, 255))]
        if kind == "ra_truncated":  # fewer than an advertisement's 16 bytes
            src = self.link_local()
            return [self.ra(src, b"", body=rng.randbytes(rng.randint(0, 7)))]
        if kind == "ns_for_random_target":  # to the group pystack listens to, for an address it does not have
            target = random_global(rng)
            ns = icmp6(HOST6, STACK_GROUP, 135, 0, bytes(4), target + bytes((1, 1)) + self.host_mac)
            return [self.group_eth(STACK_GROUP, ipv6(HOST6, STACK_GROUP, NH_ICMPV6, ns, hop_limit=255))]
        if kind == "ra_flood":  # a router of its own with PREFIXES_PER_RA prefixes of its own, 2001:db8:1:n::/64
            first, self.prefixes_given = self.prefixes_given, self.prefixes_given + PREFIXES_PER_RA
            prefixes = b"".join(prefix_option(addr((0x2001_0DB8_0001 << 16 | n) << 64))
                                for n in range(first, first + PREFIXES_PER_RA))
            mac = self.stranger_mac()
            src = self.link_local()
            msg = icmp6(src, ALL_NODES, 134, 0, struct.pack("!BBH", 64, 0, 1800),
                        struct.pack("!II", 0, 0) + bytes((1, 1)) + mac + prefixes)
            return [self.group_eth(ALL_NODES, ipv6(src, ALL_NODES, NH_ICMPV6, msg, hop_limit=255), mac)]
        if kind == "ns_flood":  # a stranger asks for pystack's address: answered, and remembered
            src, mac = random_global(rng), self.stranger_mac()
            ns = icmp6(src, STACK_GROUP, 135, 0, bytes(4), STACK6 + bytes((1, 1)) + mac)
            return [self.group_eth(STACK_GROUP, ipv6(src, STACK_GROUP, NH_ICMPV6, ns, hop_limit=255), mac)]
        raise AssertionError(kind)

    def burst(self) -> list[list[bytes]]:
        """Every unit of the plan and of the floods, in random order."""
        units = [self.make(kind) for kind, (_reason, count) in PLAN.items() for _ in range(count)]
        units += [self.make("ra_flood") for _ in range(RA_FLOOD)]
        units += [self.make("ns_flood") for _ in range(NS_FLOOD)]
        self.rng.shuffle(units)
        return units


def barrier(sock: socket.socket, forge: Forge, seq: int, timeout: float = 10.0) -> None:
    """An echo request to 2001:db8::2 and pystack's reply: everything written before it has been read."""
    request = echo(HOST6, STACK6, BARRIER_ID, seq, b"barrier".ljust(32, b"."))
    sock.send(forge.eth(ipv6(HOST6, STACK6, NH_ICMPV6, request)))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame = sock.recv(65535)
        except TimeoutError:
            break
        if (len(frame) >= 62 and frame[12:14] == b"\x86\xdd" and frame[20] == NH_ICMPV6 and frame[22:38] == STACK6
                and frame[54] == 129 and struct.unpack_from("!HH", frame, 58) == (BARRIER_ID, seq)):
            return
    raise AssertionError(f"no reply to barrier echo {seq} within {timeout} s")


def expected_drops() -> Counter[str]:
    out: Counter[str] = Counter()
    for reason, units in PLAN.values():
        out[reason] += units
    return out


def test_malformed_ipv6_is_dropped_and_counted_and_ping_keeps_answering(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None]) -> None:
    require_tools("ping")
    daemon = start_stack("--echo", "--mac", MAC, "--address6", lab.STACK_ADDRESS6,
                         "--host-address6", lab.HOST_ADDRESS6, quiet_ipv6=False)
    daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured")
    ns = daemon.ns
    seed = int(os.environ.get("PYSTACK_MALFORMED_SEED", secrets.randbits(32)))
    warmup = lab.ping(ns, lab.STACK_IP6, count=2, interval=0.1, extra=["-6"])
    assert warmup["received"] == 2, warmup["output"] + "\n" + daemon.stderr()
    stack_mac = ns.neighbour_mac(lab.STACK_IP6)
    assert stack_mac == bytes.fromhex(MAC.replace(":", "")), "the kernel did not resolve pystack's address"
    forge = Forge(random.Random(seed), stack_mac, ns.mac(lab.TAP))
    units = forge.burst()
    tx_dropped_before = ns.link_stats(lab.TAP)["tx_dropped"]

    # ping -6 all along: stopped with SIGINT (by its PID) once the spray is over, so it prints its counts.
    during = ns.spawn(["ping", "-6", "-n", "-i", "0.1", "-W", "5", lab.STACK_IP6], stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, text=True)
    sock = ns.packet_socket(lab.TAP)
    with sock:
        in_batch, barriers, frames = 0, 0, 0
        for unit in units:
            for frame in unit:
                sock.send(frame)
            in_batch += len(unit)
            frames += len(unit)
            if in_batch >= BATCH:
                barriers += 1
                barrier(sock, forge, barriers)
                in_batch = 0
        barriers += 1
        barrier(sock, forge, barriers)
    time.sleep(1.0)  # the last requests of ping's: their replies
    during.send_signal(signal.SIGINT)
    output, _ = during.communicate(timeout=10)
    pinged = lab.parse_ping(output)
    assert ns.link_stats(lab.TAP)["tx_dropped"] == tx_dropped_before, "the TAP queue overflowed: pacing bug"
    assert pinged["transmitted"] >= 5 and pinged["received"] >= pinged["transmitted"] - 1, \
        f"seed {seed}: ping -6 during the spray\n{output}\n{daemon.stderr()}"

    after = lab.ping(ns, lab.STACK_IP6, count=5, interval=0.2, extra=["-6"])
    assert (after["transmitted"], after["received"]) == (5, 5), after["output"] + "\n" + daemon.stderr()
    counters = daemon.stop()
    assert daemon.returncode == 0, daemon.stderr()

    short = {reason: (counters.get(f"drop.{reason}", 0), wanted) for reason, wanted in expected_drops().items()
             if counters.get(f"drop.{reason}", 0) < wanted}
    assert not short, f"seed {seed}: drops counted below expectation (counted, expected): {short}\n{counters}"
    prefixes = RA_FLOOD * PREFIXES_PER_RA
    floods = {
        "drop.ndisc.prefix_list_full": prefixes - BOUNDS["max_onlink_prefixes"],
        "drop.ipv6.address_table_full": prefixes - BOUNDS["max_addresses"],
        "drop.ndisc.router_list_full": RA_FLOOD - BOUNDS["max_default_routers"],
        "ndisc.entry_evicted": NS_FLOOD - BOUNDS["neighbour_cache_size"],
        "ndisc.ra_received": RA_FLOOD,
        "ndisc.ns_received": NS_FLOOD,
    }
    short = {k: (counters.get(k, 0), v) for k, v in floods.items() if counters.get(k, 0) < v}
    assert not short, f"seed {seed}: the floods were not held at the bounds (counted, expected): {short}\n{counters}"
    assert counters.get("drop.internal_error", 0) == 0, f"seed {seed}: {counters}\n{daemon.stderr()}"
    assert counters["frames_in"] >= frames + barriers, counters
    assert counters.get("icmpv6.echo_replies_sent", 0) >= barriers + pinged["received"] + 5 + 2, counters
