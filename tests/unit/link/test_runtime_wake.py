"""Runtime.timers_changed: a user call wakes the poll loop only when the stack's next deadline moved earlier
than the one the loop waits for; a later one the loop finds when it wakes anyway."""

from __future__ import annotations

import os
import select
import time

from pystack.runtime import Runtime

from .test_runtime_loop import FakeLink, _RecordingPoll, _running, _stack, _wait_for


class _Timer:
    """A timer source of the stack (Stack.timer_sources) whose deadline the test sets."""

    def __init__(self) -> None:
        self.deadline: float | None = None

    def get_timer(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> None:
        self.deadline = None


def _woken(runtime: Runtime) -> bool:
    """Whether the wake eventfd was written (read without draining it)."""
    poller = select.poll()
    poller.register(runtime._wake_fd, select.POLLIN)
    return bool(poller.poll(0))


def _runtime_waiting_until(deadline: float | None) -> tuple[Runtime, _Timer]:
    """A runtime whose loop started, found ``deadline`` as the stack's next one, and returned at once (it
    was stopped before it ran): the test reads the wake fd with no loop draining it."""
    stack = _stack()
    timer = _Timer()
    timer.deadline = deadline
    stack.timer_sources.append(timer)
    runtime = Runtime(stack, FakeLink())
    runtime.stop()
    runtime.run()
    os.eventfd_read(runtime._wake_fd)  # stop()'s wake-up
    return runtime, timer


def test_a_user_call_that_arms_an_earlier_deadline_wakes_the_loop() -> None:
    far = time.monotonic() + 3600
    runtime, timer = _runtime_waiting_until(far)
    try:
        timer.deadline = far - 1
        with runtime.lock:
            runtime.timers_changed()
        assert _woken(runtime)
    finally:
        runtime.close()


def test_a_user_call_that_arms_the_first_deadline_wakes_a_loop_waiting_without_one() -> None:
    runtime, timer = _runtime_waiting_until(None)
    try:
        timer.deadline = time.monotonic() + 3600
        with runtime.lock:
            runtime.timers_changed()
        assert _woken(runtime)
    finally:
        runtime.close()


def test_a_user_call_that_leaves_the_deadline_later_or_none_does_not_wake_the_loop() -> None:
    far = time.monotonic() + 3600
    runtime, timer = _runtime_waiting_until(far)
    try:
        for later in (far, far + 1, None):
            timer.deadline = later
            with runtime.lock:
                runtime.timers_changed()
            assert not _woken(runtime), later
    finally:
        runtime.close()


def test_a_running_loop_woken_for_an_earlier_deadline_waits_with_that_timeout(monkeypatch) -> None:
    """The loop, asleep with no deadline, wakes and sleeps again with a timeout once a user call armed one."""
    import pystack.runtime as runtime_module

    _RecordingPoll.timeouts = []
    monkeypatch.setattr(runtime_module.select, "poll", _RecordingPoll)
    stack = _stack()
    timer = _Timer()
    stack.timer_sources.append(timer)
    runtime = Runtime(stack, FakeLink())
    with _running(runtime):
        _wait_for(lambda: _RecordingPoll.timeouts == [None], "the loop's first wait, without a deadline")
        with runtime.lock:
            timer.deadline = time.monotonic() + 3600
            runtime.timers_changed()
        _wait_for(lambda: len(_RecordingPoll.timeouts) >= 2, "the loop's wait after the wake-up")
    assert _RecordingPoll.timeouts[1] is not None and _RecordingPoll.timeouts[1] > 0
