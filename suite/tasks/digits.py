"""digits: scikit-learn's 8x8 handwritten digits, embedded and real: the offline default."""

from __future__ import annotations

import torch

from suite.data import digits
from suite.tasks import recipes
from suite.tasks.base import Splits, Task
from suite.tasks.registry import register


@register
class Digits(Task):
    name = "digits"
    dataset = "scikit-learn's 8x8 digits"
    description = "scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), fixed split"
    arch = "resnet18-cifar"
    width = 0.25
    in_channels = 1
    num_classes = 10
    input_size = (1, 8, 8)
    split_sizes = {"train": 1221, "val": 216, "test": 360}
    profiles = recipes.load("digits")
    devices = recipes.devices("digits")

    def load(self, data_root: str | None, device: torch.device, profile: str) -> Splits:
        tensors = digits.load()
        return Splits.place(tensors, device, "sklearn.datasets.load_digits (embedded)")
