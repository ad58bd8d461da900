"""Run-time measurement of a trained model: latency per image and peak memory.

Latency: ``warmup`` untimed calls, then timed calls until both ``min_repeats`` and
``min_seconds`` are reached (capped at ``max_repeats``); each call is synchronised on
CUDA; the median and p90 per image are recorded with the number of repeats.
Memory (``peak_mb``): what inference needs beyond the loaded model, at its peak: on CUDA
the allocator's peak above what was allocated before (peak reset first); on CPU the
growth of the resident set during inference in a freshly forked process (see
suite.memprobe). Totals are recorded beside it; "n/a" where neither can be read.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from suite import memprobe


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def latency(
    model: nn.Module,
    example: torch.Tensor,
    *,
    warmup: int = 5,
    min_repeats: int = 20,
    min_seconds: float = 0.2,
    max_repeats: int = 500,
) -> dict:
    """Per-image latency of ``model(example)`` in milliseconds."""
    model.eval()
    device = example.device
    for _ in range(warmup):
        model(example)
    _sync(device)
    times = []
    started = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() - started < min_seconds):
        t0 = time.perf_counter()
        model(example)
        _sync(device)
        times.append(time.perf_counter() - t0)
    per_image = sorted(t * 1000 / len(example) for t in times)
    return {
        "batch": len(example),
        "median_ms": statistics.median(per_image),
        "p90_ms": per_image[min(len(per_image) - 1, int(0.9 * len(per_image)))],
        "repeats": len(per_image),
    }


@torch.inference_mode()
def peak_memory(model: nn.Module, example: torch.Tensor, repeats: int = 3) -> dict:
    """Peak memory of inference on ``example``, with how it was measured."""
    model.eval()
    device = example.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        for _ in range(repeats):
            model(example)
        torch.cuda.synchronize(device)
        return {
            "kind": "cuda-allocator",
            "peak_mb": (torch.cuda.max_memory_allocated(device) - base) / 2**20,
            "allocated_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "reserved_peak_mb": torch.cuda.max_memory_reserved(device) / 2**20,
        }
    try:
        probe = memprobe.probe(model, example, repeats)
    except Exception as e:  # no /proc, no fork: say so rather than guess
        return {"kind": "n/a", "peak_mb": "n/a", "reason": f"{type(e).__name__}: {e}"}
    return {"kind": "cpu-rss-isolated", "peak_mb": probe["rss_peak_mb"] - probe["rss_before_mb"], **probe}
