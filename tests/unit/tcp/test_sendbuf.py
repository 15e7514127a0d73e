"""The send buffer: bounded writes, acknowledgements from the front (the FIN one past the data), and a
capacity that follows the congestion window up to its ceiling."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pystack.tcp.sendbuf import SendBuffer


def test_write_takes_what_fits() -> None:
    buf = SendBuffer(10, 100)
    assert buf.write(b"abcdefgh") == 8 and buf.space() == 2
    assert buf.write(b"xyz") == 2 and buf.space() == 0
    assert buf.write(b"more") == 0
    assert bytes(buf.view()) == b"abcdefghxy" and len(buf) == 10


def test_ack_beyond_the_data_is_the_fin() -> None:
    buf = SendBuffer(10, 100)
    buf.write(b"abc")
    buf.fin = True
    assert buf.acknowledge(2) == 2 and not buf.fin_acked and bytes(buf.view()) == b"c"
    assert buf.acknowledge(2) == 1 and buf.fin_acked and len(buf) == 0


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=60))
def test_acknowledged_bytes_leave_from_the_front(steps: list[tuple[int, int]]) -> None:
    buf = SendBuffer(120, 120)
    model = bytearray()
    n = 0
    for write, ack in steps:
        data = bytes((n + i) & 0xFF for i in range(write))
        n += write
        took = buf.write(data)
        assert took == min(write, 120 - len(model))
        model += data[:took]
        ack = min(ack, len(model))
        assert buf.acknowledge(ack) == ack
        del model[:ack]
        assert bytes(buf.view()) == bytes(model) and len(buf) == len(model)
        assert len(buf.data) <= 2 * buf.cap  # acknowledged bytes kept in front: never more than are left


def test_capacity_follows_two_windows_up_to_the_ceiling() -> None:
    buf = SendBuffer(1000, 5000)
    buf.follow(400)
    assert buf.cap == 1000  # never shrinks
    buf.follow(1500)
    assert buf.cap == 3000
    buf.follow(4000)
    assert buf.cap == 5000


def test_acknowledged_count_goes_past_4_gib_without_wrapping() -> None:
    """``ss -i``'s bytes_acked (pystack.tcp.info) is this count: 64-bit in Linux (tcpi_bytes_acked), so it
    must not wrap with the 32-bit sequence space."""
    chunk = bytes(16 << 20)
    buf = SendBuffer(len(chunk), len(chunk))
    rounds = (1 << 32) // len(chunk) + 1
    for _ in range(rounds):
        assert buf.write(chunk) == len(chunk)
        buf.acknowledge(len(chunk))
    buf.fin = True
    buf.acknowledge(1)
    assert buf.acked == rounds * len(chunk) + 1 > 1 << 32
