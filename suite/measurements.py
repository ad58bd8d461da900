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
them too (two workers that measure one key at once each record their own).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import rpg
from suite import records

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
        measured now by ``cell``."""
        path = self.folder / f"{key}.json" if self.folder is not None else None
        if path is not None and path.exists():
            try:
                kept = json.loads(path.read_text(encoding="utf-8"))
                return kept["figures"], kept["measured_by"]
            except (OSError, ValueError, KeyError):
                pass  # a torn or foreign file: measure again, and replace it
        figures = measure()
        if path is not None:
            records.write_json(path, {"measured_by": cell, "figures": figures})
        return figures, cell
