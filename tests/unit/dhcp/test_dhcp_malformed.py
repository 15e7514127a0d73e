"""Malformed DHCP replies fed to the client in every state that listens: dropped and counted, never raised."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystack.dhcp import State
from pystack.wire import dhcp

from .fake_server import FakeServer
from .harness import Harness

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])


def _selecting() -> tuple[Harness, bytes]:
    """A client waiting for offers, and the offer it would accept."""
    server = FakeServer(ignore_discovers=True, domain=b"a-rather-long-domain.example.test")
    h = Harness(server)
    h.run(duration=0)
    discover = h.messages(dhcp.DISCOVER)[0][2]
    return h, server.reply(discover, dhcp.OFFER)


def _renewing() -> tuple[Harness, bytes]:
    server = FakeServer()
    h = Harness(server)
    h.run(until=lambda: h.client.state is State.BOUND)
    server.ignore_requests = True
    h.run(until=lambda: h.client.state is State.RENEWING)
    renew = h.messages(dhcp.REQUEST)[-1][2]
    return h, FakeServer().reply(renew, dhcp.ACK)


def _unpadded_end(raw: bytes) -> int:
    """Offset just past the 'end' option (the builder pads after it to 300 octets)."""
    msg = dhcp.parse(raw)
    return dhcp.MIN_LEN + sum(2 + len(v) for v in msg.options.values()) + 1


@pytest.mark.parametrize("setup", [_selecting, _renewing], ids=["selecting", "renewing"])
def test_truncated_at_every_offset_is_dropped_and_counted(setup) -> None:
    h, good = setup()
    state = h.client.state
    for cut in range(_unpadded_end(good)):
        before = h.counters.total_drops()
        h.client.receive(good[:cut], h.now)
        assert h.counters.total_drops() == before + 1, f"cut at {cut} not counted"
        assert h.client.state is state and h.client.datagrams_to_send() == [] and h.client.events() == []
    drops = h.counters.drops()
    assert set(drops) <= {"dhcp.truncated", "dhcp.bad_option", "dhcp.no_end_option"}
    h.client.receive(good, h.now)  # and the whole message still works afterwards
    assert h.client.state is not state


def _with_area(good: bytes, area: bytes) -> bytes:
    return good[:dhcp.MIN_LEN] + area


@pytest.mark.parametrize("area,reason", [
    (b"\x35\x01\x02\x01\x03\xff\xff\xff\xff", "dhcp.bad_option"),  # mask of 3 octets
    (b"\x35\x01\x02\x36\x05\xc0\x00\x02\x01\x00\xff", "dhcp.bad_option"),  # server id of 5
    (b"\x35\x02\x02\x02\xff", "dhcp.bad_option"),  # message type of 2
    (b"\x35\x01\x02\x03\x06" + bytes(6) + b"\xff", "dhcp.bad_option"),  # router list not a multiple of 4
    (b"\x35\x01\x02\x33\x08" + bytes(4) + b"\xff", "dhcp.bad_option"),  # lease time runs past the end
    (b"\x35\x01\x02\x34\x01\x01\xff", "dhcp.no_end_option"),  # overload into a 'file' with no end
    (b"\x35\x01\x02", "dhcp.no_end_option"),
    (b"\x35\x01\x02\x00\x00\x00\x06", "dhcp.bad_option"),  # code with no length byte
])
def test_bogus_option_lengths_are_dropped_and_counted(area: bytes, reason: str) -> None:
    h, good = _selecting()
    h.client.receive(_with_area(good, area), h.now)
    assert h.counters.drops() == {reason: 1}
    assert h.client.state is State.SELECTING and h.client.datagrams_to_send() == []


@given(st.binary(max_size=600))
@FUZZ
def test_random_bytes_never_raise(data: bytes) -> None:
    h, _good = _selecting()
    h.client.receive(data, h.now)
    assert h.counters.total_drops() == 1  # random bytes are never a valid offer for our xid and MAC
    assert h.counters["drop.internal_error"] == 0


@given(st.data())
@FUZZ
def test_mutated_offers_never_raise(data: st.DataObject) -> None:
    h, good = _selecting()
    raw = bytearray(good[:_unpadded_end(good)])
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        offset = data.draw(st.integers(min_value=dhcp.MIN_LEN - 4, max_value=len(raw) - 1))
        raw[offset] = data.draw(st.integers(min_value=0, max_value=255))
    h.client.receive(bytes(raw), h.now)
    # Either it was dropped and counted, or it was a well-formed offer and the client moved on.
    assert (h.counters.total_drops() == 1) != (h.client.state is State.REQUESTING)
    assert h.counters["drop.internal_error"] == 0
