"""cifar10 and cifar100: the paper's CIFAR tasks, read from --data-root (torchvision's layout)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from suite.data import cifar
from suite.tasks import recipes
from suite.tasks.base import Splits, Task, crop_flip
from suite.tasks.registry import register


class Cifar(Task):
    arch = "resnet18-cifar"
    in_channels = 3
    input_size = (3, 32, 32)
    split_sizes = {"train": 45000, "val": 5000, "test": 10000}
    profiles = recipes.load("cifar")
    devices = recipes.devices("cifar")
    generated_profiles = frozenset({"smoke", "mdeq-smoke"})

    def __init__(self, name: str, classes: int) -> None:
        self.name = name
        self.dataset = f"CIFAR-{classes}"
        self.num_classes = classes
        self.description = f"CIFAR-{classes}: 45k train / 5k val (carved, stratified) / 10k test, 32x32 RGB"

    def sizes(self, profile: str) -> dict[str, int]:
        return cifar.generated_sizes(self.name) if profile in self.generated_profiles else self.split_sizes

    def augment(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return crop_flip(x, generator), y

    def load(self, data_root: str | None, device: torch.device, profile: str) -> Splits:
        if profile in self.generated_profiles:
            with tempfile.TemporaryDirectory() as folder:
                cifar.write_generated(Path(folder), self.name)
                tensors = cifar.load(self.name, folder, verify=False)
            source = f"generated stand-in data in {self.name}'s pickle layout (not {self.name})"
        else:
            tensors = cifar.load(self.name, data_root)
            source = f"{self.name} from {data_root} (torchvision, md5 verified)"
        return Splits.place(tensors, device, source)


register(Cifar("cifar10", 10))
register(Cifar("cifar100", 100))
