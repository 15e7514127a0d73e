"""Where the work of a TAP runs: pin pystack's loop to one CPU and let the kernel process the frames
pystack writes on the others.

Each frame pystack writes to its TAP is *received* by the kernel, and by default the kernel runs its
whole receive path (IP, TCP, waking the reader) inside pystack's write() call, on pystack's CPU. At
plain 1500-byte frames that is about as much CPU time as pystack's own per-segment work. Receive Packet
Steering (RPS, the kernel's Documentation/networking/scaling.rst) on the TAP's receive queue hands that
work to other CPUs instead, the usual remedy for a single-queue device: pystack keeps a core to itself.
"""

from __future__ import annotations

import os
from pathlib import Path


class SteeringError(Exception):
    """One line for the user: why the CPU could not be taken or the TAP's work not moved."""


def cpu_mask(cpus: set[int]) -> str:
    """The kernel's bitmap format for rps_cpus: hex, in comma-separated 32-bit groups."""
    value = sum(1 << c for c in cpus)
    digits = f"{value:x}"
    digits = digits.zfill((len(digits) + 7) // 8 * 8)
    return ",".join(digits[i:i + 8] for i in range(0, len(digits), 8))


def pin_and_steer(tap: str, cpu: int, sysfs: Path = Path("/sys/class/net")) -> set[int]:
    """Run this process on ``cpu`` only and the TAP's kernel receive work on the other CPUs we may use.
    Returns those other CPUs."""
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise SteeringError(f"--cpu {cpu}: this process may only use CPUs {_ranges(allowed)}")
    others = allowed - {cpu}
    if not others:
        raise SteeringError(f"--cpu {cpu}: no other CPU is available for the kernel's share of the work")
    queues = sorted((sysfs / tap / "queues").glob("rx-*/rps_cpus"))
    if not queues:
        raise SteeringError(f"--cpu: {sysfs / tap / 'queues'} has no rps_cpus (no sysfs for this network "
                            "namespace, or a kernel without RPS)")
    mask = cpu_mask(others)
    for path in queues:
        try:
            path.write_text(mask + "\n")
        except OSError as exc:
            raise SteeringError(f"--cpu: cannot write {path}: {exc.strerror}") from None
    os.sched_setaffinity(0, {cpu})
    return others


def _ranges(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
