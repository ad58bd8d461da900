"""Run-time measurement of a trained model: latency, memory, FLOPs, ONNX Runtime.

Latency: ``warmup`` untimed calls, then timed calls until both ``min_repeats`` and
``min_seconds`` (20 calls, 0.1 s by default) are reached (capped at ``max_repeats``), timed with CUDA events on GPU
and perf_counter on CPU; the median and p90 per image are recorded with the number of
repeats. The spread (p90 / median) must be at most ``SPREAD``; otherwise the measurement
is repeated (up to three attempts, the tightest kept) and flagged ``stable: false``.

Memory (``peak_mb``): what a workload needs beyond the loaded model, at its peak, for
inference on the deployed form and for one training step (forward, backward, SGD with
momentum) on the training form. On CUDA: the allocator's peak above what was allocated
before (peak reset first), with the allocated and reserved totals and NVML's view of the
device. On CPU: the resident-set growth in a freshly forked process (suite.measure.memprobe).
null with the reason where neither can be read.

ONNX: the deployed model exported (by tracing; where tracing cannot follow the model, by
the dynamo exporter), run by ONNX Runtime, checked against torch and timed.

Training step: one SGD step at the training batch on a copy of the model (``train_step``),
per image, timed as latency is.

FLOPs: one forward of one image, counted by torch.utils.flop_counter (a multiply-add is
2 FLOPs; convolutions and matmuls only).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from suite.measure import memprobe
from suite.system import nvml

SPREAD = 1.10  # p90 / median above this is an unstable timing


def timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """A function that times one call, in seconds, synchronised on the device."""
    if device.type == "cuda":

        def time_cuda(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000

        return time_cuda

    def time_cpu(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return time_cpu


def time_calls(
    fn: Callable[[], object],
    images: int,
    device: torch.device,
    *,
    warmup: int = 5,
    min_repeats: int = 20,
    min_seconds: float = 0.1,
    max_repeats: int = 500,
    attempts: int = 3,
) -> dict:
    """Per-image latency of ``fn`` (which processes ``images`` images) in milliseconds."""
    time_one = timer(device)
    best = None
    for attempt in range(1, attempts + 1):
        for _ in range(warmup):
            fn()
        times = []
        started = time.perf_counter()
        while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() - started < min_seconds):
            times.append(time_one(fn))
        per_image = np.sort(np.array(times) * 1000 / images)
        median, p90 = float(np.median(per_image)), float(np.quantile(per_image, 0.9))
        result = {
            "batch": images,
            "median_ms": median,
            "p90_ms": p90,
            "repeats": len(per_image),
            "spread": p90 / median,
            "attempts": attempt,
        }
        if best is None or result["spread"] < best["spread"]:
            best = result
        if result["spread"] <= SPREAD:
            break
    best["stable"] = best["spread"] <= SPREAD
    best["attempts"] = attempt
    return best


def latency(model: nn.Module, example: torch.Tensor, **kw) -> dict:
    model.eval()

    def call():
        with torch.inference_mode():
            model(example)

    return time_calls(call, len(example), example.device, **kw)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Callable, **kw) -> dict:
    """Per-image time of one training step of ``model`` on the batch (forward, loss,
    backward, SGD with momentum): what training costs, generation of the weights included.
    On a copy, at learning rate 0: the model measured is not changed (BN's statistics
    neither)."""
    trial = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD([p for p in trial.parameters() if p.requires_grad], lr=0.0, momentum=0.9)

    def call():
        loss(trial(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return time_calls(call, len(x), x.device, **kw)


def flops(model: nn.Module, example: torch.Tensor) -> dict:
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example[:1])
    return {"forward_flops": int(counter.get_total_flops()), "unit": "FLOPs per image (multiply-add = 2)"}


def cuda_memory(fn: Callable[[], object], device: torch.device) -> dict:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return {
        "kind": "cuda-allocator",
        "peak_mb": (torch.cuda.max_memory_allocated(device) - base) / 2**20,
        "allocated_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20,
        "reserved_peak_mb": torch.cuda.max_memory_reserved(device) / 2**20,
        "nvml_used_mb": nvml.used_mb(device),
    }


def memory(workload: str, config: dict, setting: dict, model: nn.Module, deployed: nn.Module, batch, loss) -> dict:
    """Peak memory of ``workload``: "inference" (the deployed form) or "train_step" (one
    training step of the training form), on an (inputs, targets) ``batch``."""
    x, y = batch
    if x.device.type == "cuda":

        def infer():
            deployed.eval()
            with torch.inference_mode():
                deployed(x)

        def step():
            model.train()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
            loss(model(x), y).backward()
            optimizer.step()
            model.zero_grad(set_to_none=True)

        return cuda_memory(infer if workload == "inference" else step, x.device)
    form = "deployed" if workload == "inference" else "training"
    try:
        probe = memprobe.probe(config, setting, model.state_dict(), (x.cpu(), y.cpu()), form=form, workload=workload)
        return {"kind": "cpu-rss-isolated", **probe}
    except Exception as e:  # no /proc, no fork: say so rather than guess
        return {"kind": "not measured", "peak_mb": None, "reason": f"{type(e).__name__}: {e}"}


def onnx(
    deployed: nn.Module,
    x1: torch.Tensor,
    xn: torch.Tensor,
    quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict:
    """Export the deployed model, check ONNX Runtime agrees with torch, time it (inside
    ``quiet()``: suite.system.quiet's measuring, under --jobs)."""
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:  # the exporter needs onnx and onnxscript, the check onnxruntime: the [onnx] extra
        return {
            "status": "not installed",
            "reason": f"{', '.join(missing)} not installed: pip install 'rpg-bench[onnx]'",
        }
    import onnxruntime as ort

    deployed = deployed.eval()
    cuda = x1.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
    provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/model.onnx"
            exporter = _export(deployed.cpu(), x1.cpu().contiguous(), path)
            session = ort.InferenceSession(path, providers=[provider])
        deployed.to(x1.device)
        name = session.get_inputs()[0].name
        out = {
            "status": "ok",
            "provider": session.get_providers()[0],
            "onnxruntime": ort.__version__,
            "exporter": exporter,
        }
        arrays = {len(x): x.cpu().numpy() for x in (x1, xn)}
        with torch.inference_mode():
            expected = deployed(xn).float().cpu().numpy()
        got = session.run(None, {name: arrays[len(xn)]})[0]
        out["max_abs_diff"] = float(np.abs(got - expected).max())
        out["matches"] = bool(np.allclose(got, expected, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(expected).max())))
        with quiet():
            for key, n in (("batch1", len(x1)), ("batchN", len(xn))):
                out[key] = time_calls(lambda a=arrays[n]: session.run(None, {name: a}), n, torch.device("cpu"))
        return out
    except Exception as e:  # an export failure is recorded with the cell, not fatal to it
        deployed.to(x1.device)
        return {"status": "failed", "provider": provider, "reason": f"{type(e).__name__}: {str(e)[:500]}"}


def _export(model: nn.Module, x1: torch.Tensor, path: str) -> str:
    """Write ``model`` to ``path`` as ONNX with a free batch size; returns the exporter used.

    Tracing (the TorchScript exporter) first: a dense network exports in ~0.1 s against the
    dynamo exporter's 2.5-5 s here, most of a digits cell's measurement. A trace records one
    path through the model, so any tracer warning (a tensor turned into a Python value: a
    data-dependent branch or loop count, as in MDEQ's solver) makes it fail, and the dynamo
    exporter, which follows such code or refuses it, takes over. ``x1`` is contiguous: a
    channels-last example would pin the batch size."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # exporters narrate
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", torch.jit.TracerWarning)
        try:
            torch.onnx.export(
                model, (x1,), path, dynamo=False, input_names=["input"], dynamic_axes={"input": {0: "batch"}}
            )
            return "torchscript"
        except Exception:  # noqa: BLE001 (tracing refused, or removed from this torch: the dynamo exporter)
            pass
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x1,),
            path,
            dynamo=True,
            optimize=False,
            input_names=["input"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
        )
        return "dynamo"
