"""The poll loop: drives a sans-I/O :class:`~pystack.stack.Stack` with a real link and clock.

One lock guards the stack. The loop holds it while it feeds frames and timers; user threads (the
socket API) take it for their calls and then :meth:`Runtime.flush` what the stack produced. A wake
eventfd interrupts the poll when a user call moved the next timer deadline earlier than the one the loop
waits for (:meth:`Runtime.timers_changed`).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Callable, Protocol

from pystack.link.pcap import PcapWriter
from pystack.stack import Stack

log = logging.getLogger("pystack")


class Link(Protocol):
    fd: int

    def read(self) -> bytes | None: ...
    def write(self, frame: bytes) -> bool: ...
    def close(self) -> None: ...


class PollWindow:
    """How long the loop keeps polling the link after a burst of frames before it sleeps.

    Fixed (``adaptive`` False): ``limit`` seconds after every burst, ``pystack run --busy-poll USEC``.
    Adaptive: learnt from the gaps between bursts, the way the haltpoll cpuidle governor of KVM guests
    learns how long a vCPU polls before it halts (Linux drivers/cpuidle/governors/haltpoll.c). A gap the
    window did not cover but a window of ``limit`` would have grows it (to ``grow_start``, then doubling, up
    to ``limit``); a gap longer than ``limit`` halves it, and below ``grow_start`` it is 0 again. So the next
    frame of a fast request/response exchange (a serial client's, well within ``limit`` of the one before)
    is read without a sleep and wake-up, while traffic with longer gaps (ping every 2 ms, an idle link)
    costs no CPU: after the last burst the loop polls for at most about twice ``limit`` in all (see
    docs/performance.md, "Adaptive busy polling").
    """

    __slots__ = ("limit", "adaptive", "grow_start", "window")

    def __init__(self, limit: float, adaptive: bool, grow_start: float) -> None:
        self.limit = limit
        self.adaptive = adaptive
        self.grow_start = grow_start
        """The first window after a gap within ``limit`` (RuntimeConfig.poll_grow_start)."""
        self.window = 0.0 if adaptive else limit
        """Seconds to poll after the current burst."""

    def after_gap(self, gap: float) -> None:
        """A burst of frames arrived ``gap`` seconds after the one before it."""
        if not self.adaptive or gap <= self.window:
            return  # fixed, or polling caught it: keep the window
        if gap <= self.limit:
            self.window = min(self.limit, max(self.grow_start, 2.0 * self.window))
        else:
            half = self.window / 2.0
            self.window = half if half >= self.grow_start else 0.0


class Runtime:
    """The loop over ``stack`` and ``link``, set by ``stack.config.runtime`` (its batch size and how long it
    polls before it sleeps)."""

    def __init__(self, stack: Stack, link: Link, pcap: PcapWriter | None = None) -> None:
        self.stack = stack
        config = stack.config.runtime
        self.read_batch = config.read_batch
        self.poll_window = PollWindow(config.busy_poll, config.adaptive_poll, config.poll_grow_start)
        """How long to keep polling without sleeping after frames arrived (RuntimeConfig.busy_poll)."""
        medium = getattr(link, "medium", None)  # a TAP's or TUN's; an in-process pair carries either
        if medium is not None and medium is not stack.config.medium:
            raise ValueError(f"the link carries the {medium.value} medium and the stack is set for "
                             f"{stack.config.medium.value}: give it StackConfig(medium=link.medium)")
        self.link = link
        self.pcap = pcap
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        """Notified (under ``lock``) whenever the loop processed something: socket waiters re-check."""
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_guard = threading.Lock()
        """Held across a write to ``_wake_fd`` and while close() retires it (to -1): a wake() racing close()
        writes before the fd is closed or not at all, never to a number another file has since taken."""
        self._stopping = False
        self._deadline: float | None = None
        """The deadline of the loop's next wait (None: no timer), set under ``lock`` at the end of each pass."""
        self.clock = time.monotonic
        if getattr(link, "offload", False):
            stack.enable_segmentation_offload()  # the link takes TCP super-frames (TapLink offload mode)
        self.tick_hooks: list = []
        """Callables run under the lock after every loop iteration (applications' housekeeping)."""
        self._poller = select.poll()
        self._watched: dict[int, Callable[[int, float], None]] = {}
        """Other file descriptors the loop waits on (:meth:`watch`), with their handlers."""

    def now(self) -> float:
        return self.clock()

    def flush(self) -> None:
        """Write what the stack produced to the link (caller holds ``lock``)."""
        frames = self.stack.frames_to_send()
        if not frames:
            return
        write = self.link.write
        pcap = self.pcap
        counters = self.stack.counters
        for frame in frames:
            if not write(frame):
                counters.drop("link.tx_refused")
            elif pcap is not None:
                pcap.write(frame)

    def watch(self, fd: int, events: int, handler: Callable[[int, float], None]) -> None:
        """Have the loop wait for ``events`` (select.POLLIN, POLLOUT) on ``fd`` too, and call
        ``handler(revents, now)`` under the lock when they come; a second call changes the events or the
        handler. The loop's own thread (a handler), or anyone before :meth:`run`, may call it. A handler
        must not block: the control socket (pystack.control.server) is served this way."""
        self._watched[fd] = handler
        self._poller.register(fd, events)

    def unwatch(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            self._poller.unregister(fd)

    def wake(self) -> None:
        """Make the loop recompute its deadline (called by user threads after changing state); after
        :meth:`close`, nothing (a user thread may outlive the runtime it used)."""
        with self._wake_guard:
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)

    def timers_changed(self) -> None:
        """After a user call changed the stack (caller holds ``lock``): wake the loop only if the stack's next
        deadline is now earlier than the one the loop waits for. A later one the loop finds when it wakes
        anyway, and each wake-up costs a pass that contends with the caller for the lock and the GIL in the
        middle of its exchange (see docs/performance.md, "Waking the loop only for an earlier deadline")."""
        d = self.stack.get_timer()
        if d is not None and (self._deadline is None or d < self._deadline):
            self._deadline = d
            self.wake()

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    def run(self) -> None:
        """Serve until :meth:`stop`. Safe to call from any one thread.

        One pass per wake-up: read a batch of frames, run the timers if due, flush, and compute the
        next deadline once (a user thread that changes it calls :meth:`wake`, which ends the wait).
        """
        stack = self.stack
        link = self.link
        # poll(2), not epoll: the TAP wakes its waiters with the sync hint (the sender is about to sleep:
        # run the reader on its CPU), which poll passes to the scheduler and epoll's callback drops, so a
        # reader waiting in poll answers sooner (see docs/performance.md, "Waiting in poll(2), not epoll").
        poller = self._poller
        watched = self._watched
        poller.register(link.fd, select.POLLIN)
        poller.register(self._wake_fd, select.POLLIN)
        wake_fd = self._wake_fd
        link_fd = link.fd
        lock = self.lock
        clock = self.clock
        pcap = self.pcap
        read = link.read
        receive = stack.receive_frame
        answer_echo = stack.answer_echo
        write = link.write
        hooks = self.tick_hooks
        changed = self.changed
        window = self.poll_window
        read_batch = self.read_batch
        polling = window.limit > 0.0
        adaptive = window.adaptive
        spin_until = last_burst = 0.0
        with lock:
            deadline = self._deadline = stack.get_timer()
        while not self._stopping:
            if polling and clock() < spin_until:
                events = poller.poll(0)  # spinning: no sleep, so no wake-up to pay for
            elif deadline is None:
                events = poller.poll()
            else:
                timeout = deadline - clock()
                events = poller.poll(timeout * 1000.0 if timeout > 0.0 else 0)  # milliseconds
            with lock:
                now = clock()
                for fd, _ev in events:
                    if fd == link_fd:
                        frame = read()
                        if frame is not None and (reply := answer_echo(frame, now)) is not None:
                            # Ping's lane: the reply leaves before any batch bookkeeping. Between pings
                            # the code goes cold, and each line before the write adds to the round trip.
                            # (What flush does for one frame; the pcap, when on, also records the request.)
                            if pcap is not None:
                                pcap.write(frame)
                            if not write(reply):
                                stack.counters.drop("link.tx_refused")
                            elif pcap is not None:
                                pcap.write(reply)
                            frame = None
                        if adaptive:
                            window.after_gap(now - last_burst)
                            last_burst = now
                        spin_until = now + window.window
                        stack.begin_batch()
                        try:
                            for _ in range(read_batch):
                                if frame is None:
                                    frame = read()
                                    if frame is None:
                                        break
                                if pcap is not None:
                                    pcap.write(frame)
                                receive(frame, now)
                                frame = None
                                if stack.has_output():
                                    self.flush()  # an echo reply or ARP answer leaves before the next read
                        finally:
                            stack.end_batch(now)  # even if the link failed: no connection is left waiting
                    elif fd == wake_fd:
                        try:
                            os.eventfd_read(wake_fd)
                        except BlockingIOError:
                            pass
                    elif (handler := watched.get(fd)) is not None:
                        handler(_ev, now)
                if deadline is not None and deadline <= now:
                    stack.handle_timer(now)
                for hook in hooks:
                    hook(now)
                self.flush()
                changed.notify_all()
                deadline = self._deadline = stack.get_timer()

    def close(self) -> None:
        with self._wake_guard:
            wake_fd, self._wake_fd = self._wake_fd, -1
        if wake_fd < 0:
            return  # closed already
        self.link.close()
        if self.pcap is not None:
            self.pcap.close()
        os.close(wake_fd)

    def start_thread(self) -> threading.Thread:
        """Run the loop in a daemon thread (for embedding pystack in a program)."""
        thread = threading.Thread(target=self.run, name="pystack-loop", daemon=True)
        thread.start()
        return thread
