"""The kernel's own ping against pystack: ARP, ICMP echo, and IPv4 fragmentation both ways."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("size", [56, 1472, 4000])
def test_kernel_ping_gets_every_reply(stack: lab.Daemon, size: int) -> None:
    """56: the default; 1472: a full 1500-byte datagram, no fragments; 4000: three fragments each way."""
    result = lab.ping(stack.ns, lab.STACK_IP, count=5, size=size, interval=0.2, wait=2)
    assert (result["transmitted"], result["received"]) == (5, 5), result["output"] + "\n" + stack.stderr()
    counters = stack.stop()
    assert stack.returncode == 0, stack.stderr()
    assert counters.get("icmp.echo_replies_sent", 0) >= 5, counters


def test_kernel_ping_largest_datagram(stack: lab.Daemon) -> None:
    """65507 bytes of ICMP payload make a 65535-byte datagram: 45 fragments in, 45 out."""
    result = lab.ping(stack.ns, lab.STACK_IP, count=3, size=65507, interval=0.5, wait=3)
    assert (result["transmitted"], result["received"]) == (3, 3), result["output"] + "\n" + stack.stderr()
    counters = stack.stop()
    assert counters.get("ipv4.reassembled", 0) >= 3, counters


def test_ping_over_a_small_mtu(start_stack: Callable[..., lab.Daemon]) -> None:
    """With --mtu 576 pystack re-fragments its replies smaller than the kernel's fragments; the kernel
    reassembles them all the same (the TAP's kernel side keeps MTU 576 too, from --host-address)."""
    daemon = start_stack("--mtu", "576")
    result = lab.ping(daemon.ns, lab.STACK_IP, count=3, size=2000, interval=0.2, wait=2)
    assert result["received"] == 3, result["output"] + "\n" + daemon.stderr()
