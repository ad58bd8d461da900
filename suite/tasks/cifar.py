"""cifar10 and cifar100: the paper's CIFAR tasks, read from --data-root (torchvision's layout)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from suite.data import cifar
from suite.tasks.base import MDEQ_RECIPE, Recipe, Splits, Task, crop_flip

# The paper's recipe (Section 5, CIFAR): SGD momentum 0.9, weight decay 5e-4, batch 128,
# lr 0.1 divided by 10 at epochs 60, 120 and 160, 200 epochs; crop + flip.
PAPER = Recipe(epochs=200, batch_size=128, lr=0.1, weight_decay=5e-4, schedule="step", milestones=(60, 120, 160))


class Cifar(Task):
    arch = "resnet18-cifar"
    in_channels = 3
    input_size = (3, 32, 32)
    split_sizes = {"train": 45000, "val": 5000, "test": 10000}
    profiles = {
        "full": PAPER,
        # Seconds on a CPU: generated data, 1/8 width (budgets scaled to keep their fraction).
        "smoke": Recipe(epochs=2, batch_size=64, lr=0.05, weight_decay=5e-4, width_scale=0.125),
        # Table 1 (MDEQ vs RPG): the official MDEQ CIFAR recipe, for both forms.
        "mdeq-full": MDEQ_RECIPE,
        # One epoch (pre-training, unrolled), quarter width, small inference batches: the
        # solver runs in validation, test and the latency measurements, in about a minute.
        "mdeq-smoke": Recipe(
            epochs=1, batch_size=64, lr=1e-3, weight_decay=0.0, optimizer="adam", eval_batch_size=16, width_scale=0.25
        ),
    }
    generated_profiles = frozenset({"smoke", "mdeq-smoke"})

    def __init__(self, name: str, classes: int) -> None:
        self.name = name
        self.dataset = f"CIFAR-{classes}"
        self.num_classes = classes
        self.description = f"CIFAR-{classes}: 45k train / 5k val (carved, stratified) / 10k test, 32x32 RGB"

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
