"""Two runtimes in threads, joined by a socketpair link: A = 192.0.2.2 (client), B = 192.0.2.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pystack.link.socketpair import SocketPairLink
from pystack.runtime import Runtime
from pystack.stack import Stack
from pystack.wire.ipv4 import addr_to_int

A_IP, B_IP = "192.0.2.2", "192.0.2.1"


@pytest.fixture
def runtimes() -> Iterator[tuple[Runtime, Runtime]]:
    la, lb = SocketPairLink.pair()
    ra = Runtime(Stack(bytes.fromhex("020000000002")), la)
    rb = Runtime(Stack(bytes.fromhex("020000000001")), lb)
    ra.stack.configure(addr_to_int(A_IP), 24, None, ra.now())
    rb.stack.configure(addr_to_int(B_IP), 24, None, rb.now())
    threads = [ra.start_thread(), rb.start_thread()]
    try:
        yield ra, rb
    finally:
        for rt in (ra, rb):
            rt.stop()
        for t in threads:
            t.join(5)
        for rt in (ra, rb):
            rt.close()
