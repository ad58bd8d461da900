"""fashion: Fashion-MNIST, real and offline here (Debian's dataset-fashion-mnist)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from suite.data import fashion
from suite.tasks.base import MDEQ_RECIPE, Recipe, Splits, Task


class Fashion(Task):
    name = "fashion"
    dataset = "Fashion-MNIST"
    description = "Fashion-MNIST: 55k train / 5k val (carved, stratified) / 10k test, 28x28 grey, 10 classes"
    arch = "resnet10-cifar"
    width = 0.125
    in_channels = 1
    num_classes = 10
    input_size = (1, 28, 28)
    split_sizes = {"train": 55000, "val": 5000, "test": 10000}
    profiles = {
        # A GPU-sized recipe, for anyone who wants Fashion-MNIST numbers near convergence.
        "full": Recipe(epochs=30, batch_size=128, lr=0.1, weight_decay=5e-4),
        # What the `fashion` suite runs on a 2-core CPU: every method, 3 budgets, 3 seeds.
        "cpu": Recipe(epochs=2, batch_size=128, lr=0.1, weight_decay=5e-4),
        "smoke": Recipe(epochs=1, batch_size=128, lr=0.1, weight_decay=5e-4),
        # Table 1 (MDEQ vs RPG), the `table1` experiment: MDEQ's optimiser and schedule for
        # both forms. On the CPU an MDEQ training step costs 10-20x an unrolled one, and its
        # every inference is a solve, so `cpu` trains 6 epochs (the first unrolled) on a
        # stratified 5k of train, picks the epoch on 1k of val, and tests on all 10k.
        "mdeq-full": MDEQ_RECIPE,
        "mdeq-cpu": replace(MDEQ_RECIPE, epochs=6, batch_size=64, eval_batch_size=64, train_size=5000, val_size=1000),
        "mdeq-smoke": replace(MDEQ_RECIPE, epochs=1, batch_size=64, eval_batch_size=16),
    }
    generated_profiles = frozenset({"smoke", "mdeq-smoke"})

    def load(self, data_root: str | None, device: torch.device, profile: str) -> Splits:
        if profile in self.generated_profiles:
            with tempfile.TemporaryDirectory() as folder:
                fashion.write_generated(Path(folder))
                tensors = fashion.splits(fashion.read(Path(folder) / fashion.TORCHVISION, verify=False))
            source = "generated stand-in data in Fashion-MNIST's IDX layout (not Fashion-MNIST)"
        else:
            folder = fashion.locate(data_root)
            tensors = fashion.splits(fashion.read(folder))
            source = f"Fashion-MNIST from {folder} (checksums verified)"
        return Splits.place(tensors, device, source)
