"""mpii: single-person pose estimation, scored by PCKh@0.5 (Table 4, Table 8b).

Targets are packed (N, 17, 3) tensors (suite.tasks.heatmaps): the 16 joints in input
pixels with their visibility, and the head size. A network emits heat-maps at a quarter
of the input's resolution from every stacked sub-network, (stacks, N, 16, H/4, W/4); the
loss is the mean squared error of every sub-network's maps against Gaussians at the
joints (intermediate supervision), and the prediction is the last sub-network's peaks.

The paper's validation set is MPII's; here it is the test split, and ``val`` is carved
from training for model selection (suite/data/mpii.py). So Table 8b's "training minus
validation" is recorded as ``train_minus_test``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from suite.data import mpii, stickmen
from suite.tasks import heatmaps, recipes
from suite.tasks.base import Splits, Task
from suite.tasks.pckh import JOINTS, decode, head_size, pckh
from suite.tasks.registry import register

STRIDE = 4  # heat-maps are at a quarter of the input's resolution
SYNTHETIC_SIZE = 64  # stick-figure images, in pixels


@register
class Mpii(Task):
    name = "mpii"
    dataset = "MPII Human Pose"
    description = (
        "MPII Human Pose, single persons: 16 joints, 256x256 crops by MPII's centre and scale, PCKh@0.5; "
        "smoke and cpu profiles use generated stick figures (suite/data/stickmen.py), not MPII"
    )
    metric = "pckh"
    metric_label = "PCKh@0.5 (%)"
    arch = "hourglass-2x"
    in_channels = 3
    num_classes = len(JOINTS)  # one heat-map per joint
    input_size = (3, mpii.CROP, mpii.CROP)
    split_sizes = mpii.SPLIT_SIZES
    profiles = recipes.load("mpii")
    devices = recipes.devices("mpii")
    generated_profiles = frozenset({"smoke", "cpu"})
    synthetic_sizes = {"smoke": {"train": 128, "val": 32, "test": 32}, "cpu": {"train": 2000, "val": 500, "test": 1000}}

    def sizes(self, profile: str) -> dict[str, int]:
        return self.synthetic_sizes[profile] if profile in self.generated_profiles else self.split_sizes

    def input_shape(self, profile: str) -> tuple[int, ...]:
        generated = profile in self.generated_profiles
        return (self.in_channels, SYNTHETIC_SIZE, SYNTHETIC_SIZE) if generated else self.input_size

    def load(self, data_root: str | None, device: torch.device, profile: str) -> Splits:
        if profile in self.generated_profiles:
            sizes = self.synthetic_sizes[profile]
            tensors = {name: _figures(n, seed) for seed, (name, n) in enumerate(sizes.items())}
            source = f"generated stick figures, {SYNTHETIC_SIZE}x{SYNTHETIC_SIZE} (not MPII)"
            return Splits.place(tensors, device, source)
        return mpii.splits(mpii.locate(data_root), device)

    def augment(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return heatmaps.augment(x, y, generator, stickmen.flip_order())

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Summed over the stacked sub-networks: each one's mean squared error."""
        maps = heatmaps.render(target, output.shape[-1], STRIDE)
        return sum(F.mse_loss(stage, maps) for stage in output)

    @torch.no_grad()
    def predict(
        self, model: nn.Module, splits: Splits, split: str, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted joints in input pixels, the packed targets), over the whole split."""
        model.eval()
        found, targets = [], []
        for x, y in self.batches(splits, split, batch_size):
            peaks = decode(model(x)[-1])  # the last sub-network's maps are the prediction
            found.append((peaks + 0.5) * STRIDE - 0.5)
            targets.append(y)
        return torch.cat(found), torch.cat(targets)

    def scores(self, model: nn.Module, splits: Splits, split: str, batch_size: int) -> dict:
        predicted, target = self.predict(model, splits, split, batch_size)
        joints, visible, head = heatmaps.unpack(target)
        return pckh(predicted.cpu(), joints.cpu(), visible.cpu(), head.cpu())

    def evaluate(self, model: nn.Module, splits: Splits, split: str, batch_size: int) -> float:
        """Mean PCKh@0.5 in percent (MPII's "Mean": pelvis and thorax left out)."""
        return self.scores(model, splits, split, batch_size)["mean"]

    def metrics(self, model: nn.Module, splits: Splits, split: str, batch_size: int) -> tuple[dict[str, float], dict]:
        scores = self.scores(model, splits, split, batch_size)
        return {self.metric: scores["mean"]}, {"pckh_per_joint": scores["per_joint"]}


def _figures(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = stickmen.generate(n, SYNTHETIC_SIZE, seed)
    images = torch.from_numpy(data["images"]) - 0.5
    head = head_size(torch.from_numpy(data["head_box"]))
    # A stick figure's sides differ by colour, which a flip would not swap: never flipped.
    target = heatmaps.pack(torch.from_numpy(data["joints"]), torch.from_numpy(data["visible"]), head, False)
    return images, target
