"""IPv6 reassembly (RFC 8200 4.5): a Linux kernel's fragments and our own in any order, duplicates,
overlaps (RFC 5722), the timeout's time-exceeded quote, and every bound with a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystack.counters import Counters
from pystack.ip6.config import Ipv6Config
from pystack.ip6.reassembly import Reassembler
from pystack.wire import icmpv6, ipv6
from pystack.wire.errors import WireError
from wire.linux_ipv6 import ANSWERS, ECHO_3000_FRAGMENTS

SRC = ipv6.addr_to_int("2001:db8::a")
DST = ipv6.addr_to_int("2001:db8::1")
PROTO = 253  # RFC 3692 experimentation: an upper layer walk() is told about below


def fragments(payload: bytes, mtu: int = 1280, ident: int = 7, src: int = SRC) -> list[bytes]:
    return ipv6.fragment(src, DST, PROTO, payload, mtu, ident=ident)


def fragment(offset: int, more: bool, data: bytes, ident: int = 7, per_fragment: bytes = b"") -> bytes:
    """A fragment by hand; ``per_fragment`` is a destination options header put before the fragment header."""
    frag = ipv6.fragment_header(PROTO, offset, more, ident)
    if per_fragment:
        return ipv6.build(SRC, DST, ipv6.NH_DEST_OPTS, per_fragment + frag + data)
    return ipv6.build(SRC, DST, ipv6.NH_FRAGMENT, frag + data)


def add(r: Reassembler, raw: bytes, now: float = 0.0) -> bytes | None:
    """What the layer will do: a fragment goes to reassembly, a whole packet (or atomic fragment) through."""
    pkt = ipv6.parse(raw)
    chain = ipv6.walk(pkt, upper_layers=frozenset({PROTO}))
    return r.add(pkt, chain, now) if chain.fragment else raw


def feed(r: Reassembler, frags: list[bytes], now: float = 0.0) -> bytes | None:
    result = None
    for raw in frags:
        got = add(r, raw, now)
        if got is not None:
            assert result is None, "a packet completed twice"
            result = got
    return result


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (2, 0, 1)])
def test_a_linux_fragmented_ping_reassembles_in_any_order(order: tuple[int, int, int]) -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(), counters)
    packets = [bytes.fromhex(ECHO_3000_FRAGMENTS[i]) for i in order]
    results = [r.add(p, ipv6.walk(p), 0.0) for p in map(ipv6.parse, packets)]
    assert results[:2] == [None, None] and results[2] is not None
    whole = ipv6.parse(results[2])
    assert whole.next_header == ipv6.NH_ICMPV6 and len(whole.payload) == 8 + 3000
    first = ipv6.parse(bytes.fromhex(ECHO_3000_FRAGMENTS[0]))
    assert (whole.src, whole.dst, whole.flow_label, whole.hop_limit) == (first.src, first.dst, first.flow_label, 64)
    chain = ipv6.walk(whole, reassembled=True)
    msg = icmpv6.parse(whole.datagram[chain.offset:], whole.src, whole.dst)  # the checksum covers all 3008 bytes
    assert msg.type == icmpv6.TYPE_ECHO_REQUEST
    assert counters["ipv6.reassembled"] == 1 and r.bytes_held == 0 and not r.packets


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1233, 20000), mtu=st.sampled_from([1280, 1500, 9000]), seed=st.integers(0, 2**32))
def test_our_fragments_reassemble_in_any_order(size: int, mtu: int, seed: int) -> None:
    payload = random.Random(seed).randbytes(size)
    frags = fragments(payload, mtu)
    random.Random(seed).shuffle(frags)
    r = Reassembler(Ipv6Config(), Counters())
    assert feed(r, frags) == ipv6.build(SRC, DST, PROTO, payload)
    assert r.bytes_held == 0 and not r.packets


def test_per_fragment_headers_come_from_the_first_fragment_and_lose_the_fragment_header() -> None:
    dest = ipv6.options_header(ipv6.NH_FRAGMENT, [(0x1E, b"first")])
    r = Reassembler(Ipv6Config(), Counters())
    add(r, fragment(8, False, b"B" * 8, per_fragment=ipv6.options_header(ipv6.NH_FRAGMENT, [(0x1E, b"later")])))
    whole = add(r, fragment(0, True, b"A" * 8, per_fragment=dest))
    assert whole == ipv6.build(SRC, DST, ipv6.NH_DEST_OPTS, ipv6.options_header(PROTO, [(0x1E, b"first")])
                               + b"A" * 8 + b"B" * 8)


def test_exact_duplicate_is_dropped_and_the_packet_still_completes() -> None:
    frags = fragments(bytes(3000))
    counters = Counters()
    r = Reassembler(Ipv6Config(), counters)
    assert feed(r, [frags[0], frags[0], frags[1], frags[1], frags[2]]) == ipv6.build(SRC, DST, PROTO, bytes(3000))
    assert counters["drop.ipv6.frag_duplicate"] == 2


@pytest.mark.parametrize(("held", "new"), [
    ([(0, 8)], (0, 16)),
    ([(0, 16)], (8, 8)),
    ([(0, 16)], (8, 16)),
    ([(0, 16), (24, 16)], (24, 8)),
    ([(8, 8)], (0, 24)),
], ids=["same_start_longer", "inside", "across_the_end", "same_start_shorter", "around"])
def test_any_overlap_abandons_the_packet(held: list[tuple[int, int]], new: tuple[int, int]) -> None:
    # RFC 5722 (and RFC 8200 4.5): no piece of an overlapped packet is ever delivered.
    counters = Counters()
    r = Reassembler(Ipv6Config(), counters)
    for offset, size in held:
        assert add(r, fragment(offset, True, b"a" * size)) is None
    assert add(r, fragment(new[0], True, b"x" * new[1])) is None
    assert counters["drop.ipv6.frag_overlap"] == 1 and not r.packets and r.bytes_held == 0
    # What comes after starts afresh and cannot complete from the abandoned pieces.
    assert add(r, fragment(40, False, b"z" * 8)) is None
    assert len(r.packets) == 1


def test_fragment_without_data_discards_its_packet() -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(), counters)
    add(r, fragment(0, True, bytes(8)))
    assert add(r, fragment(8, True, b"")) is None and not r.packets
    assert add(r, fragment(16, False, b"")) is None
    assert counters["drop.ipv6.frag_empty"] == 2


@pytest.mark.parametrize("frags", [
    [(0, True, 8), (16, False, 8), (24, False, 8)],  # two different ends
    [(16, True, 16), (8, False, 8)],  # an end below data already held
    [(8, False, 16), (24, True, 16)],  # data past the known end
])
def test_inconsistent_ends_discard_the_packet(frags: list[tuple[int, bool, int]]) -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(), counters)
    assert feed(r, [fragment(o, m, bytes(n)) for o, m, n in frags]) is None
    assert counters["drop.ipv6.frag_inconsistent_end"] == 1


def test_packets_are_keyed_by_source_destination_and_identification() -> None:
    r = Reassembler(Ipv6Config(), Counters())
    a = fragments(bytes(2000), ident=1)
    b = fragments(b"\x01" * 2000, ident=2)
    c = fragments(b"\x02" * 2000, ident=1, src=SRC + 1)
    assert feed(r, [a[0], b[0], c[0]]) is None
    assert add(r, c[1]) == ipv6.build(SRC + 1, DST, PROTO, b"\x02" * 2000)
    assert add(r, b[1]) == ipv6.build(SRC, DST, PROTO, b"\x01" * 2000)
    assert add(r, a[1]) == ipv6.build(SRC, DST, PROTO, bytes(2000))


# --- the timeout (fake clock) ---------------------------------------------------------------------------


def test_timeout_returns_the_first_fragment_to_quote_and_forgets_the_rest() -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(reassembly_timeout=60.0), counters)
    first, second, _ = fragments(bytes(3000))
    add(r, first, now=10.0)
    add(r, fragments(bytes(3000), ident=9)[1], now=20.0)  # no first fragment: expires without an error
    assert r.next_deadline() == 70.0
    assert r.expire(69.9) == [] and len(r.packets) == 2
    assert r.expire(70.0) == [first]
    assert r.next_deadline() == 80.0 and r.expire(80.0) == []
    assert counters["drop.ipv6.frag_timeout"] == 2 and r.bytes_held == 0 and r.next_deadline() is None
    assert add(r, second, now=81.0) is None  # the expired packet's pieces are gone


def test_linux_times_out_what_we_time_out_and_quotes_the_same_fragment() -> None:
    invoking, answer = ANSWERS["fragment_timeout"]
    r = Reassembler(Ipv6Config(), Counters())
    pkt = ipv6.parse(bytes.fromhex(invoking))
    assert r.add(pkt, ipv6.walk(pkt), 0.0) is None
    (quote,) = r.expire(60.0)
    reply = ipv6.parse(bytes.fromhex(answer or ""))
    assert icmpv6.build_error(icmpv6.TYPE_TIME_EXCEEDED, icmpv6.CODE_REASSEMBLY_TIMEOUT, 0, quote, reply.src,
                              reply.dst) == bytes(reply.payload)


# --- bounds ----------------------------------------------------------------------------------------------


def test_packets_held_are_bounded_and_the_oldest_goes_first() -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(reassembly_max_datagrams=3), counters)
    firsts = [fragments(bytes(2000), ident=i) for i in range(4)]
    for i, frags in enumerate(firsts):
        add(r, frags[0], now=float(i))
    assert len(r.packets) == 3 and counters["drop.ipv6.frag_table_full"] == 1
    assert add(r, firsts[0][1]) is None  # the oldest was evicted
    assert add(r, firsts[3][1]) is not None


def test_bytes_held_are_bounded_and_the_oldest_goes_first() -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(reassembly_max_bytes=3000), counters)
    a = fragments(bytes(4000), ident=1)
    b = fragments(bytes(4000), ident=2)
    add(r, a[1])
    assert r.bytes_held == len(a[1]) - 48
    add(r, b[0])  # the whole first fragment is kept too
    assert counters["drop.ipv6.frag_no_memory"] == 1 and list(r.packets) == [(SRC, DST, 2)]
    assert r.bytes_held == (len(b[0]) - 48) + len(b[0]) <= 3000


def test_a_fragment_larger_than_the_whole_bound_is_refused() -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(reassembly_max_bytes=1000), counters)
    assert add(r, fragments(bytes(3000))[1]) is None
    assert counters["drop.ipv6.frag_no_memory"] == 1 and not r.packets and r.bytes_held == 0


def test_fragments_per_packet_are_bounded() -> None:
    # 8-byte fragments: the tiny-fragment flood of RFC 5722's attack, stopped at the bound.
    counters = Counters()
    r = Reassembler(Ipv6Config(reassembly_max_fragments=4), counters)
    for i in range(4):
        assert add(r, fragment(8 * i, True, bytes(8))) is None
    assert add(r, fragment(32, True, bytes(8))) is None
    assert counters["drop.ipv6.frag_too_many"] == 1 and not r.packets


def test_per_fragment_headers_that_push_the_packet_past_65535_drop_it() -> None:
    counters = Counters()
    r = Reassembler(Ipv6Config(), counters)
    big_dest = ipv6.options_header(ipv6.NH_FRAGMENT, [(0x1E, bytes(250))] * 4)
    assert add(r, fragment(0, True, bytes(64000), per_fragment=big_dest)) is None
    assert add(r, fragment(64000, False, bytes(1000))) is None
    assert counters["drop.ipv6.frag_too_big"] == 1 and not r.packets and r.bytes_held == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.booleans(), st.integers(0, 6),
                          st.floats(0, 200)), max_size=60))
def test_fuzzed_fragments_never_raise_and_the_books_balance(ops: list[tuple[int, int, bool, int, float]]) -> None:
    cfg = Ipv6Config(reassembly_max_datagrams=3, reassembly_max_bytes=600, reassembly_max_fragments=5)
    r = Reassembler(cfg, Counters())
    now = 0.0
    for ident, offset8, more, size8, dt in ops:
        now += dt
        r.expire(now)
        try:
            add(r, fragment(offset8 * 8, more, bytes(8 * size8 if more else 8 * size8 + 3), ident=ident), now)
        except WireError:
            pass  # walk() refused it (an incomplete first fragment): it never reaches reassembly
        assert r.bytes_held == sum(p.held for p in r.packets.values()) <= cfg.reassembly_max_bytes
        assert len(r.packets) <= cfg.reassembly_max_datagrams
        assert all(len(p.parts) <= cfg.reassembly_max_fragments for p in r.packets.values())
