"""The CPU's memory allocator told to keep what a training step frees for the next step.

On CUDA, torch's caching allocator keeps freed blocks for the next step. On a CPU torch
asks malloc, and glibc's defaults return large blocks to the kernel (``munmap``, or a trim
of the heap's top) as soon as they are freed, so the next step faults the same pages in
again, zero-filled: with plain and RPG steps alternating, as `rpg-bench speed` times them,
an RPG step of CIFAR ResNet-18 at batch 64 faulted in ~37K pages (~150 MB) and plain ~10K,
80 ms against 20 ms of kernel time a step. Raising glibc's mmap and trim thresholds (the
``mallopt`` knobs behind ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``) makes it
keep them, as CUDA's allocator does: every method, plain included, trains in the same
process under the same setting, and each record's ``env.allocator`` says which it was.

The memory probe (suite.measure.memprobe) runs in a process of its own with the opposite
setting (every block returned on free), so peak memory is measured as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# glibc's mallopt parameters (malloc.h), and the values set: blocks up to 32 MiB (glibc's
# largest mmap threshold on 64-bit) come from the heap, and the heap's top is returned to
# the kernel only beyond 256 MiB free.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
KEPT = f"glibc, freed memory kept (mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim {TRIM_THRESHOLD >> 20} MiB)"

_state = "default"


def keep_freed() -> str:
    """Set glibc's thresholds in this process (once); what the allocator now is, as records say it.

    A user's own ``MALLOC_*`` environment wins: the allocator is then left as they set it.
    """
    global _state
    if _state != "default":
        return _state
    if any(k.startswith("MALLOC_") for k in os.environ):
        _state = "glibc, as the environment's MALLOC_* variables set it"
    elif platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD):
            _state = KEPT
    return _state


def state() -> str:
    """What the allocator is in this process: ``default`` until `keep_freed` changed it."""
    return _state
