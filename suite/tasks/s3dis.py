"""s3dis: monocular depth and surface normals of indoor scenes (Table 5).

Inputs are RGB frames; targets are packed (N, 4, H, W) depth and normal maps
(suite.tasks.geometry). A network emits log-depth and a normal at every pixel from every
stacked sub-network, (stacks, N, 4, H, W); the loss is SharpNet's on every sub-network's
maps (intermediate supervision), and the prediction is the last sub-network's.

The record's metric is depth RMSE (Table 5's first column), on which val selects the
epoch; normal RMSE is recorded beside it from the same pass, with depth RMSE in metres
and the mean angular error of the normals.
"""

from __future__ import annotations

import torch
from torch import nn

from suite.data import s3dis, scenes
from suite.tasks import geometry, recipes
from suite.tasks.base import Splits, Task
from suite.tasks.registry import register

SYNTHETIC_SIZE = 32  # generated scenes, in pixels


@register
class S3dis(Task):
    name = "s3dis"
    dataset = "S3DIS (Stanford 2D-3D-S)"
    records_gap = False  # the paper reports no gap for Table 5
    description = (
        "Stanford 2D-3D-S (S3DIS) frames, fold 1: depth and surface normals from RGB, 256x256; smoke and cpu "
        "profiles use generated indoor scenes (suite/data/scenes.py), not S3DIS"
    )
    metric = "depth_rmse"
    metric_label = "depth RMSE (% of true depth)"
    higher_is_better = False
    extra_metrics = ("normal_rmse", "depth_rmse_m", "normal_angle")
    arch = "sharpnet"
    in_channels = 3
    num_classes = 4  # log-depth and a normal per pixel
    input_size = (3, s3dis.SIZE, s3dis.SIZE)
    split_sizes = s3dis.SPLIT_SIZES
    profiles = recipes.load("s3dis")
    devices = recipes.devices("s3dis")
    generated_profiles = frozenset({"smoke", "cpu"})
    synthetic_sizes = {"smoke": {"train": 96, "val": 32, "test": 32}, "cpu": {"train": 3000, "val": 500, "test": 1000}}

    def sizes(self, profile: str) -> dict[str, int]:
        return self.synthetic_sizes[profile] if profile in self.generated_profiles else self.split_sizes

    def input_shape(self, profile: str) -> tuple[int, ...]:
        generated = profile in self.generated_profiles
        return (self.in_channels, SYNTHETIC_SIZE, SYNTHETIC_SIZE) if generated else self.input_size

    def load(self, data_root: str | None, device: torch.device, profile: str) -> Splits:
        if profile in self.generated_profiles:
            sizes = self.synthetic_sizes[profile]
            tensors = {name: _scenes(n, seed) for seed, (name, n) in enumerate(sizes.items())}
            source = f"generated indoor scenes, {SYNTHETIC_SIZE}x{SYNTHETIC_SIZE} (not S3DIS)"
            return Splits.place(tensors, device, source)
        return s3dis.splits(s3dis.locate(data_root), device)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Summed over the stacked sub-networks."""
        return sum(geometry.loss(stage, target) for stage in output)

    @torch.no_grad()
    def metrics(self, model: nn.Module, splits: Splits, split: str, batch_size: int) -> tuple[dict[str, float], None]:
        model.eval()
        total: dict[str, float] = {}
        for x, y in self.batches(splits, split, batch_size):
            for k, v in geometry.sums(model(x)[-1], y).items():  # the last sub-network predicts
                total[k] = total.get(k, 0) + v
        return geometry.finish(total), None

    def evaluate(self, model: nn.Module, splits: Splits, split: str, batch_size: int) -> float:
        return self.metrics(model, splits, split, batch_size)[0][self.metric]


def _scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = scenes.generate(n, SYNTHETIC_SIZE, seed)
    images = torch.from_numpy(data["images"]) - 0.5
    target = torch.cat([torch.from_numpy(data["depth"])[:, None], torch.from_numpy(data["normals"])], 1)
    return images, target
