"""Measurements shared by the cells of one shape: each measured thing is measured once.

A deployed network's latency, FLOPs, inference memory and ONNX check depend on its
architecture and widths (and on the input, the batch, the device and the threads), not on
its seed nor on how its weights were trained: every RPG-family cell of a budget deploys
the same dense network. The training form (weights generated at every call, and one
training step's memory) depends on its rings too: their sizes, maps and layers. So a
measurement is keyed by the form's structure (every layer with its shapes, a ring with its
size and strategies, never a weight, a seed or a generated layer's fixed scale) and the setting it
is taken in; the first cell of a key measures, and the others carry its figures, byte for
byte, with ``measured_by`` naming the cell that measured. A record's accuracy is always its
own. Shared figures live in OUT/measurements/, so a resumed run and parallel workers reuse
them too (a worker that finds another measuring its key waits for that one's figures).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import rpg
from suite import records
from suite.system import quiet

FOLDER = "measurements"


def signature(form: str, model: nn.Module, inputs: dict[str, tuple[int, ...]], settings: dict) -> str:
    """What a measurement of ``model`` depends on, hashed: its structure, the shapes it
    runs on, the device and threads, and how it is measured."""
    device = next((t.device for t in model.state_dict().values() if torch.is_tensor(t)), torch.device("cpu"))
    blob = {
        "form": form,
        "structure": structure(model),
        "inputs": {k: list(v) for k, v in inputs.items()},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        **settings,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:20]


def structure(model: nn.Module) -> list[str]:
    """Every module's name, type and settings: what its compute depends on. A generated
    layer's scale is left out: it is set from the seed's draw and costs the same whatever it is."""
    return [
        f"{name}: {type(m).__name__}({_slot(m) if isinstance(m, rpg.Generated) else m.extra_repr()})"
        for name, m in model.named_modules()
    ]


def _slot(m: rpg.Generated) -> str:
    return f"slot={m.slot}, shape={m.shape}"


class Shared:
    """The measurements of a run's folder (none kept when ``folder`` is None)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def get(self, key: str, cell: str, measure: Callable[[], dict]) -> tuple[dict, str]:
        """(figures, the cell that measured them): from an earlier cell of this key, or
        measured now by ``cell``. Under --jobs, a worker that finds another measuring the
        same key waits for its figures rather than measuring it twice (two seeds of one
        shape often run side by side)."""
        if self.folder is None:
            return measure(), cell
        path = self.folder / f"{key}.json"
        kept = _read(path)
        if kept is not None:
            return kept
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as claim:
            with quiet.waiting():  # a waiting worker must not hold up the measuring one's quiet
                fcntl.flock(claim, fcntl.LOCK_EX)
            try:
                kept = _read(path)  # measured by another worker while this one waited
                if kept is not None:
                    return kept
                figures = measure()
                records.write_json(path, {"measured_by": cell, "figures": figures})
                return figures, cell
            finally:
                fcntl.flock(claim, fcntl.LOCK_UN)


def _read(path: Path) -> tuple[dict, str] | None:
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        return kept["figures"], kept["measured_by"]
    except (OSError, ValueError, KeyError):
        return None  # none yet, or a torn or foreign file: measure (again), and replace it
