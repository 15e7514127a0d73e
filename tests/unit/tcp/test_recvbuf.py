"""The receive buffer: reads from the front, the window it offers (receiver SWS avoidance, RFC 9293
3.8.6.2.2, and the scaling rounding of RFC 7323), the window-update rule, and auto-tuning."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pystack.tcp.recvbuf import ReceiveBuffer


def test_read_takes_from_the_front() -> None:
    rb = ReceiveBuffer(100, 1000)
    rb.data += b"abcdef"
    assert rb.read(4) == b"abcd" and rb.read(10) == b"ef" and not rb.data


@given(cap=st.integers(1, 1 << 22), held=st.integers(0, 1 << 22), cur=st.integers(0, 1 << 22),
       ws=st.integers(0, 14), smss=st.integers(536, 9000))
def test_the_offered_edge_never_moves_left_and_never_promises_room_it_lacks(
        cap: int, held: int, cur: int, ws: int, smss: int) -> None:
    rb = ReceiveBuffer(cap, 1000)
    rb.data += bytes(min(held, cap))
    field = rb.offer(cur, ws, smss)
    offered = field << ws
    assert 0 <= field <= 0xFFFF
    free = min(cap - len(rb.data), 0xFFFF << ws, cap)
    if cur <= cap + (1 << ws) and cur <= 0xFFFF << ws:
        # the edge holds (a stalled reader's excepted: it retracts by less than one unit)
        assert offered >= cur or cur - offered < (1 << ws)
    assert offered < max(free, cur if cur <= cap + (1 << ws) else 0) + (1 << ws)


def test_a_small_opening_is_not_offered_a_useful_one_is() -> None:
    rb = ReceiveBuffer(10000, 1000)
    rb.data += bytes(9000)
    assert rb.offer(1000, 0, 1460) == 1000  # 1000 free, 1000 offered: nothing new
    rb.read(500)
    assert rb.offer(1000, 0, 1460) == 1000  # 500 more is less than an MSS: SWS avoidance holds the edge
    rb.read(2000)
    assert rb.offer(1000, 0, 1460) == 3500


def test_a_read_that_doubles_the_window_is_told() -> None:
    rb = ReceiveBuffer(8000, 1000)
    rb.data += bytes(7000)
    assert not rb.opened(1000, 0, 1460)
    rb.read(7000)
    assert rb.opened(1000, 0, 1460)


def test_auto_tuning_grows_with_what_the_reader_takes_per_round_trip() -> None:
    rb = ReceiveBuffer(20000, 10000)
    rb.pos = 50000  # 50 kB arrived and were read within the first round trip
    rb.autotune(now=0.05, srtt=0.1, adv_mss=1460, cap_max=1 << 20)
    assert rb.cap == 20000  # not a round trip yet
    rb.autotune(now=0.2, srtt=0.1, adv_mss=1460, cap_max=1 << 20)
    assert rb.cap > 2 * 50000 and rb.space == 50000
    rb.autotune(now=0.4, srtt=0.1, adv_mss=1460, cap_max=1 << 20)
    assert rb.space == 50000  # read nothing more: no growth
