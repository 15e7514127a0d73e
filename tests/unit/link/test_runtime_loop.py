"""pystack.runtime.Runtime: the poll loop that drives a real Stack, here over a fake link.

The fake link is an eventfd (readable while frames are queued, so poll works) with a queue of frames
behind it; it records every read and write in one log, so the order of the loop's I/O can be checked.
The loop always runs in a thread that is stopped and joined with a timeout: no test can hang.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dpkt
import pytest

from pystack.config import RuntimeConfig, StackConfig
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.wire import ipv4

US_IP = ipv4.addr_to_int("192.0.2.1")
PEER_IP = ipv4.addr_to_int("192.0.2.2")
US_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
TIMEOUT = 5.0
"""Seconds any wait on the loop thread may take before the test fails instead of hanging."""

LogEntry = tuple[str, bytes | None]


class FakeLink:
    """A link for Runtime: ``feed`` queues frames and makes ``fd`` readable; ``read`` hands them out
    one by one, then None; ``write`` records. Every call lands in ``log`` in the order it happened."""

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._queue: deque[bytes] = deque()
        self._mutex = threading.Lock()
        self.log: list[LogEntry] = []
        self.written: list[bytes] = []
        self._want_writes = 0
        self.wrote_enough = threading.Event()
        self.closed = False

    def feed(self, *frames: bytes) -> None:
        with self._mutex:
            self._queue.extend(frames)
        os.eventfd_write(self.fd, 1)

    def expect_writes(self, count: int) -> None:
        """Set ``wrote_enough`` once ``count`` frames have been written."""
        self._want_writes = count

    def read(self) -> bytes | None:
        try:
            os.eventfd_read(self.fd)  # drain first: a feed after this leaves the fd readable again
        except BlockingIOError:
            pass
        with self._mutex:
            frame = self._queue.popleft() if self._queue else None
            self.log.append(("read", frame))
        return frame

    def write(self, frame: bytes) -> bool:
        with self._mutex:
            self.log.append(("write", bytes(frame)))
            self.written.append(bytes(frame))
            if self._want_writes and len(self.written) >= self._want_writes:
                self.wrote_enough.set()
        return True

    def close(self) -> None:
        self.closed = True
        os.close(self.fd)

    def note(self, kind: str) -> None:
        """Log something that is not I/O (the stack's batch boundaries) between the reads and writes."""
        with self._mutex:
            self.log.append((kind, None))

    def snapshot(self) -> list[LogEntry]:
        with self._mutex:
            return list(self.log)


def _stack(runtime: RuntimeConfig | None = None, **config) -> Stack:
    """192.0.2.1/24 with the peer's MAC already known (no ARP exchange) and no timers pending: without
    announcements the loop's only wake-ups are the link and stop()."""
    now = time.monotonic()  # the Runtime's clock: the ARP entry stays fresh for the whole test
    stack = Stack(US_MAC, StackConfig(arp_announcements=0, runtime=runtime or RuntimeConfig(), **config))
    stack.configure(US_IP, 24, None, now)
    stack.arp.update(PEER_IP, PEER_MAC, now, create=True)
    assert stack.get_timer() is None
    return stack


def _echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An Ethernet/IPv4/ICMP echo request from the peer to us, built by dpkt (not by pystack)."""
    icmp = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, code=0,
                          data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=payload))
    ip = dpkt.ip.IP(src=PEER_IP.to_bytes(4, "big"), dst=US_IP.to_bytes(4, "big"), p=dpkt.ip.IP_PROTO_ICMP,
                    ttl=64, id=seq, data=icmp)
    return bytes(dpkt.ethernet.Ethernet(dst=US_MAC, src=PEER_MAC, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def _assert_echo_reply(frame: bytes, ident: int, seq: int, payload: bytes) -> None:
    eth = dpkt.ethernet.Ethernet(frame)
    assert (eth.dst, eth.src, eth.type) == (PEER_MAC, US_MAC, dpkt.ethernet.ETH_TYPE_IP)
    ip = eth.data
    assert (ip.src, ip.dst, ip.p) == (US_IP.to_bytes(4, "big"), PEER_IP.to_bytes(4, "big"), dpkt.ip.IP_PROTO_ICMP)
    assert ip.sum == dpkt.in_cksum(frame[14:24] + b"\x00\x00" + frame[26:34])
    icmp = ip.data
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_ECHOREPLY, 0)
    assert icmp.sum == dpkt.in_cksum(bytes(frame[34:36]) + b"\x00\x00" + bytes(frame[38:]))
    assert (icmp.data.id, icmp.data.seq, icmp.data.data) == (ident, seq, payload)


def _record_batches(stack: Stack, link: FakeLink) -> None:
    """Log begin_batch/end_batch into the link's log (the real methods still run)."""
    begin, end = stack.begin_batch, stack.end_batch

    def logged_begin() -> None:
        link.note("begin_batch")
        begin()

    def logged_end(now: float) -> None:
        link.note("end_batch")
        end(now)

    stack.begin_batch = logged_begin  # type: ignore[method-assign]
    stack.end_batch = logged_end  # type: ignore[method-assign]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail (never hang) after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@contextmanager
def _running(runtime: Runtime) -> Iterator[threading.Thread]:
    """Run the loop in a thread; on exit stop it and require that it ended, within TIMEOUT, without
    raising. The runtime's fds are closed only once the thread is gone."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runtime.run()
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-runtime-loop", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        runtime.stop()
        thread.join(TIMEOUT)
    assert not thread.is_alive(), "the loop did not stop within the timeout after stop()"
    assert errors == [], f"the loop raised: {errors!r}"
    runtime.close()


@pytest.mark.parametrize("fast_paths", [True, False])
def test_echo_reply_to_a_frame_is_written_before_the_next_frame_of_the_batch_is_read(fast_paths: bool) -> None:
    """Frames of one read batch used to be answered only after the whole batch (up to 64 frames) was
    read; the loop now flushes after each frame that produced output, so the reply to the first echo
    request is on the link before the second request is read. The first frame of a wake-up, when it is
    an echo request the stack answers at once (Stack.answer_echo), is answered even before the batch
    begins: ping's round trip pays for no bookkeeping. With the fast paths off there is no such lane."""
    stack = _stack(fast_paths=fast_paths)
    link = FakeLink()
    runtime = Runtime(stack, link)
    _record_batches(stack, link)
    first, second = _echo_request(0x1234, 1, b"first ping"), _echo_request(0x1234, 2, b"second ping")
    link.feed(first, second)  # queued before the loop starts: both come out of one read batch
    link.expect_writes(2)
    with _running(runtime):
        assert link.wrote_enough.wait(TIMEOUT), f"no two replies written; log: {link.snapshot()!r}"
    log = link.snapshot()
    lane = ["read", "write", "begin_batch"] if fast_paths else ["read", "begin_batch", "write"]
    assert [kind for kind, _ in log] == lane + ["read", "write", "read", "end_batch"]
    reads = [data for kind, data in log if kind == "read"]
    writes = [data for kind, data in log if kind == "write"]
    assert reads == [first, second, None]
    _assert_echo_reply(writes[0], 0x1234, 1, b"first ping")
    _assert_echo_reply(writes[1], 0x1234, 2, b"second ping")
    assert stack.counters["icmp.echo_replies_sent"] == 2
    assert link.closed


def test_loop_stops_on_stop_while_blocked_without_a_deadline(monkeypatch) -> None:
    """With no frame and no timer the loop waits without a timeout: stop() must still end it (through the
    wake eventfd), and run() must return normally."""
    import pystack.runtime as runtime_module

    _RecordingPoll.timeouts = []
    monkeypatch.setattr(runtime_module.select, "poll", _RecordingPoll)
    stack = _stack()
    link = FakeLink()
    runtime = Runtime(stack, link)
    with _running(runtime) as thread:
        _wait_for(lambda: bool(_RecordingPoll.timeouts), "the loop's first wait")
        time.sleep(0.05)  # let it block
        assert thread.is_alive(), "the loop returned before stop()"
    assert _RecordingPoll.timeouts[0] is None  # it slept without a timeout
    assert link.snapshot() == []  # nothing was read or written: the wake fd alone woke it


def test_loop_answers_frames_fed_while_it_runs_and_then_stops() -> None:
    """A frame that arrives while the loop waits wakes it (the link fd is polled), is answered, and a
    later stop() still ends the loop: serving does not leave it unable to stop."""
    stack = _stack()
    link = FakeLink()
    runtime = Runtime(stack, link)
    link.expect_writes(1)
    with _running(runtime):
        time.sleep(0.05)
        link.feed(_echo_request(7, 9, b"late"))
        assert link.wrote_enough.wait(TIMEOUT), f"no reply written; log: {link.snapshot()!r}"
    _assert_echo_reply(link.written[0], 7, 9, b"late")
    assert len(link.written) == 1


_REAL_POLL = select.poll


class _RecordingPoll:
    """select.poll with every poll's timeout recorded (milliseconds; None: sleep until an event)."""

    timeouts: list[float | None] = []

    def __init__(self) -> None:
        self._poll = _REAL_POLL()

    def register(self, fd: int, mask: int) -> None:
        self._poll.register(fd, mask)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        _RecordingPoll.timeouts.append(timeout)
        return self._poll.poll(timeout)


def _timeouts_around_one_echo(monkeypatch, busy_poll: float) -> list[float | None]:
    import pystack.runtime as runtime_module

    _RecordingPoll.timeouts = []
    monkeypatch.setattr(runtime_module.select, "poll", _RecordingPoll)
    stack = _stack(RuntimeConfig(busy_poll=busy_poll))
    link = FakeLink()
    runtime = Runtime(stack, link)
    link.expect_writes(1)
    with _running(runtime):
        _wait_for(lambda: bool(_RecordingPoll.timeouts), "the loop's first wait")
        link.feed(_echo_request(7, 1, b"spin"))
        assert link.wrote_enough.wait(TIMEOUT)
        time.sleep(busy_poll + 0.1)  # the spin is over: the loop must be asleep again
        return list(_RecordingPoll.timeouts)


def test_busy_poll_keeps_polling_without_sleeping_after_a_frame_then_sleeps(monkeypatch) -> None:
    """--busy-poll: after frames arrive, the loop polls with a zero timeout for the spin window (the
    next frame of an exchange is read without a wake-up), then goes back to sleeping: no CPU is burnt
    while the link is idle."""
    timeouts = _timeouts_around_one_echo(monkeypatch, busy_poll=0.02)
    first_spin = timeouts.index(0)
    assert timeouts[first_spin:].count(0) >= 10  # many polls within 20 ms, none of them a sleep
    assert timeouts[-1] is None  # asleep again once the window passed (no timers are pending)
    assert None not in timeouts[first_spin:-1]


def test_without_busy_poll_the_loop_sleeps_right_after_a_frame(monkeypatch) -> None:
    timeouts = _timeouts_around_one_echo(monkeypatch, busy_poll=0.0)
    assert 0 not in timeouts and set(timeouts) == {None}


def test_adaptive_poll_sleeps_after_a_lone_frame_and_polls_once_frames_follow_closely(monkeypatch) -> None:
    """--busy-poll auto: the first frame finds the window closed (the loop sleeps right after it); a
    second one soon after opens it, and the loop then polls for the window before sleeping again."""
    import pystack.runtime as runtime_module

    _RecordingPoll.timeouts = []
    monkeypatch.setattr(runtime_module.select, "poll", _RecordingPoll)
    stack = _stack(RuntimeConfig(busy_poll=0.5, adaptive_poll=True, poll_grow_start=0.02))
    link = FakeLink()
    runtime = Runtime(stack, link)
    with _running(runtime):
        _wait_for(lambda: bool(_RecordingPoll.timeouts), "the loop's first wait")
        link.expect_writes(1)
        link.feed(_echo_request(7, 1, b"lone"))
        assert link.wrote_enough.wait(TIMEOUT)
        _wait_for(lambda: len(_RecordingPoll.timeouts) >= 2, "the wait after the first frame")
        after_first = list(_RecordingPoll.timeouts)
        link.expect_writes(2)
        link.feed(_echo_request(7, 2, b"soon after"))  # well within the 0.5 s limit
        assert link.wrote_enough.wait(TIMEOUT)
        time.sleep(0.02 + 0.1)  # the window is over: the loop must be asleep again
        timeouts = list(_RecordingPoll.timeouts)
    assert 0 not in after_first and after_first[-1] is None
    assert runtime.poll_window.window == 0.02
    spin = timeouts[len(after_first):]
    assert spin.count(0) >= 5 and spin[-1] is None


def test_wake_after_close_is_a_no_op_and_never_writes_to_a_reused_fd_number() -> None:
    """A user thread (a TLS server's, say) may call wake() or stop() after the runtime was closed. That
    used to raise EBADF, or worse, once the wake-up fd's number was handed to another file, write
    into that file. Now it does nothing at all."""
    runtime = Runtime(_stack(), FakeLink())
    runtime.close()
    reused = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # the lowest free number: the closed one's
    try:
        runtime.wake()
        runtime.stop()
        runtime.close()  # twice is harmless too
        with pytest.raises(BlockingIOError):
            os.eventfd_read(reused)  # nothing was written to the file that now has that number
    finally:
        os.close(reused)


def test_wake_racing_close_from_another_thread_never_fails() -> None:
    """close() in one thread and wake() in another: every wake lands before the close or is skipped."""
    for _ in range(50):
        runtime = Runtime(_stack(), FakeLink())
        errors: list[BaseException] = []
        go = threading.Barrier(2)

        def waker() -> None:
            go.wait()
            try:
                for _ in range(200):
                    runtime.wake()
            except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
                errors.append(exc)

        thread = threading.Thread(target=waker, daemon=True)
        thread.start()
        go.wait()
        runtime.close()
        thread.join(TIMEOUT)
        assert errors == []
