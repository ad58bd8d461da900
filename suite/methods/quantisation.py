"""8-bit RPG (Appendix A): RPG trained in float, then quantised after training."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from baselines import int8
from suite.methods.base import Trained
from suite.methods.registry import register
from suite.methods.sharing import RPG, RingSetting
from suite.tasks import Recipe, Splits, Task
from suite.training import train


@dataclass
class Int8(RPG):
    """RPG, trained in float, then quantised to int8 after training (baselines/int8.py).
    Counted as the float model it quantises (the same ring); stored as itself."""

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: RingSetting, **kw
    ) -> Trained:
        summary = train.fit(model, task, splits, recipe, seed, **kw)
        n = math.ceil(int8.CALIBRATION / recipe.batch_size)
        # A fixed shuffled sample of training batches, as they train (torchvision's reference
        # calibrates on its training loader): in file order ImageNet's first are one class.
        sample = task.batches(splits, "train", recipe.batch_size, torch.Generator().manual_seed(0))
        batches = [x for x, _ in itertools.islice(sample, n)]
        quantisation = {
            "bits": 8,
            "backend": int8.BACKEND,
            "calibration_images": sum(map(len, batches)),
            "latency": "int8 kernels on the CPU",
        }
        return Trained.of(
            int8.quantise(model, batches),
            summary,
            before=("before-quantisation", model),
            quantised=True,
            sections={"quantisation": quantisation},
        )


register(
    Int8(
        "rpg-int8",
        description=(
            "RPG trained in float, then 8-bit post-training quantisation (PyTorch FX, x86 backend, per-channel "
            "weights, calibrated on 1,024 training images); runs on the CPU (Appendix A)"
        ),
    )
)
