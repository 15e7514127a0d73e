"""Fixtures of the integration tests: each test gets its own namespace and, if it asks, a running daemon.

The lab itself is pystack_lab.lab (shared with ``make demo`` and ``make bench``). Without root or the
lab's tools these tests skip with the reason; under CI (CI=true) a missing prerequisite fails instead,
because there they must run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pystack_lab import lab

IN_CI = os.environ.get("CI") == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"integration prerequisite missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab_ready() -> None:
    reason = lab.missing_prerequisites()
    if reason:
        _unavailable(reason)


RequireTools = Callable[..., None]


@pytest.fixture(scope="session")
def require_tools() -> RequireTools:
    """Check further Debian tools a test drives (all named in debian-packages.txt, which make install
    brings): a missing one skips the test, or fails it under CI."""

    def require(*tools: str) -> None:
        reason = lab.missing_prerequisites(tools)
        if reason:
            _unavailable(reason)

    return require


@pytest.fixture(scope="session")
def daemon_ready(lab_ready: None) -> None:
    if importlib.util.find_spec("pystack.cli") is None:
        _unavailable("the daemon (pystack.cli) is not written yet")


@pytest.fixture
def ns(lab_ready: None) -> Iterator[lab.Namespace]:
    """A fresh namespace ``pst-<hex>``, removed after the test with everything started in it."""
    with lab.namespace() as namespace:
        yield namespace


StartStack = Callable[..., lab.Daemon]


@pytest.fixture
def start_stack(daemon_ready: None, ns: lab.Namespace, tmp_path: Path) -> Iterator[StartStack]:
    """Start pystack in ``ns`` in the single-namespace shape; extra CLI flags as arguments.

    Each daemon is stopped with SIGTERM at teardown (if the test did not stop it to read its counters).
    """
    with contextlib.ExitStack() as stack:

        def start(*extra: str, **kw: object) -> lab.Daemon:
            return stack.enter_context(lab.pystack_daemon(ns, *extra, workdir=tmp_path, **kw))

        yield start


@pytest.fixture
def stack(start_stack: StartStack) -> lab.Daemon:
    """pystack at 192.0.2.2 with its UDP echo service on port 7."""
    return start_stack("--echo")


@pytest.fixture
def tap(daemon_ready: None, ns: lab.Namespace) -> lab.Namespace:
    """``pst0`` in ``ns``, made by the kernel before pystack attaches to it (as a client command or
    ``pystack exec`` does without --host-address): 192.0.2.1/24, up, no IPv6. Kernel servers can bind
    192.0.2.1 before pystack starts."""
    with ns.ipr() as ipr:
        ipr.link("add", ifname=lab.TAP, kind="tuntap", mode="tap")
    ns.add_address(lab.TAP, lab.HOST_ADDRESS)
    ns.link_up(lab.TAP)
    ns.disable_ipv6(lab.TAP)
    return ns


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """An empty document root for pystack's --http service, filled by the test."""
    root = tmp_path / "www"
    root.mkdir()
    return root
