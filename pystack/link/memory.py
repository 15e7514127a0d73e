"""An in-memory wire between stacks, with a fake clock: the unit tests' link.

``MemoryWire.run`` moves frames between the attached stacks and advances the fake clock from timer
to timer, so a test of seconds of protocol time runs in milliseconds and is fully repeatable. A
``fault`` hook may drop, alter or duplicate frames in flight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pystack.medium import Medium
from pystack.wire.gso import GsoFrame, segment

if TYPE_CHECKING:  # the link layer sits below the stack: it only carries a stack's frames
    from pystack.stack import Stack

Fault = Callable[[int, bytes], list[bytes]]
"""(sender index, frame) -> frames actually delivered (empty to drop)."""


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class MemoryWire:
    """A broadcast segment: every frame one stack sends reaches all the others (as on a TAP/bridge)."""

    def __init__(self, *stacks: Stack, clock: FakeClock | None = None, fault: Fault | None = None,
                 latency: float = 0.0) -> None:
        self.stacks = list(stacks)
        self.clock = clock or FakeClock()
        self.fault = fault
        self.latency = latency
        self.in_flight: list[tuple[float, int, int, bytes]] = []
        self._seq = 0
        self.log: list[tuple[float, int, bytes]] = []
        """Every frame put on the wire: (time, sender index, frame)."""

    def _collect(self) -> None:
        now = self.clock.now
        for i, stack in enumerate(self.stacks):
            for frame in stack.frames_to_send():
                self.log.append((now, i, frame))
                # A segmentation-offload frame is cut into wire segments, as the kernel does on a TAP (a
                # Stack's, of its medium: on the IP medium its IP header comes first).
                if type(frame) is GsoFrame:
                    pieces = segment(frame, frame.gso_size, 0 if stack.config.medium is Medium.IP else 14)
                else:
                    pieces = [frame]
                delivered = [f for p in pieces for f in self.fault(i, p)] if self.fault else pieces
                for f in delivered:
                    self._seq += 1
                    self.in_flight.append((now + self.latency, self._seq, i, f))

    def step(self) -> bool:
        """Deliver what is due now and fire due timers. True if anything happened."""
        self._collect()
        now = self.clock.now
        due = [x for x in self.in_flight if x[0] <= now]
        if due:
            self.in_flight = [x for x in self.in_flight if x[0] > now]
            for _t, _s, sender, frame in sorted(due):
                for j, stack in enumerate(self.stacks):
                    if j != sender:
                        stack.receive_frame(frame, now)
        fired = False
        for stack in self.stacks:
            deadline = stack.get_timer()
            if deadline is not None and deadline <= now:
                stack.handle_timer(now)
                fired = True
        self._collect()
        return bool(due) or fired

    def run(self, duration: float = 0.0, until: Callable[[], bool] | None = None, limit: float = 3600.0) -> None:
        """Advance fake time from event to event.

        Without ``until``: until the wire is quiet and ``duration`` seconds have passed. With ``until``:
        until it holds, or nothing is left to happen, or ``limit`` seconds of fake time have passed.
        """
        end = self.clock.now + (limit if until is not None else duration)
        while True:
            while self.step():
                if until and until():
                    return
            if until and until():
                return
            deadlines = [d for d in (s.get_timer() for s in self.stacks) if d is not None]
            deadlines += [x[0] for x in self.in_flight]
            nxt = min(deadlines) if deadlines else None
            if nxt is None or nxt > end:
                if until is None and self.clock.now < end:
                    self.clock.now = end
                    continue
                return
            if nxt <= self.clock.now:
                raise RuntimeError(f"a timer at {nxt} is due but did not fire (now {self.clock.now})")
            self.clock.now = nxt
