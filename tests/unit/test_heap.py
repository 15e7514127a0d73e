"""pystack.heap: the daemon keeps the memory it frees for reuse instead of faulting it in afresh."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pystack import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_freed_buffers_are_reused_without_page_faults():
    """A fresh process with the thresholds set allocates, fills and frees a send-buffer-sized bytearray
    and a super-frame-sized bytes over and over: after the first round no page is faulted in again."""
    code = textwrap.dedent("""
        import resource
        from pystack.heap import keep_freed_memory
        assert keep_freed_memory()
        def churn():
            big = bytearray(4 << 20)
            big[::4096] = b"x" * len(big[::4096])  # touch every page
            frame = bytes(65536 + 100)
            del big, frame
        churn()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(50):
            churn()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    faults = int(out.stdout.strip())
    assert faults < 50, f"{faults} page faults in 50 rounds (a 4 MiB buffer is 1024 pages; glibc's defaults gave 1030)"


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(heap.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert heap.keep_freed_memory() is False
