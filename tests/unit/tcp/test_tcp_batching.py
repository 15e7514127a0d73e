"""TcpLayer batching: frames read from the link together are answered once per batch.

Between ``begin_batch`` and ``end_batch(now)`` a connection takes its segments at once (data is queued,
ACKs are processed) but sends new data, sends its stretch ACK and tells the application only at
``end_batch``. ACKs that are signals to the peer (duplicate ACKs for out-of-order data, RFC 5681 4.2)
still leave at once. Without a batch everything happens per segment, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from pystack.tcp import TcpConfig
from pystack.tcp.connection import Connection
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK

from .tcp_harness import Solo
from .tcp_helpers import PEER_ISS, connected_stacks, passive, shuttle, tcp_of

MSS = 1460
NO_TS = TcpConfig(timestamps=False, sack=True)  # no options in data segments: every one carries MSS bytes
PEER_OPTIONS = wire.build_options(mss=MSS, sack_permitted=True)


@dataclass
class Est:
    """One established connection on the Solo layer, with the application's wake-ups recorded."""

    solo: Solo
    conn: Connection
    our: int
    """Our next sequence number: what the peer acknowledges."""
    peer: int
    """The peer's next sequence number: where its data starts."""
    events: list[int] = field(default_factory=list)
    """``conn.recv_available`` at each ``on_event`` call."""


def _established(cfg: TcpConfig = NO_TS) -> Est:
    solo = Solo(cfg)
    _listener, conn, synack = passive(solo, options=PEER_OPTIONS)
    est = Est(solo, conn, synack.seq + 1, PEER_ISS + 1)
    conn.on_event = lambda: est.events.append(conn.recv_available)
    return est


def _chunk(i: int, size: int = MSS) -> bytes:
    """Segment ``i``'s payload: distinct bytes per segment, so misordered or lost data shows."""
    return bytes((i * 31 + j) & 0xFF for j in range(size))


def _deliver(est: Est, index: int, size: int = MSS) -> None:
    """The peer sends segment ``index`` (of ``size``-byte segments) carrying ``_chunk(index)``."""
    est.solo.send(est.peer + index * size, est.our, ACK, payload=_chunk(index, size))


@contextmanager
def _batch(solo: Solo) -> Iterator[None]:
    """What the runtime does around one read of the link."""
    solo.layer.begin_batch()
    yield
    solo.layer.end_batch(solo.now)


def _read_all(conn: Connection, now: float) -> bytes:
    out = bytearray()
    while conn.recv_available:
        out += conn.recv(1 << 20, now)
    return bytes(out)


# --- receiving ---------------------------------------------------------------------------------------


def test_in_order_segments_of_one_batch_wake_the_application_once() -> None:
    """An on_event per segment costs the application a wake-up per frame; the batch must tell it once,
    at end_batch, with every segment's data already readable."""
    est = _established()
    with _batch(est.solo):
        for i in range(4):
            _deliver(est, i)
            assert est.events == [], f"the application was told before end_batch (segment {i})"
    assert est.events == [4 * MSS]
    assert _read_all(est.conn, est.solo.now) == b"".join(_chunk(i) for i in range(4))


def test_in_order_segments_of_one_batch_are_acked_once_at_end_batch() -> None:
    """Four full segments would earn two ACKs one by one (every second segment, RFC 5681 4.2); in a
    batch one stretch ACK covering all four goes at end_batch, none before, and no delayed ACK is left
    behind to repeat it."""
    est = _established()
    solo = est.solo
    with _batch(solo):
        for i in range(4):
            _deliver(est, i)
            solo.none()
    ack = solo.one()
    assert (ack.flags, ack.ack, ack.seq, len(ack.payload)) == (ACK, est.peer + 4 * MSS, est.our, 0)
    solo.advance(1.0)  # well past the delayed-ACK time
    solo.none()


def test_out_of_order_segments_in_a_batch_are_dup_acked_at_once() -> None:
    """Duplicate ACKs are the sender's loss signal (fast retransmit after three, RFC 5681 3.2 and 4.2):
    each out-of-order segment must be answered at once, not held until the batch ends."""
    est = _established()
    solo = est.solo
    with _batch(solo):
        for i in (1, 2, 3):  # segment 0 is missing
            _deliver(est, i)
            dup = solo.one()
            assert (dup.flags, dup.ack, len(dup.payload)) == (ACK, est.peer, 0)
            assert dup.sack_blocks == ((est.peer + MSS, est.peer + (i + 1) * MSS),)  # RFC 2018
        assert est.events == []
        _deliver(est, 0)  # fills the hole: ACKed at once too (RFC 5681 4.2)
        fill = solo.one()
        assert (fill.flags, fill.ack, fill.sack_blocks) == (ACK, est.peer + 4 * MSS, ())
    solo.none()  # the hole-filling ACK already covered everything
    assert est.events == [4 * MSS]
    assert _read_all(est.conn, est.solo.now) == b"".join(_chunk(i) for i in range(4))


def test_old_duplicates_in_a_batch_are_each_acked_at_once() -> None:
    """Segments we already have (a sender retransmitting what arrived) are unacceptable and answered with
    an ACK each (RFC 9293 3.10.7.4); those ACKs are the sender's signals too, so a batch must not fold
    them into one."""
    est = _established()
    solo = est.solo
    for i in range(2):
        _deliver(est, i)
    solo.take()
    with _batch(solo):
        for i in (0, 1, 0):
            _deliver(est, i)
            dup = solo.one()
            assert (dup.flags, dup.ack, len(dup.payload)) == (ACK, est.peer + 2 * MSS, 0)
    solo.none()


def test_without_a_batch_each_segment_is_handled_on_its_own() -> None:
    """Plain receive calls keep the per-segment behaviour: an event per segment, and an ACK after every
    second full segment the moment it arrives."""
    est = _established()
    solo = est.solo
    acks: list[int] = []
    for i in range(4):
        _deliver(est, i)
        assert est.events[-1] == (i + 1) * MSS
        acks += [seg.ack for seg in solo.take()]
        assert acks == [est.peer + MSS * n for n in range(2, i + 2, 2)]
    assert est.events == [MSS, 2 * MSS, 3 * MSS, 4 * MSS]
    assert _read_all(est.conn, est.solo.now) == b"".join(_chunk(i) for i in range(4))


# --- sending -----------------------------------------------------------------------------------------


def _sender() -> tuple[Est, bytes]:
    """An established connection that has sent its initial window of a larger write."""
    est = _established()
    data = bytes((i * 7) & 0xFF for i in range(60_000))
    assert est.conn.send(data, est.solo.now) == len(data)
    first = est.solo.take()
    assert len(first) == NO_TS.initial_window_segments  # the initial window (RFC 5681 3.1)
    _check_data(first, est.our, data, est.our)
    return est, data


def _check_data(segments: list[wire.TcpSegment], start: int, data: bytes, isn1: int) -> int:
    """``segments`` carry ``data`` contiguously from sequence ``start``, none over the MSS; returns the end."""
    seq = start
    for seg in segments:
        assert seg.seq == seq, "a gap or a retransmission where new data was due"
        assert 0 < len(seg.payload) <= MSS and seg.flags & ACK
        off = seg.seq - isn1
        assert bytes(seg.payload) == data[off:off + len(seg.payload)]
        seq += len(seg.payload)
    return seq


def _peer_acks(est: Est, segments: int) -> None:
    est.solo.send(est.peer, est.our + segments * MSS, ACK)


def test_acks_in_one_batch_release_new_data_only_at_end_batch() -> None:
    """Each ACK opens the congestion window (RFC 5681 slow start); in a batch the sender must not
    answer each ACK with a burst of its own but send once, at end_batch, the right continuation."""
    est, data = _sender()
    solo = est.solo
    with _batch(solo):
        for acked in (2, 4, 6):
            _peer_acks(est, acked)
            solo.none()
            assert est.conn.snd_una == est.our + acked * MSS  # the ACK itself was taken at once
    sent = solo.take()
    assert sent, "end_batch sent nothing although the ACKs opened the window"
    end = _check_data(sent, est.our + 10 * MSS, data, est.our)
    assert end == est.conn.snd_nxt


def test_batched_acks_release_as_much_data_as_the_same_acks_one_by_one() -> None:
    """Deferring the output to end_batch must not lose sending opportunities: after the same three
    ACKs, as much data is in flight (and the same bytes) as when each ACK was answered at once."""
    batched, data = _sender()
    with _batch(batched.solo):
        for acked in (2, 4, 6):
            _peer_acks(batched, acked)
    batched_out = batched.solo.take()

    plain, _ = _sender()
    plain_out: list[wire.TcpSegment] = []
    for acked in (2, 4, 6):
        _peer_acks(plain, acked)
        now_out = plain.solo.take()
        assert now_out, "without a batch each ACK releases data at once"
        plain_out += now_out
    assert _check_data(batched_out, batched.our + 10 * MSS, data, batched.our) - batched.our == \
        _check_data(plain_out, plain.our + 10 * MSS, data, plain.our) - plain.our


def _window_acked_with_a_loss(est: Est, batched: bool) -> None:
    """The peer's ACKs for a window of 10 segments of which the 7th was lost: cumulative ACKs up to it,
    then three duplicate ACKs SACKing the 8th, 9th and 10th."""
    def acks() -> None:
        for acked in (2, 4, 6):
            _peer_acks(est, acked)
        lost = est.our + 6 * MSS
        for right in (8, 9, 10):
            sack = wire.build_options(sack_blocks=[(lost + MSS, est.our + right * MSS)])
            est.solo.send(est.peer, lost, ACK, options=sack)
    if batched:
        with _batch(est.solo):
            acks()
    else:
        acks()


def test_a_loss_found_in_a_batch_sets_ssthresh_from_the_flight_before_the_batch() -> None:
    """RFC 5681 eq. 4 / RFC 9438 4.6: ssthresh = beta x FlightSize. A stack that sends after each ACK
    keeps its flight up while the ACKs below the loss arrive; in a batch nothing is sent until its end, so
    when the third duplicate ACK comes only the segments above the loss are outstanding. The batch's
    acknowledged bytes must count: 10 segments were in flight, so ssthresh is 7 (CUBIC's 0.7), not 0.7 x 4
    (which with a whole window's ACKs in one batch cut every loss to 0.3 of the window)."""
    est, _data = _sender()
    _window_acked_with_a_loss(est, batched=True)
    conn = est.conn
    assert conn._rec.in_recovery
    assert conn.cc.ssthresh == int(10 * MSS * conn.cc.BETA)


def test_a_loss_found_without_a_batch_still_uses_the_flight_of_its_moment() -> None:
    """Without a batch each ACK released new data at once, so the flight at the third duplicate ACK is
    simply what is outstanding then (more than the 10 segments of the first window: slow start grew it)."""
    est, _data = _sender()
    _window_acked_with_a_loss(est, batched=False)
    conn = est.conn
    assert conn._rec.in_recovery
    outstanding_before_retransmit = conn.snd_max - (est.our + 6 * MSS)
    assert conn.cc.ssthresh == int(outstanding_before_retransmit * conn.cc.BETA)


# --- through the Stack: Ethernet frames, receive_frame, stack.begin_batch/end_batch ------------------


@pytest.mark.parametrize(("batched", "events", "acks"), [(True, 1, 1), (False, 4, 2)], ids=["batch", "plain"])
def test_stack_batch_answers_frames_once_and_plain_frames_one_by_one(batched: bool, events: int, acks: int) -> None:
    """The stack hands TCP frames straight to the TCP layer; stack.begin_batch/end_batch must reach it:
    one application event and one ACK per batch, and per frame without one."""
    now = 1000.0
    a, b, client, server = connected_stacks(now)
    assert server is not None
    told: list[int] = []
    client.on_event = lambda: told.append(client.recv_available)
    data = bytes(range(256)) * 23  # 5888 bytes: four full segments of 1448 (MSS less timestamps) and a tail
    server.set_nodelay(True, now)
    server.send(data, now)
    frames = b.frames_to_send()
    assert len(frames) == 5
    frames = frames[:4]  # four full segments: the tail would be a fifth event
    if batched:
        a.begin_batch()
    for frame in frames:
        a.receive_frame(frame, now)
    if batched:
        assert told == [] and not a.has_output()
        a.end_batch(now)
    answers = [tcp_of(f) for f in a.frames_to_send()]
    assert len(told) == events and told[-1] == client.recv_available
    assert [s.flags for s in answers] == [ACK] * acks
    assert answers[-1].ack == tcp_of(frames[-1]).seq + len(tcp_of(frames[-1]).payload)
    assert client.recv(1 << 20, now) == data[:sum(len(tcp_of(f).payload) for f in frames)]
