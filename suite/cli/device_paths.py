"""The device paths ``rpg-bench doctor`` exercises (suite.cli.doctor runs them): one
function each, taking the device and a scratch folder and returning its figures (with a
``summary``), or raising ``Failed`` with what it did instead. Each GPU path has a CPU
counterpart that runs everywhere (tests/test_doctor.py runs them all on a CPU).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

import rpg
from suite import archs, methods, tasks
from suite.cells import Cell
from suite.measure import runtime, speed
from suite.system import nvml
from suite.training import callbacks

TIMING_AGREEMENT = (0.8, 1.02)  # device-timed total / wall-clock total over the same calls
KNOWN_MB = 64  # the allocation the allocator's peak must report
SUBPROCESS_TIMEOUT = 900
TINY_SUITE = """name = "doctor"
[[experiment]]
name = "doctor"
task = "digits"
arch = "resnet18-cifar"
width = 0.25
methods = ["rpg", "plain"]
budgets = ["20K"]
seeds = 1
"""


class Failed(Exception):
    """A path ran but did not do what it must; ``figures`` says what it did."""

    def __init__(self, message: str, figures: dict | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timing(device: torch.device, _: Path) -> dict:
    """Per-call device timing (CUDA events on GPU) summed, against the wall clock."""
    side = 2048 if device.type == "cuda" else 768
    a = torch.randn(side, side, device=device)
    call = lambda: a @ a  # noqa: E731
    time_one = runtime.timer(device)
    for _ in range(3):
        call()
    _sync(device)
    t0 = time.perf_counter()
    timed = sum(time_one(call) for _ in range(20))
    _sync(device)
    wall = time.perf_counter() - t0
    figures = {"timed_s": timed, "wall_s": wall, "agreement": timed / wall}
    low, high = TIMING_AGREEMENT
    if not low <= timed / wall <= high:
        raise Failed(f"device timing sums to {timed / wall:.2f} of the wall clock (expected {low}-{high})", figures)
    return figures | {"summary": f"timed/wall {timed / wall:.3f}"}


def nvml_reading(device: torch.device, _: Path) -> dict:
    """NVML sees a known allocation appear on the device."""
    if nvml.used_mb(device) is None:
        raise Failed("NVML is not available: is nvidia-ml-py installed, and does nvidia-smi see the driver?")
    torch.cuda.empty_cache()
    before = nvml.used_mb(device)
    block = torch.ones(512 * 2**20 // 4, device=device)
    _sync(device)
    after = nvml.used_mb(device)
    del block
    torch.cuda.empty_cache()
    figures = {"before_mb": before, "after_mb": after, "allocated_mb": 512, "gpu": nvml.fingerprint(device)}
    if after - before < 500:
        raise Failed(f"NVML saw {after - before:.0f} MiB appear for a 512 MiB allocation", figures)
    return figures | {"summary": f"+{after - before:.0f} MiB for 512 MiB"}


def allocator(device: torch.device, _: Path) -> dict:
    """The allocator's peak over a workload that allocates a known size."""
    figures = runtime.cuda_memory(lambda: torch.ones(KNOWN_MB * 2**20 // 4, device=device), device)
    if not KNOWN_MB <= figures["peak_mb"] <= KNOWN_MB + 2:
        raise Failed(f"peak {figures['peak_mb']:.1f} MiB for a {KNOWN_MB} MiB allocation", figures)
    return figures | {"summary": f"peak {figures['peak_mb']:.1f} MiB for {KNOWN_MB} MiB"}


def _digits_rpg(device: torch.device) -> tuple[Cell, methods.Built]:
    cell = Cell("doctor", "doctor", "digits", "resnet18-cifar", 0.25, "rpg", 20_000, 0, "smoke")
    built = methods.build(methods.get("rpg"), cell.net(), cell.budget, cell.seed)
    built.model.to(device)
    return cell, built


def cpu_memory(device: torch.device, _: Path) -> dict:
    """The forked-process probe: the peak grows with the batch, training above inference."""
    cell, built = _digits_rpg(device)
    deployed, loss = rpg.materialize(built.model), tasks.get("digits").loss

    def peak(workload: str, n: int) -> dict:
        batch = (torch.randn(n, 1, 8, 8), torch.randint(10, (n,)))
        return runtime.memory(workload, cell.config(), built.setting, built.model, deployed, batch, loss)

    small, large, step = peak("inference", 8), peak("inference", 2048), peak("train_step", 2048)
    figures = {"inference_8": small, "inference_2048": large, "train_step_2048": step}
    if any(m["peak_mb"] is None for m in figures.values()):
        raise Failed(f"the probe measured nothing: {small.get('reason')}", figures)
    if not step["peak_mb"] > large["peak_mb"] > small["peak_mb"]:
        raise Failed("peaks out of order (train step 2048 > inference 2048 > inference 8 expected)", figures)
    return figures | {"summary": f"inference {small['peak_mb']:.1f} -> {large['peak_mb']:.1f} MiB, step larger"}


def onnx_runtime(device: torch.device, _: Path) -> dict:
    """Export the deployed network, run it on the device's ONNX Runtime provider, compare."""
    _, built = _digits_rpg(device)
    x = torch.randn(16, 1, 8, 8, device=device)
    result = runtime.onnx(rpg.materialize(built.model), x[:1], x)
    want = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    if result["status"] != "ok":
        raise Failed(f"ONNX {result['status']}: {result.get('reason')}", result)
    if result["provider"] != want:
        raise Failed(f"ran on {result['provider']}, not {want} (is onnxruntime-gpu installed for this CUDA?)", result)
    if not result["matches"]:
        raise Failed(f"ONNX Runtime differs from torch by {result['max_abs_diff']:.2g}", result)
    return result | {"summary": f"{want}, max diff {result['max_abs_diff']:.1e}"}


def _converted(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    model = archs.Net(archs.get("resnet18-cifar"), 0.25, 3, 10).build()
    generated = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    return rpg.convert(model, generated // 3, seed=0).to(device)  # 3 reads per element: order matters


def _small(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )  # fmt: skip
    return rpg.convert(net, 300, seed=0).to(device)


def backward(device: torch.device, _: Path) -> dict:
    """Under deterministic algorithms, two backward passes agree bit for bit, and the
    inverse-table gradient agrees with index_add's."""
    model = _converted(device)
    data = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32, generator=data).to(device), torch.randint(10, (16,), generator=data).to(device)
    ring = next(iter(rpg.rings(model).values()))

    def grads() -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        first, second = grads(), grads()
        ring.grad_path = "index_add"
        other = grads()
    finally:
        ring.grad_path = "auto"
        torch.use_deterministic_algorithms(was)
    identical = all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    differ = max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-12)) for a, b in zip(first, other, strict=True))
    figures = {"bitwise_identical": identical, "inverse_vs_index_add_rel": differ, "grad_path": ring.grad_path_in_use}
    if not identical:
        raise Failed("two deterministic backward passes differ", figures)
    if differ > 1e-4:
        raise Failed(f"the inverse-table gradient differs from index_add's by {differ:.2g} (relative)", figures)
    return figures | {"summary": f"bitwise identical; paths agree to {differ:.1e}"}


def step_cost(device: torch.device, _: Path) -> dict:
    """``rpg-bench speed``'s comparison (a shorter one on the CPU)."""
    cuda = device.type == "cuda"
    batch, steps, warmup, seconds = (64, 30, 3, 4.0) if cuda else (8, 4, 1, 0.5)
    ring_size = speed.ring_size(speed.DEFAULT_RING, "resnet18-cifar")
    result = speed.compare("resnet18-cifar", batch, ring_size, steps, warmup, device, seconds)
    train = speed.ratio(result["train"][1], result["train"][0])
    deployed = {str(b): speed.ratio(r, p) for b, (p, r) in result["deployed"].items()}
    worst = max(d["ratio"] for d in deployed.values())
    figures = {
        "arch": "resnet18-cifar",
        "batch": batch,
        "ring_size": ring_size,
        "train": train | {"target": speed.TRAIN_TARGET, "met": train["ratio"] <= speed.TRAIN_TARGET},
        "deployed": deployed | {"target": speed.DEPLOYED_TARGET, "met": worst <= speed.DEPLOYED_TARGET},
        "others_cores": result["others_cores"],
    }
    met = "met" if figures["train"]["met"] else "NOT met"
    return figures | {"summary": f"train {train['ratio']:.3f}x ({met}), deployed {worst:.3f}x at batch {batch}"}


def _batch(device: torch.device, channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32, generator=data).to(device), torch.randint(10, (16,), generator=data).to(device)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


def bf16(device: torch.device, _: Path) -> dict:
    """A converted ResNet trains under bf16 autocast (channels-last on CUDA, as
    suite.training.callbacks.BF16 runs it): finite, falling loss; fp32 ring."""
    cuda = device.type == "cuda"
    model = _converted(device).train().to(memory_format=torch.channels_last if cuda else torch.contiguous_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = _batch(device, channels_last=cuda)
    losses, dtype = [], None
    for _ in range(6):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(x)
        dtype = out.dtype
        loss = nn.functional.cross_entropy(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    ring = next(iter(rpg.rings(model).values()))
    figures = {"losses": losses, "output_dtype": str(dtype), "ring_dtype": str(ring.weight.dtype)}
    if dtype != torch.bfloat16:
        raise Failed(f"autocast did not engage: the output is {dtype}", figures)
    if not all(map(torch.isfinite, map(torch.tensor, losses))) or not losses[-1] < losses[0]:
        raise Failed(f"loss went {losses[0]:.3f} -> {losses[-1]:.3f} over 6 steps on one batch", figures)
    if ring.weight.dtype != torch.float32:
        raise Failed(f"the ring is {ring.weight.dtype}, not float32", figures)
    return figures | {"summary": f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, ring float32"}


def compiled(device: torch.device, _: Path) -> dict:
    """A converted network's training step through torch.compile, one graph (fullgraph: the
    rings break nothing), no recompile after the first step, the eager step's losses; on
    CUDA a ResNet in bf16 and channels-last, as a --compile nightly cell trains."""
    cuda = device.type == "cuda"
    losses = {}
    for name in ("eager", "compiled"):
        # The CPU counterpart compiles a small converted network: the path, not the cost.
        model = _converted(device) if cuda else _small(device)
        model = model.train().to(memory_format=torch.channels_last if cuda else torch.contiguous_format)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x, y = _batch(device, channels_last=cuda)
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        options = callbacks.compile_options(device)  # as --compile trains: suite.training.callbacks says why
        step = model if name == "eager" else torch.compile(model, fullgraph=True, options=options)
        losses[name] = []
        for _ in range(4):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = nn.functional.cross_entropy(step(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses[name].append(loss.item())
    graphs = int(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    figures = {"losses": losses, "graphs": graphs, "precision": "bf16" if cuda else "fp32"}
    if graphs != 1:
        raise Failed(f"{graphs} graphs compiled over 4 identical steps: it recompiled", figures)
    if not torch.allclose(torch.tensor(losses["eager"]), torch.tensor(losses["compiled"]), rtol=0.02):
        raise Failed("the compiled step's losses are not the eager step's", figures)
    return figures | {
        "summary": f"1 graph, losses {losses['compiled'][0]:.3f} -> {losses['compiled'][-1]:.3f} as eager"
    }


def _suite_run(device: torch.device, work: Path, launcher: list[str], extra: list[str]) -> list[dict]:
    """Run the tiny suite through ``launcher``; its records."""
    suite = work / "doctor.toml"
    suite.write_text(TINY_SUITE)
    out = work / "run"
    cmd = [*launcher, "--suite", str(suite), "--profile", "smoke", "--device", device.type, "--out", str(out)]
    cmd += ["--no-progress", "--no-open", "--no-onnx", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise Failed(f"exit {proc.returncode}: {tail}", {"command": cmd, "stderr": proc.stderr[-4000:]})
    return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]


def jobs(device: torch.device, work: Path) -> dict:
    """Two cells side by side (``--jobs 2``), one per GPU on CUDA."""
    got = _suite_run(device, work, [sys.executable, "-m", "suite"], ["--jobs", "2"])
    figures = {"cells": {r["config"]["method"]: (r["status"], r["env"]["device"], r.get("jobs")) for r in got}}
    if len(got) != 2 or any(r["status"] != "ok" for r in got):
        raise Failed("the two cells did not both finish", figures)
    used = {r["env"]["device"] for r in got}
    if device.type == "cuda" and used != {"cuda:0", "cuda:1"}:
        raise Failed(f"the cells ran on {sorted(used)}, not one per GPU", figures)
    return figures | {"summary": f"2 cells ok on {', '.join(sorted(used))}"}


def torchrun(device: torch.device, work: Path) -> dict:
    """One cell under ``torchrun --nproc_per_node 1``: DDP, and SyncBatchNorm on CUDA."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "suite"]
    got = _suite_run(device, work, launcher, ["--methods", "rpg"])
    figures = {"records": [{"status": r["status"], "distributed": r["distributed"]} for r in got]}
    if len(got) != 1 or got[0]["status"] != "ok":
        raise Failed("the cell did not finish", figures)
    sync = got[0]["distributed"].get("sync_batchnorm")
    if sync != (device.type == "cuda"):
        raise Failed(f"SyncBatchNorm was {'on' if sync else 'off'} on {device.type}", figures)
    return figures | {"summary": f"1 rank, {'SyncBatchNorm' if sync else 'gloo, no SyncBatchNorm (CPU)'}"}
