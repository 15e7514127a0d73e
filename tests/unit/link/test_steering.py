"""``pystack run --cpu``: the rps_cpus mask format and the pinning, against a fake sysfs tree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystack.link.steering import SteeringError, cpu_mask, pin_and_steer


def test_mask_is_hex_in_32_bit_groups() -> None:
    """The kernel parses rps_cpus as comma-separated 32-bit hex words, most significant first."""
    assert cpu_mask({1}) == "00000002"
    assert cpu_mask({0, 1, 2, 3}) == "0000000f"
    assert cpu_mask({0, 33}) == "00000002,00000001"


@pytest.fixture
def restore_affinity() -> Iterator[set[int]]:
    before = os.sched_getaffinity(0)
    try:
        yield before
    finally:
        os.sched_setaffinity(0, before)


def fake_tap(root: Path, name: str, queues: int) -> list[Path]:
    paths = []
    for q in range(queues):
        path = root / name / "queues" / f"rx-{q}" / "rps_cpus"
        path.parent.mkdir(parents=True)
        path.write_text("00000000\n")
        paths.append(path)
    return paths


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_pins_to_one_cpu_and_steers_every_queue_to_the_others(tmp_path: Path, restore_affinity: set[int]) -> None:
    queues = fake_tap(tmp_path, "pst0", 2)
    cpu = min(restore_affinity)
    others = pin_and_steer("pst0", cpu, sysfs=tmp_path)
    assert others == restore_affinity - {cpu}
    assert os.sched_getaffinity(0) == {cpu}
    for path in queues:
        assert path.read_text() == cpu_mask(others) + "\n"


def test_refuses_a_cpu_it_may_not_use(tmp_path: Path, restore_affinity: set[int]) -> None:
    fake_tap(tmp_path, "pst0", 1)
    with pytest.raises(SteeringError, match="may only use CPUs"):
        pin_and_steer("pst0", max(restore_affinity) + 1000, sysfs=tmp_path)
    assert os.sched_getaffinity(0) == restore_affinity


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_says_why_when_the_tap_has_no_rps_queue(tmp_path: Path, restore_affinity: set[int]) -> None:
    """No sysfs for the namespace (or no RPS in the kernel): one line, and the process is not pinned."""
    with pytest.raises(SteeringError, match="no rps_cpus"):
        pin_and_steer("pst0", min(restore_affinity), sysfs=tmp_path)
    assert os.sched_getaffinity(0) == restore_affinity
