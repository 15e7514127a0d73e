"""MLDv1 compatibility against the kernel (RFC 3810 8.2.1): pystack's TAP is a port of a Linux bridge that
acts as MLDv1 querier (``mcast_querier 1 mcast_mld_version 1``); pystack answers its 24-byte queries with
MLDv1 Reports for its solicited-node groups. Two independent readings: tshark decodes the reports on the
port, and the bridge's own snooping learns pystack's groups on that port (``bridge mdb``)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pystack_lab import lab

pytestmark = pytest.mark.integration

BRIDGE = "br0"
QUERIER_LL = "fe80::b/64"
CENTISECONDS = 100  # the bridge's intervals are in USER_HZ ticks


@contextlib.contextmanager
def capture_ipv6(ns: lab.Namespace, ifname: str, path: Path) -> Iterator[Path]:
    """tcpdump of the IPv6 frames on ``ifname``, stopped by PID on the way out."""
    proc = ns.spawn(["tcpdump", "-i", ifname, "--immediate-mode", "-U", "-n", "-w", str(path), "ip6"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if "listening on" not in line:
            raise lab.LabError(f"tcpdump did not start: {line.strip()}")
        yield path
        time.sleep(0.5)
    finally:
        lab.stop_process(proc)


def make_v1_querier(ns: lab.Namespace, port: str) -> None:
    """A bridge with ``port`` in it, querying in MLDv1 every second at startup with a 1 s Maximum
    Response Delay; its link-local address (nodad) is the queries' source."""
    with ns.ipr() as ipr:
        ipr.link("add", ifname=BRIDGE, kind="bridge", br_mcast_snooping=1, br_mcast_querier=1,
                 br_mcast_mld_version=1, br_mcast_query_response_intvl=1 * CENTISECONDS,
                 br_mcast_startup_query_intvl=1 * CENTISECONDS)
        (bridge,) = ipr.link_lookup(ifname=BRIDGE)
        (tap,) = ipr.link_lookup(ifname=port)
        ipr.link("set", index=tap, master=bridge)
    ns.add_address6(BRIDGE, QUERIER_LL)
    ns.link_up(BRIDGE)


def mld_messages(ns: lab.Namespace, pcap: Path) -> list[tuple[str, int, str, str]]:
    """tshark's reading of the MLD messages in ``pcap``: (source, ICMPv6 type, destination, group)."""
    proc = ns.run(["tshark", "-r", str(pcap), "-Y", "icmpv6.type >= 130 && icmpv6.type <= 132 || icmpv6.type == 143",
                   "-T", "fields", "-e", "ipv6.src", "-e", "icmpv6.type", "-e", "ipv6.dst",
                   "-e", "icmpv6.mld.multicast_address"], timeout=60, check=True)
    rows = []
    for line in proc.stdout.splitlines():
        src, mtype, dst, group = (line.split("\t") + [""] * 4)[:4]
        rows.append((src, int(mtype), dst, group))
    return rows


def snooped_groups(ns: lab.Namespace, port: str) -> set[str]:
    proc = ns.run(["bridge", "-j", "mdb", "show", "dev", BRIDGE], timeout=15, check=True)
    return {entry["grp"] for block in json.loads(proc.stdout or "[]") for entry in block.get("mdb", [])
            if entry.get("port") == port}


def solicited_node(address: str) -> str:
    low = int(ipaddress.IPv6Address(address)) & 0xFFFFFF
    return str(ipaddress.IPv6Address(0xFF02_0000_0000_0000_0000_0001_FF00_0000 | low))


def test_a_bridges_mldv1_queries_are_answered_with_mldv1_reports(
        start_stack: Callable[..., lab.Daemon], require_tools: Callable[..., None], tmp_path: Path) -> None:
    require_tools("tshark", "bridge")
    daemon = start_stack("--address6", lab.STACK_ADDRESS6, host_address=None, quiet_ipv6=False)
    daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured")
    link_local = daemon.wait_for_line(r"IPv6 address (fe80::[0-9a-f:]+)/64 \(link-local\) configured").group(1)
    groups = {solicited_node(link_local), solicited_node(lab.STACK_IP6)}
    ns = daemon.ns
    with capture_ipv6(ns, lab.TAP, tmp_path / "mld.pcap") as pcap:
        make_v1_querier(ns, lab.TAP)
        deadline = time.monotonic() + 20
        while not groups <= snooped_groups(ns, lab.TAP) and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1.5)  # one more query and its answers
    messages = mld_messages(ns, pcap)
    queries = [m for m in messages if m[1] == 130]
    assert queries, f"the bridge sent no query: {messages}"
    first_query = messages.index(queries[0])
    ours = [m for m in messages[first_query:] if m[0] == link_local]
    assert ours, f"pystack answered nothing: {messages}\n{daemon.stderr()}"
    assert {m[1] for m in ours} == {131}, ours  # MLDv1 Reports only, no MLDv2 report once v1 is heard
    assert all(dst == group for _src, _t, dst, group in ours), ours  # each to its own group (RFC 2710 3)
    assert {group for *_x, group in ours} == groups
    assert groups <= snooped_groups(ns, lab.TAP), "the bridge did not learn pystack's groups"
    counters = daemon.stop()
    assert counters.get("mld.v1_mode_entered") == 1 and counters.get("mld.v1_reports_sent", 0) >= 2, counters
    assert counters.get("drop.mld.bad_length", 0) == 0, counters
    assert not re.search(r"Traceback", daemon.stderr())
