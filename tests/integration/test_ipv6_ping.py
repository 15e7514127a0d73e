"""The kernel's own IPv6 tools against pystack: ``ping -6`` at every size (fragments both ways) to the
static and the link-local address, ``ndisc6`` resolving pystack's address, and the all-nodes ping."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration

MAC = "02:00:00:00:00:02"
LINK_LOCAL = "fe80::ff:fe00:2"
"""pystack's link-local address for MAC: modified EUI-64 (RFC 4291 appendix A), the universal/local bit
inverted, ff:fe in the middle."""


@pytest.fixture
def stack6(start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None]) -> lab.Daemon:
    """pystack at 192.0.2.2 and 2001:db8::2, the kernel at 2001:db8::1 (nodad), both addresses of
    pystack past DAD."""
    require_tools("ping", "ndisc6")
    daemon = start_stack("--echo", "--mac", MAC, "--address6", lab.STACK_ADDRESS6,
                         "--host-address6", lab.HOST_ADDRESS6, quiet_ipv6=False)
    daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured")
    daemon.wait_for_line(rf"IPv6 address {LINK_LOCAL}/64 \(link-local\) configured")
    return daemon


def _all_replies(daemon: lab.Daemon, dst: str, size: int, count: int) -> dict:
    result = lab.ping(daemon.ns, dst, count=count, size=size, interval=0.2, wait=3, extra=["-6"])
    assert (result["transmitted"], result["received"]) == (count, count), result["output"] + "\n" + daemon.stderr()
    return result


@pytest.mark.parametrize("size", [56, 1452, 4000, 65000])
def test_ping6_gets_every_reply_from_the_static_address(stack6: lab.Daemon, size: int) -> None:
    """56: the default; 1452: a full 1500-byte packet; 4000: three fragments each way; 65000: 49."""
    _all_replies(stack6, lab.STACK_IP6, size, 5 if size < 65000 else 3)
    counters = stack6.stop()
    assert stack6.returncode == 0, stack6.stderr()
    assert counters.get("icmpv6.echo_replies_sent", 0) >= (5 if size < 65000 else 3), counters
    if size > 1452:
        assert counters.get("ipv6.reassembled", 0) >= 3, counters
    assert counters.get("drop.internal_error", 0) == 0, counters


@pytest.mark.parametrize("size", [56, 1452, 4000, 65000])
def test_ping6_gets_every_reply_from_the_link_local_address(stack6: lab.Daemon, size: int) -> None:
    _all_replies(stack6, f"{LINK_LOCAL}%{lab.TAP}", size, 3)


def test_ndisc6_resolves_pystacks_address(stack6: lab.Daemon) -> None:
    """The kernel side's neighbour solicitation, sent by ndisc6 itself, answered with pystack's MAC."""
    proc = stack6.ns.run(["ndisc6", "-n", "-r", "3", lab.STACK_IP6, lab.TAP], timeout=20)
    assert proc.returncode == 0, proc.stdout + proc.stderr + "\n" + stack6.stderr()
    assert f"Target link-layer address: {MAC.upper()}" in proc.stdout, proc.stdout


def test_ping6_to_all_nodes_is_answered_by_pystack_too(stack6: lab.Daemon) -> None:
    """Pinging ff02::1 on the TAP: the kernel answers itself, and pystack answers too, from its address
    of the request's scope (link-local, or 2001:db8::2 while the kernel's link-local address is still
    tentative and it asks from 2001:db8::1), as Linux does by default."""
    count = 4
    result = lab.ping(stack6.ns, f"ff02::1%{lab.TAP}", count=count, size=56, interval=0.3, wait=3, extra=["-6"])
    ours = (f"from {LINK_LOCAL}%{lab.TAP}: ", f"from {lab.STACK_IP6}: ")
    seqs = {int(line.split("icmp_seq=")[1].split()[0]) for line in result["output"].splitlines()
            if line.startswith("64 bytes") and any(o in line for o in ours)}
    # ping stops at the last sequence's first reply, which is the kernel's own: pystack's comes after.
    assert seqs >= set(range(1, count)), result["output"] + "\n" + stack6.stderr()
    assert stack6.stop().get("icmpv6.echo_replies_sent", 0) == count, stack6.stderr()
