"""The daemon's heap: keep freed memory for reuse instead of handing it back to the kernel at every free.

glibc gives the top of its heap back to the kernel whenever more than M_TRIM_THRESHOLD (128 KiB at first)
is free there, and the next allocation faults those pages in again, zeroed by the kernel. A transfer
allocates and frees 64 KiB buffers (file chunks, super-frames) thousands of times a second, and whether
they sit at the top of the heap depends on the process's history: in some daemons nearly every byte sent
was faulted in afresh, at a cost in system time and download speed (see docs/performance.md, "The daemon
keeps the memory it frees").

So ``pystack run`` fixes the thresholds (``RuntimeConfig.heap_*``): frees of less than the mmap threshold stay
in the heap, and the heap keeps up to the trim threshold free at its top. What pystack holds is bounded by its
own limits (buffers, tables); this only stops the memory it frees from going back and forth. A program that
embeds pystack decides for its own process (:func:`keep_freed_memory` is public). Other C libraries than glibc
are left alone.
"""

from __future__ import annotations

import ctypes
import logging
import platform

from pystack.config import RuntimeConfig

log = logging.getLogger("pystack")

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(config: RuntimeConfig | None = None) -> bool:
    """Set the heap thresholds of ``config`` (the defaults when None; glibc only); True if they were set."""
    config = config or RuntimeConfig()
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, config.heap_mmap_threshold), (_M_TRIM_THRESHOLD, config.heap_trim_threshold),
        (_M_TOP_PAD, config.heap_top_pad)))
    if not done:
        log.debug("mallopt refused a heap threshold; glibc's defaults stay")
    return done
