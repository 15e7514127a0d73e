"""The labs the extra rows of ``make bench`` share: the kernel on both ends of a veth pair, pystack on its TAP.

Both are thin shapes over pystack_lab.lab (throwaway namespaces with a random suffix, processes stopped by PID,
everything removed on the way out). The kernel pair can have its offloads turned off, so that "plain frames"
means the same on both sides of a comparison: no TSO/GSO super-frames, no GRO, no checksum offload.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pystack_lab import impaired_wire, lab

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def counters_of(counters: dict[str, int], layer: str) -> dict[str, int]:
    """The daemon's drop counters and those of ``layer`` ("tcp", "udp"): what a row keeps in the JSON."""
    return {k: v for k, v in counters.items() if k.startswith(("drop", layer))}


PYSTACK6_FLAGS = ("--address6", lab.STACK_ADDRESS6, "--host-address6", lab.HOST_ADDRESS6)
"""``pystack run``'s flags for the IPv6 rows: its static address, and the kernel's side of the TAP (no DAD)."""


def address(ipv6: bool) -> str:
    """The server's address in the rows of a family: pystack's or the far end's of the kernel pair."""
    return lab.STACK_IP6 if ipv6 else lab.STACK_IP


def wait_ipv6(daemon: lab.Daemon) -> None:
    """Until pystack's static IPv6 address has passed DAD (a second or two after ``ready``)."""
    daemon.wait_for_line(r"IPv6 address 2001:db8::2/64 \(static\) configured", timeout=15)


@dataclass
class Pair:
    """The kernel on both ends: ``near`` (192.0.2.1, where the clients run) and ``far`` (192.0.2.2, servers);
    with ``ipv6``, 2001:db8::1 and 2001:db8::2 too."""

    near: lab.Namespace
    far: lab.Namespace
    info: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def kernel_pair(offload: bool = True, ipv6: bool = False) -> Iterator[Pair]:
    with lab.namespace() as near, lab.namespace() as far:
        lab.veth(near, "veth0", far, "veth1")
        changed: list[str] = []
        for ns, ifname, address, address6 in ((near, "veth0", lab.HOST_ADDRESS, lab.HOST_ADDRESS6),
                                              (far, "veth1", lab.STACK_ADDRESS, lab.STACK_ADDRESS6)):
            if ipv6:
                ns.add_address6(ifname, address6)  # nodad: usable at once
            else:
                ns.disable_ipv6(ifname)
            if not offload:
                changed += impaired_wire.disable_offloads(ifname, ns.name)
            ns.add_address(ifname, address)
            ns.link_up(ifname)
        yield Pair(near, far, {"offloads_turned_off": sorted(set(changed))} if not offload else {})


def spawn_ready(ns: lab.Namespace, argv: Sequence[str], what: str, timeout: float = 15.0,
                **popen_kw: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` in ``ns`` and wait for the ``ready`` line it prints on stderr (bounded in time)."""
    proc = ns.spawn(list(argv), stderr=subprocess.PIPE, text=True, **popen_kw)
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], timeout)
    line = proc.stderr.readline() if ready else ""
    if "ready" not in line:
        raise lab.LabError(f"{what} did not start: {line.strip() or f'no ready line in {timeout:.0f} s'}")
    return proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far (proc(5), fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise lab.LabError(f"no VmRSS for pid {pid}")


def slab_bytes() -> int:
    """The kernel's slab memory, machine-wide (SReclaimable + SUnreclaim in /proc/meminfo)."""
    total = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith(("SReclaimable:", "SUnreclaim:")):
                total += int(line.split()[1]) * 1024
    return total


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
