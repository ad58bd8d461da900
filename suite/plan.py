"""What a suite will cost before it runs: cells, compute and GPU-hours (``rpg-bench plan``).

A cell's compute is counted, not guessed: torch's flop counter runs one forward of the
network that trains (the reference network for the sharing methods, K unrolled blocks
for rpg-msK, the network shrunk to its budget for plain and mdeq), and a training step
costs three forwards (the backward pass about two; for MDEQ, whose forward is a solve and
whose backward another, this is rougher). Per cell: epochs x (3 x train + val) examples,
plus one pass over test. Hours follow from a sustained throughput: an assumption
(``--tflops``) or, better, the rate a finished run achieved on the same hardware
(``--calibrate OUT``: its cells' counted FLOPs over their recorded seconds, measurement
included).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path

import torch

from suite import measure, methods, records, tasks
from suite.archs import Net
from suite.cells import Cell
from suite.errors import UsageError

# Sustained TFLOP/s of one device by training precision: assumptions, stated wherever they
# are used (README). bf16 at 4x fp32: what autocast and channels-last sustain on 32-pixel
# images of a current GPU is far below its peak ratio; --calibrate from a finished run wins.
ASSUMED_TFLOPS = {"fp32": 10.0, "bf16": 40.0}


def assumed() -> str:
    return ", ".join(f"{v:g} {k}" for k, v in ASSUMED_TFLOPS.items())


def check_tflops(tflops: float | None) -> None:
    """A given --tflops must be a positive number (None: the assumed rates)."""
    if tflops is not None and not tflops > 0:
        raise UsageError(f"--tflops must be positive, got {tflops}")


def seconds(cell: Cell, tflops: float | None) -> float:
    """The cell's counted compute at ``tflops``, or at its precision's assumed rate."""
    return cell_flops(cell) / ((tflops or ASSUMED_TFLOPS[cell.recipe().precision]) * 1e12)


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
        _counted[signature] = measure.flops(model.eval(), example)["forward_flops"]
    return _counted[signature]


def forward_flops(cell: Cell) -> int:
    """Forward FLOPs of one example through the network the cell's method trains (the
    method says which: suite.methods.base.Method.counted)."""
    return _forward_flops(cell.method, cell.net(), cell.budget, tasks.get(cell.task).input_size)


def cell_flops(cell: Cell) -> float:
    """The cell's compute: forward FLOPs x (3 per training example, 1 per validation
    example) x epochs x trainings, plus one pass over test."""
    task = tasks.get(cell.task)
    # Smoke profiles read stand-in data of the real data set's split sizes or smaller:
    # the estimate is for the real data.
    recipe = cell.recipe()
    sizes = {**task.split_sizes}
    for split, n in (("train", recipe.train_size), ("val", recipe.val_size)):
        sizes[split] = min(sizes[split], n or sizes[split])
    per_epoch = 3 * sizes["train"] + sizes["val"]
    trainings = methods.get(cell.method).trainings(cell.net(), cell.budget)  # IMP: once per level
    return float(forward_flops(cell)) * (trainings * recipe.epochs * per_epoch + sizes["test"])


def calibrate(out: Path) -> float:
    """The TFLOP/s a finished run sustained: its ok cells' counted FLOPs over their seconds."""
    if not (out / records.RECORDS).is_dir():
        raise UsageError(f"--calibrate {out}: it holds no rpg-bench records (expected {out / records.RECORDS}/)")
    _, recs = records.read_run(out)
    flops = seconds = 0.0
    for r in recs:
        if r["status"] != "ok":
            continue
        flops += cell_flops(Cell.from_config(r["config"]))
        seconds += r["seconds"]
    if not seconds:
        raise UsageError(f"--calibrate {out}: no finished cell to calibrate from")
    return flops / seconds / 1e12


def summarise(cells: list[Cell], tflops: float | None) -> list[dict]:
    """Rows per experiment, then a total row: cells, PFLOP and hours at ``tflops`` (None:
    each cell at its precision's assumed rate)."""
    rows: dict[str, dict] = defaultdict(lambda: {"cells": 0, "flops": 0.0, "seconds": 0.0})
    for cell in cells:
        row = rows[cell.experiment]
        row["cells"] += 1
        row["flops"] += cell_flops(cell)
        row["seconds"] += seconds(cell, tflops)
    out = [{"experiment": name, **row} for name, row in rows.items()]
    out.append(
        {
            "experiment": "total",
            "cells": len(cells),
            "flops": sum(r["flops"] for r in out),
            "seconds": sum(r["seconds"] for r in out),
        }
    )
    for row in out:
        row["pflop"] = row["flops"] / 1e15
        row["hours"] = row["seconds"] / 3600
    return out
