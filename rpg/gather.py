"""A 1-D gather on two CPU threads: the ring's memory-bound passes using the second core.

ATen's 1-D ``index_select`` is a serial loop: on a 2-core CPU a generation's gathers left
one core idle while convolutions use both (README, "RPG at run time"). Here
the gather's first half runs on one worker thread while the calling thread does the
second half; torch ops release the GIL, and each output element is computed exactly as
by one ``index_select``, so the result is bit-identical to the serial gather.

The worker only runs the (serial) gather kernel, never a parallel op, so it never starts
an OpenMP team of its own beside torch's. Small gathers, non-CPU tensors, and processes
limited to one torch thread (``--jobs`` workers) take the plain serial call.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch

# Below this many elements a hand-off to the worker (tens of microseconds) saves nothing.
MIN_ELEMENTS = 1 << 18

_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    # A forked child (the suite's memory probes) has no worker thread: it makes its own.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _worker() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(1, thread_name_prefix="rpg-gather")
    return _pool


def gather(source: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = source[index]`` for 1-D tensors (``out`` preallocated, contiguous), no autograd."""
    n = index.numel()
    if out.device.type != "cpu" or n < MIN_ELEMENTS or torch.get_num_threads() < 2:
        return torch.index_select(source, 0, index, out=out)
    mid = n // 2
    inference = torch.is_inference_mode_enabled()  # thread-local: the worker takes the caller's

    def first_half() -> None:
        with torch.inference_mode(inference), torch.no_grad():
            torch.index_select(source, 0, index[:mid], out=out[:mid])

    future = _worker().submit(first_half)
    try:
        torch.index_select(source, 0, index[mid:], out=out[mid:])
    finally:
        future.result()
    return out
