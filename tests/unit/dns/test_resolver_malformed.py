"""Malformed answers that carry the right ID, from the right server: dropped and counted, never raised."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystack.wire import dns

from .fake_dns import NS1, WWW, FakeDns, Net

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pending(name: str = "web.example.test"):
    net = Net({NS1: FakeDns(mode="silent")})
    q = net.resolve(name, run=False)
    sent = net.sent[0][1]
    return net, q, FakeDns().answer(sent.payload), sent.src_port


def _feed(net: Net, payload: bytes, port: int) -> None:
    before = net.counters.total_drops()
    assert net.resolver.receive(NS1, 53, payload, net.now, dst_port=port) == []
    assert net.counters.total_drops() == before + 1


def test_truncated_at_every_offset_is_dropped_and_counted() -> None:
    net, q, good, port = _pending()
    for cut in range(len(good)):
        _feed(net, good[:cut], port)
        assert not q.done, f"cut at {cut} was taken as an answer"
    assert set(net.counters.drops()) <= {"dns.truncated"}
    net.resolver.receive(NS1, 53, good, net.now, dst_port=port)
    assert q.result() == [WWW]


def _answer_with_owner(ident: int, owner: bytes) -> bytes:
    """A response to our question for web.example.test whose one answer's owner name is ``owner``."""
    question = b"\x03web\x07example\x04test\x00\x00\x01\x00\x01"
    return (struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question
            + owner + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + WWW.to_bytes(4, "big"))


def test_compression_loops_and_bad_labels_are_dropped_and_counted() -> None:
    net, q, good, port = _pending()
    ident = dns.parse(good).id
    at = 12 + 22  # offset of the answer's owner name
    cases = {
        "dns.bad_pointer": [b"\xc0" + bytes([at]),  # to itself
                            b"\x01a\xc0" + bytes([at]),  # back into its own labels: a loop
                            b"\xc0\xff",  # forward
                            b"\xc0\x05"],  # into the header
        "dns.bad_label_type": [b"\x41a\x00", b"\x80\x00"],
        "dns.truncated": [b"\x3f" + b"a" * 10],
    }
    for reason, owners in cases.items():
        for owner in owners:
            net.counters.clear()
            _feed(net, _answer_with_owner(ident, owner), port)
            assert net.counters.drops() == {reason: 1}, (owner, net.counters.drops())
    assert not q.done
    # The same answer with a proper pointer to the question's name is accepted.
    net.resolver.receive(NS1, 53, _answer_with_owner(ident, b"\xc0\x0c"), net.now, dst_port=port)
    assert q.result() == [WWW]


@given(st.binary(max_size=300))
@FUZZ
def test_random_bodies_behind_the_right_id_never_raise(body: bytes) -> None:
    net, q, good, port = _pending()
    before = net.counters.total_drops()
    net.resolver.receive(NS1, 53, good[:2] + body, net.now, dst_port=port)
    assert net.counters.total_drops() == before + 1 or q.done
    assert net.counters["drop.internal_error"] == 0


@given(st.data())
@FUZZ
def test_mutated_answers_never_raise(data: st.DataObject) -> None:
    net, q, good, port = _pending()
    raw = bytearray(good)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        raw[data.draw(st.integers(min_value=2, max_value=len(raw) - 1))] = data.draw(st.integers(0, 255))
    before = net.counters.total_drops()
    out = net.resolver.receive(NS1, 53, bytes(raw), net.now, dst_port=port)
    # Dropped and counted, or taken as an answer (the query is done, or asks onward for a CNAME target).
    assert net.counters.total_drops() == before + 1 or q.done or out
    assert net.counters["drop.internal_error"] == 0
