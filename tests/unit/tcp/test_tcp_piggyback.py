"""ACK piggybacking: the user hears of received segments before TCP acknowledges them, so the reply, the
FIN or the window update its on_event handler makes carries the ACK instead of following a bare one.

A receiver delays its ACK so that it can ride on the data the application sends back (RFC 1122
4.2.3.2, RFC 9293 3.8.6.3); an HTTP request answered at once, or a FIN answered by close(), then costs
one segment instead of two, as with the kernel, whose reply or FIN goes out within the delayed-ACK
time and carries the ACK. What must not wait: an ACK nothing rides on once the handler has returned,
and, inside a batch of frames, the duplicate and hole-filling ACKs that signal loss to the sender, one
per segment (RFC 5681 4.2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from pystack.tcp import State, TcpConfig
from pystack.tcp.connection import Connection
from pystack.wire import tcp as wire
from pystack.wire.tcp import ACK, FIN, PSH

from .tcp_harness import Solo
from .tcp_helpers import PEER_ISS, connected_stacks, passive, shuttle, tcp_of

MSS = 1460
REQUEST = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
PEER_PLAIN = wire.build_options(mss=MSS, sack_permitted=True)
PEER_WSCALE = wire.build_options(mss=MSS, sack_permitted=True, wscale=7)
"""A client like Linux: with window scaling our SYN-ACK offers only 64 KiB of a 256 KiB buffer (RFC 7323
2.2: the SYN's window is never scaled), so the first read earns a window update."""

BATCH = pytest.mark.parametrize("batched", [False, True], ids=["plain", "batch"])


@dataclass
class App:
    """An on_event handler that reads whatever arrives; once the data read ends with ``request_end`` it
    sends ``reply`` (unless None), and at EOF it closes when ``close_at_eof``. ``reading`` False: the
    handler ignores its wake-ups (the data stays queued)."""

    conn: Connection
    clock: Callable[[], float]
    reply: bytes | None = None
    close_at_eof: bool = False
    reading: bool = True
    request_end: bytes = b"\r\n\r\n"
    got: bytearray = field(default_factory=bytearray)
    calls: int = 0
    saw_eof: bool = False

    def __post_init__(self) -> None:
        self.conn.on_event = self.on_event

    def on_event(self) -> None:
        self.calls += 1
        if not self.reading:
            return
        conn = self.conn
        while conn.recv_available:
            self.got += conn.recv(1 << 20, self.clock())
            if self.reply is not None and self.got.endswith(self.request_end):
                assert conn.send(self.reply, self.clock()) == len(self.reply)
        if conn.at_eof and not self.saw_eof:
            assert conn.recv(1 << 20, self.clock()) == b""
            self.saw_eof = True
            if self.close_at_eof:
                conn.close(self.clock())


def _est(cfg: TcpConfig | None = None, options: bytes = PEER_PLAIN) -> tuple[Solo, Connection, int, int]:
    """An accepted connection on the Solo layer: (solo, conn, our next seq, the peer's next seq)."""
    solo = Solo(cfg or TcpConfig(timestamps=False))
    _listener, conn, synack = passive(solo, options=options)
    return solo, conn, synack.seq + 1, PEER_ISS + 1


@contextmanager
def _maybe_batch(solo: Solo, batched: bool) -> Iterator[None]:
    """What the runtime does around one read of the link (nothing when not ``batched``)."""
    if batched:
        solo.layer.begin_batch()
    yield
    if batched:
        solo.layer.end_batch(solo.now)


def _no_delayed_ack_left(solo: Solo) -> None:
    """Past the delayed-ACK time (but before any RTO) nothing more goes out: the ACK was not repeated."""
    solo.advance(0.1)
    solo.none()


# --- 1. a reply made in the handler carries the ACK of the request -------------------------------------


@BATCH
def test_reply_made_in_the_handler_carries_the_ack_of_the_request(batched: bool) -> None:
    """The handler reads the request and answers in the same callback: the reply carries the ACK (and
    the window update the first read earned), with no bare ACK before it, as a kernel's reply within
    the delayed-ACK time does (RFC 1122 4.2.3.2). Fails if the window update of a read inside the
    handler is sent from recv() at once (_window_update while _dispatching)."""
    solo, conn, our, peer = _est(options=PEER_WSCALE)
    app = App(conn, lambda: solo.now, reply=REPLY)
    with _maybe_batch(solo, batched):
        solo.send(peer, our, ACK | PSH, payload=REQUEST)
        if batched:
            solo.none()  # the user hears of it at end_batch; nothing may leave before
    seg = solo.one()
    assert (seg.flags, seg.seq, seg.ack, bytes(seg.payload)) == (ACK | PSH, our, peer + len(REQUEST), REPLY)
    assert seg.window << conn._rcv_wscale == TcpConfig().recv_buffer  # the window update rode on it too
    assert bytes(app.got) == REQUEST and app.calls == 1
    _no_delayed_ack_left(solo)


@BATCH
def test_reply_carries_the_ack_even_when_every_segment_is_acked_at_once(batched: bool) -> None:
    """With delayed ACKs off every segment is ACKed at once; the user still hears of the request before
    that ACK is sent, so its reply carries it: one segment at the same moment, not a bare ACK and then
    the reply. Fails if _after_input sends the ACK before telling the user (_flush_event last), or,
    in a batch, if end_batch sends the batch's stretch ACKs before running the deferred input."""
    solo, conn, our, peer = _est(TcpConfig(timestamps=False, delayed_ack=False))
    App(conn, lambda: solo.now, reply=REPLY)
    with _maybe_batch(solo, batched):
        solo.send(peer, our, ACK | PSH, payload=REQUEST)
        if batched:
            solo.none()
    seg = solo.one()
    assert (seg.flags, seg.ack, bytes(seg.payload)) == (ACK | PSH, peer + len(REQUEST), REPLY)
    _no_delayed_ack_left(solo)


@BATCH
def test_request_answered_without_a_reply_is_acked_as_before(batched: bool) -> None:
    """The handler reads but does not answer: the window update the first read earned (and with it the
    ACK of the request) leaves when the handler returns, not at the delayed-ACK timer: nothing will
    carry it later. Fails if the ACK owed after the handler is sent by neither _flush_event nor
    _after_input."""
    solo, conn, our, peer = _est(options=PEER_WSCALE)
    app = App(conn, lambda: solo.now)
    with _maybe_batch(solo, batched):
        solo.send(peer, our, ACK | PSH, payload=REQUEST)
        if batched:
            solo.none()
    seg = solo.one()
    assert (seg.flags, seg.ack, len(seg.payload)) == (ACK, peer + len(REQUEST), 0)
    assert seg.window << conn._rcv_wscale == TcpConfig().recv_buffer
    assert bytes(app.got) == REQUEST
    _no_delayed_ack_left(solo)


@BATCH
def test_stack_server_answers_a_request_frame_with_one_segment(batched: bool) -> None:
    """Through whole stacks (receive_frame, and stack.begin_batch/end_batch as the runtime calls them),
    default options on both sides (window scaling, timestamps, SACK): a request that the server's
    handler answers at once costs the server one frame, its reply acking the request (the first read's
    window update held for it: _window_update while _dispatching)."""
    now = 1000.0
    a, b, client, server = connected_stacks(now)
    assert server is not None and client.state == State.ESTABLISHED
    App(server, lambda: now, reply=REPLY)
    client.send(REQUEST, now)
    frames = a.frames_to_send()
    assert len(frames) == 1
    request = tcp_of(frames[0])
    if batched:
        b.begin_batch()
    b.receive_frame(frames[0], now)
    if batched:
        assert not b.has_output()
        b.end_batch(now)
    answers = [tcp_of(f) for f in b.frames_to_send()]
    assert [(s.flags, s.ack, bytes(s.payload)) for s in answers] == \
        [(ACK | PSH, request.seq + len(REQUEST), REPLY)]
    b.handle_timer(now + 0.1)  # past the delayed-ACK time, before the RTO: no ACK left to repeat
    assert [f for f in b.frames_to_send() if f[12:14] == b"\x08\x00"] == []  # (ARP announcements aside)


# --- 2. the peer's FIN -----------------------------------------------------------------------------------


@BATCH
@pytest.mark.parametrize("with_request", [False, True], ids=["bare-fin", "request-and-fin"])
def test_fin_made_in_the_handler_carries_the_ack_of_the_peers_fin(batched: bool, with_request: bool) -> None:
    """The handler reads EOF and closes in the same callback: our FIN goes out with the ACK of the
    peer's FIN, FIN|ACK in one segment (the three-segment close), not a bare ACK first and our FIN
    after; with a request before the FIN, the reply already acks it, and no bare ACK precedes it. Fails if _after_input ACKs before telling the user, or if a batch
    sends the FIN's ACK mid-batch (``_ack_now`` instead of ``_ack_at_once`` in _input)."""
    solo, conn, our, peer = _est()
    app = App(conn, lambda: solo.now, reply=REPLY if with_request else None, close_at_eof=True)
    payload = REQUEST if with_request else b""
    with _maybe_batch(solo, batched):
        solo.send(peer, our, FIN | ACK | (PSH if payload else 0), payload=payload)
        if batched:
            solo.none()
    out = solo.take()
    end = peer + len(payload) + 1
    if with_request:  # send() transmits at once (nothing in flight): the reply, then the FIN
        assert [(s.flags, s.ack, bytes(s.payload)) for s in out] == [(PSH | ACK, end, REPLY), (FIN | ACK, end, b"")]
    else:
        assert [(s.flags, s.ack, bytes(s.payload)) for s in out] == [(FIN | ACK, end, b"")]
    assert out[0].seq == our and app.saw_eof and conn.state == State.LAST_ACK
    _no_delayed_ack_left(solo)
    solo.send(end, our + len(payload and REPLY) + 1, ACK)  # the peer ACKs our FIN
    assert conn.state == State.CLOSED
    solo.none()


@BATCH
def test_peers_fin_is_acked_at_once_when_the_handler_does_not_close(batched: bool) -> None:
    """A handler that reads EOF but keeps its side open: the FIN is still ACKed when the handler returns
    (after end_batch in a batch), by a bare ACK, not left to the delayed-ACK timer: nothing can ride on
    it any more, and the peer would wait in FIN-WAIT-1. (Linux, in pingpong mode after a FIN, delays it.)"""
    solo, conn, our, peer = _est()
    app = App(conn, lambda: solo.now)
    with _maybe_batch(solo, batched):
        solo.send(peer, our, FIN | ACK)
        if batched:
            solo.none()
    ack = solo.one()
    assert (ack.flags, ack.seq, ack.ack, len(ack.payload)) == (ACK, our, peer + 1, 0)
    assert app.saw_eof and conn.state == State.CLOSE_WAIT
    _no_delayed_ack_left(solo)


# --- 3. window updates earned by reads -------------------------------------------------------------------

SMALL = TcpConfig(timestamps=False, window_scaling=False, recv_buffer=4000)
TAIL = b"d" * 76 + b"\r\n\r\n"


def _nearly_full() -> tuple[Solo, Connection, int, int, App]:
    """A 4000-byte receive buffer holding 3920 unread bytes (the handler ignored them): the window we
    last advertised is 80 bytes, and everything received is ACKed."""
    solo, conn, our, peer = _est(SMALL, PEER_PLAIN)
    app = App(conn, lambda: solo.now, reading=False)
    solo.send(peer, our, ACK, payload=b"a" * 1460)
    solo.none()
    solo.send(peer + 1460, our, ACK, payload=b"b" * 1460)
    assert (solo.one().ack, conn.recv_available) == (peer + 2920, 2920)  # every second full segment
    solo.send(peer + 2920, our, ACK, payload=b"c" * 1000)
    solo.advance(0.05)  # the delayed ACK
    ack = solo.one()
    assert (ack.ack, ack.window) == (peer + 3920, 80)
    assert app.calls == 3
    return solo, conn, our, peer + 3920, app


@pytest.mark.parametrize("reply", [True, False], ids=["handler-replies", "handler-silent"])
def test_window_update_earned_in_the_handler_rides_on_its_reply(reply: bool) -> None:
    """The last 80 bytes arrive; the handler reads all 4000 (the window opens from 0 to 4000, which earns
    a window update, as Linux's tcp_cleanup_rbuf). If it replies, the update is the reply: one segment.
    If not, a bare window update still leaves when the handler returns, not at the delayed-ACK timer
    (80 bytes alone would not be ACKed at once). The first case fails if recv() in the handler sends the
    update itself (_window_update ignoring _dispatching); the second if a deferred update is lost."""
    solo, conn, our, peer, app = _nearly_full()
    app.reading = True
    app.reply = REPLY if reply else None
    solo.send(peer, our, ACK | PSH, payload=TAIL)
    seg = solo.one()
    assert (seg.ack, seg.window) == (peer + len(TAIL), 4000)
    if reply:
        assert (seg.flags, bytes(seg.payload)) == (ACK | PSH, REPLY)
    else:
        assert (seg.flags, len(seg.payload)) == (ACK, 0)
    assert len(app.got) == 4000
    _no_delayed_ack_left(solo)


def test_window_update_from_recv_outside_a_handler_is_sent_at_once() -> None:
    """A socket-API thread reads outside any handler: no reply can carry the update, so recv() sends it
    at once (as test_receive_window_tracks_buffer_and_reopens). Fails if _dispatching is left set after
    a handler (its reset in _flush_event) or if updates always wait for a handler's return."""
    solo, conn, our, peer, app = _nearly_full()
    assert app.calls  # handlers ran before: the flag they set must be clear again
    assert len(conn.recv(4000, solo.now)) == 3920
    update = solo.one()
    assert (update.flags, update.ack, update.window, len(update.payload)) == (ACK, peer, 4000, 0)
    _no_delayed_ack_left(solo)


def test_window_update_earned_in_a_handler_run_by_a_user_call_is_sent_when_it_returns() -> None:
    """shutdown_write() outside input changes the state, so it runs the handler itself; a read in that
    handler earns a window update that must go out when the handler returns, as after input: nothing
    else will send it (no delayed ACK is armed). Fails without the ACK sent at the end of _flush_event."""
    solo, conn, our, peer, app = _nearly_full()
    app.reading = True
    conn.shutdown_write(solo.now)
    assert len(app.got) == 3920
    out = solo.take()
    assert any(s.flags & FIN for s in out)
    assert (out[-1].ack, out[-1].window) == (peer, 4000), [(s.flags, s.window) for s in out]
    _no_delayed_ack_left(solo)


# --- 4. batches: loss signals at once, the FIN at end_batch at the latest --------------------------------


def test_out_of_order_segments_in_a_batch_are_dup_acked_at_once_while_the_reply_waits() -> None:
    """Inside a batch each out-of-order segment gets its duplicate ACK at once, and the hole-filling
    segment its ACK at once (RFC 5681 4.2: the sender counts them for fast retransmit), while the
    user's reply waits for end_batch. Fails if mid-batch ACKs are held (no ``_ack_at_once`` send in
    _input) or if _receive's out-of-order and hole-filling paths stop marking them."""
    solo, conn, our, peer = _est()
    request = b"x" * (4 * MSS - 4) + b"\r\n\r\n"
    chunks = [request[i * MSS:(i + 1) * MSS] for i in range(4)]
    app = App(conn, lambda: solo.now, reply=REPLY)
    with _maybe_batch(solo, True):
        for i in (1, 2, 3):  # segment 0 is missing
            solo.send(peer + i * MSS, our, ACK, payload=chunks[i])
            dup = solo.one()
            assert (dup.flags, dup.ack, len(dup.payload)) == (ACK, peer, 0)
            assert dup.sack_blocks == ((peer + MSS, peer + (i + 1) * MSS),)
        solo.send(peer, our, ACK, payload=chunks[0])
        fill = solo.one()
        assert (fill.flags, fill.ack, fill.sack_blocks, len(fill.payload)) == (ACK, peer + 4 * MSS, (), 0)
        assert app.calls == 0
    seg = solo.one()
    assert (seg.flags, seg.ack, bytes(seg.payload)) == (ACK | PSH, peer + 4 * MSS, REPLY)
    assert bytes(app.got) == request
    _no_delayed_ack_left(solo)


def test_fin_in_a_batch_is_acked_at_end_batch_at_the_latest() -> None:
    """In-order data then the FIN in one batch, a handler that leaves the data unread: nothing leaves
    mid-batch (the FIN's ACK is not a loss signal), and end_batch sends one ACK covering data and FIN;
    it is not lost to the batch, nor left to the delayed-ACK timer. Fails if _input's batch path sends
    on ``_ack_now`` (the FIN's ACK mid-batch) instead of ``_ack_at_once``."""
    solo, conn, our, peer = _est()
    app = App(conn, lambda: solo.now, reading=False)
    with _maybe_batch(solo, True):
        for i in range(3):
            solo.send(peer + i * MSS, our, ACK, payload=b"z" * MSS)
            solo.none()
        solo.send(peer + 3 * MSS, our, FIN | ACK)
        solo.none()
    ack = solo.one()
    assert (ack.flags, ack.ack, len(ack.payload)) == (ACK, peer + 3 * MSS + 1, 0)
    assert app.calls == 1 and conn.state == State.CLOSE_WAIT and conn.recv_available == 3 * MSS
    _no_delayed_ack_left(solo)
