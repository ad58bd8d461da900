"""fashion: Fashion-MNIST, real and offline here (Debian's dataset-fashion-mnist)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from suite.data import fashion
from suite.tasks import recipes
from suite.tasks.base import Splits, Task
from suite.tasks.registry import register


@register
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
    profiles = recipes.load("fashion")
    devices = recipes.devices("fashion")
    generated_profiles = frozenset({"smoke", "mdeq-smoke"})

    def sizes(self, profile: str) -> dict[str, int]:
        return fashion.generated_sizes() if profile in self.generated_profiles else self.split_sizes

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
