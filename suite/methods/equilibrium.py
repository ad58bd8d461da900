"""MDEQ (Table 1; baselines/mdeq.py): one weight-normalised multiscale block solved to its
fixed point. Its size knob is the streams' widths, as the plain network's is its stages'."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from suite.methods.base import Trained
from suite.methods.registry import register
from suite.methods.widths import Widths, WidthsSetting
from suite.tasks import Recipe, Splits, Task


@dataclass
class Equilibrium(Widths):
    """Counting rule: every trainable scalar outside the head; a weight-normalised conv
    counts its direction and its per-channel gain (what is learned). Its trained model
    reports how its solves went (the record keeps the test split's)."""

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: WidthsSetting, **kw
    ) -> Trained:
        trained = super().train(model, task, splits, recipe, seed, setting, **kw)
        trained.probes["solver"] = model.solver_record  # the record keeps the test split's solves
        return trained


register(
    Equilibrium(
        "mdeq",
        family="mdeq",
        knob="stream widths",
        description="MDEQ: one multiscale block, its equilibrium found by Broyden's method, implicit backward",
        counting="every trainable scalar outside the head (weight norm's direction and gain both), GN and BN included",
    )
)
