"""What a task is: data, a default network, a training recipe per profile, and a metric."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

import pydantic
import torch
import torch.nn.functional as F
from torch import nn

from suite.data.splits import Splits
from suite.system import distributed


class Recipe(pydantic.BaseModel):
    """A training recipe, and the one declaration of its fields: suite/recipes/<task>.toml's
    tables, a suite's ``[experiment.recipe]`` and ``--set field=value`` are each checked by
    it (suite.tasks.recipes). Strict: an unknown field, a string for a number or a fraction
    of an epoch is refused; a float field takes an int, as TOML writes 0."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

    epochs: pydantic.PositiveInt
    batch_size: pydantic.PositiveInt
    lr: pydantic.PositiveFloat
    momentum: pydantic.NonNegativeFloat = 0.9
    weight_decay: pydantic.NonNegativeFloat = 5e-4
    # "cosine" (per step, to zero), "step" (x gamma at milestones) or "poly" (per step,
    # (1 - step / steps) ** 0.9: SharpNet's)
    schedule: Literal["cosine", "step", "poly"] = "cosine"
    optimizer: Literal["sgd", "adam", "rmsprop"] = "sgd"  # "sgd" is with momentum
    milestones: tuple[pydantic.PositiveInt, ...] = ()
    gamma: pydantic.PositiveFloat = 0.1
    eval_batch_size: pydantic.PositiveInt = 256
    # Smoke profiles of paper-sized experiments shrink the network's width by this factor;
    # budgets given as counts shrink with the plain network's backbone, so every budget
    # keeps its fraction of the plain network (and every experiment its shape), except that
    # a budget below some method's reach on the shrunken network is raised to just above it.
    # Past 4x a ResNet-34 no longer fits in memory to be built.
    width_scale: Annotated[float, pydantic.Field(gt=0, le=4)] = 1.0
    # Reduced-scale runs train (and select the epoch) on stratified subsets of the train and
    # val splits (seed 0); None keeps the whole split. Test is always the whole test split.
    train_size: pydantic.PositiveInt | None = None
    val_size: pydantic.PositiveInt | None = None
    # The training step's arithmetic: "fp32" (the paper's) or "bf16" (autocast; on CUDA also
    # channels-last memory). Evaluation and every measurement stay in fp32.
    precision: Literal["fp32", "bf16"] = "fp32"

    def as_dict(self) -> dict:
        return self.model_dump()


class Task:
    name = ""
    dataset = ""  # the data set by its usual name, for reports ("CIFAR-100")
    description = ""
    metric = "top1"
    metric_label = "top-1 accuracy (%)"
    higher_is_better = True
    arch = "resnet18-cifar"
    width = 1.0
    in_channels = 3
    num_classes = 10
    input_size: tuple[int, int, int] = (3, 32, 32)
    # Its training recipes by profile name: suite/recipes/<task>.toml (suite.tasks.recipes),
    # and the device each profile is meant for ("cpu" or "gpu": what plan costs it in).
    profiles: dict[str, Recipe] = {}
    devices: dict[str, str] = {}
    # The real data set's split sizes, known before it is read (rpg-bench plan counts with them).
    split_sizes: dict[str, int] = {}

    def load(self, data_root: str | None, device: torch.device, profile: str) -> Splits:
        """The splits, on ``device``. A profile in ``generated_profiles`` reads data the code
        generates in the data set's own layout, through the same reader (tests, smoke runs)."""
        raise NotImplementedError

    generated_profiles: frozenset[str] = frozenset()

    def reads(self, profile: str) -> str:
        """What ``profile`` reads, in words: the real data set, or data the code generates."""
        if profile in self.generated_profiles:
            return f"data the code generates in {self.dataset}'s layout"
        return f"{self.dataset} (real)"

    def sizes(self, profile: str) -> dict[str, int]:
        """The split sizes ``profile`` reads, before a recipe's train_size/val_size: the real
        data set's, or for a generated profile those of the data the task generates."""
        return self.split_sizes

    def input_shape(self, profile: str) -> tuple[int, ...]:
        """One example's shape as ``profile`` reads it (generated images may be smaller)."""
        return self.input_size

    def augment(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-time augmentation of one batch and its targets (a pose's joints move with
        its pixels), on the batch's device (default: none)."""
        return x, y

    # Table 8's generalisation gap: the metric on the training split too (its images as test's
    # are read, without augmentation), and the training metric minus the test metric. Every
    # classification and pose cell records it; Table 5's regression does not.
    records_gap = True

    # Metrics recorded beside ``metric`` (Table 5's normal RMSE beside depth RMSE).
    extra_metrics: tuple[str, ...] = ()

    def metrics(
        self, model: nn.Module, splits: Splits, split: str, batch_size: int
    ) -> tuple[dict[str, float], dict | None]:
        """``metric`` and every one of ``extra_metrics`` on the split, and the metric's parts
        where it has some (PCKh per joint; else None), all from one pass."""
        return {self.metric: self.evaluate(model, splits, split, batch_size)}, None

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def batches(
        self, splits: Splits, split: str, batch_size: int, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The split in batches, in order; shuffled and augmented when ``generator`` is given."""
        if split in splits.streams:  # augmented by the stream's own transform
            yield from splits.streams[split].batches(batch_size, splits.device, generator)
            return
        x, y = splits.tensors[split]
        order = (
            torch.randperm(len(y), generator=generator).to(y.device)
            if generator is not None
            else torch.arange(len(y), device=y.device)
        )
        for i in range(0, len(y), batch_size):
            take = order[i : i + batch_size]
            # A shuffled pass is a training pass: augment it, from the same generator, so
            # a resumed run draws the same crops.
            yield self.augment(x[take], y[take], generator) if generator is not None else (x[take], y[take])

    def train_batches(
        self, splits: Splits, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, float, int]]:
        """One shuffled training pass as this rank's share of each global batch, the share's
        loss weight and the global batch's size (see suite.system.distributed). Alone, the share is
        the whole batch; a last batch too small to give every rank an example is skipped."""
        if "train" in splits.streams:  # each rank decodes only its own share
            yield from splits.streams["train"].shares(batch_size, splits.device, generator)
            return
        for x, y in self.batches(splits, "train", batch_size, generator):
            if len(y) < distributed.world():
                continue
            xr, yr, share = distributed.local_slice(x, y)
            yield xr, yr, share, len(y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Splits, split: str, batch_size: int) -> float:
        """Top-1 accuracy in percent."""
        model.eval()
        correct = total = 0
        for x, y in self.batches(splits, split, batch_size):
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
        return 100.0 * correct / total


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops of a zero-padded batch and random horizontal flips, vectorised on the
    batch's device (the whole data set can live on the GPU: no loader in the way).

    The result is NCHW-contiguous. Gathering leaves it channels-last, which every conv after
    it inherits, and oneDNN's CPU weight gradient for channels-last input with an odd number
    of channels corrupts the heap (torch 2.14.1; the crash or hang comes later, elsewhere).
    Knapsack's slimmed networks have such channels."""
    n, _, h, w = x.shape
    dy, dx, flip = (torch.randint(k, (n,), generator=generator).to(x.device) for k in (2 * pad + 1, 2 * pad + 1, 2))
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    cols = torch.where(flip.bool()[:, None, None], cols.flip(-1), cols)
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    return out.contiguous()
