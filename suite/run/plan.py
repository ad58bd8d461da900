"""What a suite will cost before it runs: cells, compute and hours (``rpg-bench plan``).

A cell's compute is counted, not guessed: torch's flop counter runs one forward of the
network that trains (the reference network for the sharing methods, K unrolled blocks
for rpg-msK, the network shrunk to its budget for plain and mdeq), and a training step
costs three forwards (the backward pass about two; for MDEQ, whose forward is a solve and
whose backward another, this is rougher). Per cell: epochs x (3 x train + val) examples,
plus one pass over test, at the sizes the profile reads: the real data set's, or the
generated data's for a profile that generates its data (smoke).

Hours are in the unit of the device the profile is meant for (its recipe table's
``device``): GPU-hours, or CPU core-hours. They follow from a sustained throughput of one
GPU or one CPU core: an assumption (``--tflops``) or, better, the rate a finished run
achieved on the same hardware (``--calibrate OUT``: its cells' counted FLOPs over their
recorded seconds, measurement included, per core on a CPU); a calibrated rate costs every
cell on the device its run used.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from suite import methods, records, tasks
from suite.archs import Net
from suite.cells import Cell
from suite.errors import UsageError
from suite.measure import runtime

UNITS = {"gpu": "GPU-hours", "cpu": "CPU core-hours"}
PER = {"gpu": "GPU", "cpu": "CPU core"}
# Sustained TFLOP/s of one GPU by training precision: assumptions, stated wherever they
# are used (docs/reproducing/index.md). bf16 at 4x fp32: what autocast and channels-last sustain on 32-pixel
# images of a current GPU is far below its peak ratio; --calibrate from a finished run wins.
ASSUMED_TFLOPS = {"fp32": 10.0, "bf16": 40.0}
# Sustained GFLOP/s of one CPU core training these small convnets, measured: the committed
# fashion-cpu sample (84 cells, fp32, two threads each on a 2-core AMD EPYC) sustained 22.0
# per core, `rpg-bench plan --suite fashion --calibrate reports/samples/fashion-cpu`, and
# the digits sample (one thread per cell) 17.9, `rpg-bench plan --calibrate
# reports/samples/digits-cpu`; measurement (latency, memory, ONNX) included. Any precision.
ASSUMED_CORE_GFLOPS = 20.0


def assumed() -> str:
    return ", ".join(f"{v:g} {k}" for k, v in ASSUMED_TFLOPS.items())


def check_tflops(tflops: float | None) -> None:
    """A given --tflops must be a positive number (None: the assumed rates)."""
    if tflops is not None and not tflops > 0:
        raise UsageError(f"--tflops must be positive, got {tflops}")


def device(cell: Cell) -> str:
    """The device the cell's profile is meant for: "cpu" or "gpu" (suite/recipes/<task>.toml)."""
    return tasks.get(cell.task).devices[cell.profile]


def _flops_text(flops: float) -> str:
    return f"{flops / 1e12:.3g} TFLOP/s" if flops >= 1e12 else f"{flops / 1e9:.3g} GFLOP/s"


@dataclass(frozen=True)
class Rate:
    """The sustained FLOP/s of one unit of a device (a GPU, or one CPU core) that cells are
    costed at. ``tflops`` None: each cell's device's assumed rate (on a GPU, its precision's).
    ``device`` None: each cell on its own profile's device; a calibrated rate names the device
    its run used, and every cell is costed there. ``source`` says where the rate came from."""

    tflops: float | None = None
    device: str | None = None
    source: str = "assumed"

    def of(self, cell: Cell) -> tuple[float, str]:
        """FLOP/s of one unit, and the device ("cpu" or "gpu") the cell is costed on."""
        where = self.device or device(cell)
        if self.tflops:
            return self.tflops * 1e12, where
        if where == "cpu":
            return ASSUMED_CORE_GFLOPS * 1e9, where
        return ASSUMED_TFLOPS[cell.recipe().precision] * 1e12, where

    def describe(self, cells: list[Cell]) -> str:
        """The rate ``cells`` are costed at, in words: what it is and where it came from."""
        devices = sorted({self.of(c)[1] for c in cells}, reverse=True)  # GPU first
        if self.tflops:
            rates = [f"{_flops_text(self.tflops * 1e12)} per {PER[where]}" for where in devices]
            return f"{' and '.join(rates)} ({self.source})"
        rates = [
            f"{ASSUMED_CORE_GFLOPS:g} GFLOP/s per CPU core" if where == "cpu" else f"{assumed()} TFLOP/s per GPU"
            for where in devices
        ]
        why = "; a CPU core's is what the committed CPU samples sustained" if "cpu" in devices else ""
        return f"{' and '.join(rates)} ({self.source}{why})"


def given(tflops: float | None) -> Rate:
    """The rate --tflops states (checked), or each device's assumed rate without it."""
    check_tflops(tflops)
    return Rate(tflops, source="given by --tflops") if tflops else Rate()


def hours(cell: Cell, rate: Rate) -> tuple[float, str]:
    """The cell's counted compute at ``rate``, in hours of the unit it names (UNITS)."""
    flops, where = rate.of(cell)
    return cell_flops(cell) / flops / 3600, UNITS[where]


_counted: dict[str, int] = {}  # forward FLOPs by the counted network's structure


@functools.cache
def _forward_flops(method: str, net: Net, budget: int, input_size: tuple[int, ...]) -> int:
    # Keyed by what builds the network, so seeds share one build; then by its structure,
    # so a suite's RPG cells at seven budgets (one reference network) share one count.
    model = methods.get(method).counted(net, budget)
    signature = repr(model)
    if signature not in _counted:
        # A random image, not zeros: an equilibrium solve on zeros converges at once, and
        # the count would miss the iterations a real image costs.
        example = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))
        _counted[signature] = runtime.flops(model.eval(), example)["forward_flops"]
    return _counted[signature]


def forward_flops(cell: Cell) -> int:
    """Forward FLOPs of one example through the network the cell's method trains (the
    method says which: suite.methods.base.Method.counted)."""
    return _forward_flops(cell.method, cell.net(), cell.budget, tasks.get(cell.task).input_shape(cell.profile))


def cell_flops(cell: Cell) -> float:
    """The cell's compute: forward FLOPs x (3 per training example, 1 per validation
    example) x epochs x trainings, plus one pass over test."""
    # The sizes the profile reads: a smoke profile's generated data, not the real data set.
    recipe = cell.recipe()
    sizes = {**tasks.get(cell.task).sizes(cell.profile)}
    for split, n in (("train", recipe.train_size), ("val", recipe.val_size)):
        sizes[split] = min(sizes[split], n or sizes[split])
    per_epoch = 3 * sizes["train"] + sizes["val"]
    trainings = methods.get(cell.method).trainings(cell.net(), cell.budget)  # IMP: once per level
    return float(forward_flops(cell)) * (trainings * recipe.epochs * per_epoch + sizes["test"])


def calibrate(out: Path) -> Rate:
    """The rate a finished run sustained: its ok cells' counted FLOPs over their seconds,
    per CPU core (seconds x the cell's threads) where it ran on a CPU."""
    if not (out / records.RECORDS).is_dir():
        raise UsageError(f"--calibrate {out}: it holds no rpg-bench records (expected {out / records.RECORDS}/)")
    _, recs = records.read_run(out)
    ok = [r for r in recs if r["status"] == "ok"]
    kinds = {"gpu" if str(r["env"].get("device", "cpu")).startswith("cuda") else "cpu" for r in ok}
    if len(kinds) > 1:
        raise UsageError(f"--calibrate {out}: its cells ran on both a CPU and a GPU; calibrate from a run on one")
    on_cpu = kinds == {"cpu"}
    flops = seconds = 0.0
    for r in ok:
        flops += cell_flops(Cell.from_config(r["config"]))
        # A CPU cell's threads (env.cpu_threads: torch's, as the cell ran) are its cores.
        seconds += r["seconds"] * ((r["env"].get("cpu_threads") or 1) if on_cpu else 1)
    if not seconds:
        raise UsageError(f"--calibrate {out}: no finished cell to calibrate from")
    return Rate(flops / seconds / 1e12, kinds.pop(), f"as run in {out}")


def summarise(cells: list[Cell], rate: Rate) -> list[dict]:
    """Rows per experiment, then a total row: cells, PFLOP and hours at ``rate``, by unit
    (``hours``: {"GPU-hours": h, ...}; a unit appears only where a cell is costed in it)."""

    def empty() -> dict:
        return {"cells": 0, "flops": 0.0, "hours": defaultdict(float)}

    rows: dict[str, dict] = defaultdict(empty)
    total = empty()
    for cell in cells:
        h, unit = hours(cell, rate)
        for row in (rows[cell.experiment], total):
            row["cells"] += 1
            row["flops"] += cell_flops(cell)
            row["hours"][unit] += h
    out = [{"experiment": name, **row} for name, row in rows.items()]
    out.append({"experiment": "total", **total})
    for row in out:
        row["pflop"] = row["flops"] / 1e15
        row["hours"] = dict(row["hours"])
    return out
