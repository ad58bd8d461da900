"""LegoNet (Yang et al. 2019; baselines/lego.py): every conv built from m shared lego filters."""

from __future__ import annotations

import math
from typing import TypedDict

import torch
from torch import nn

from baselines import lego
from suite.archs import Net
from suite.counting import solver
from suite.methods.base import Method, backbone, require_family
from suite.methods.registry import register


class LegoSetting(TypedDict):
    """LegoNet's knob: the legos each conv is assembled from, by conv, and the split."""

    legos: dict[str, int]
    split: int


@register
class Lego(Method):
    """LegoNet (baselines/lego.py): every conv built from m shared lego filters per layer.

    Counting rule: lego filters + one coefficient per (split, output channel); the
    selection logits are a training-time proxy for a discrete choice and are not counted.
    Knob: legos per layer, with the input split in 2 (LegoNet's usual o = 2); budgets
    beyond what o = 2 reaches (about half the plain network) take o = 1, which reaches
    the plain network's size plus the coefficients. Below one lego per layer it cannot go.
    """

    name = "lego"
    knob = "legos per layer"
    description = "LegoNet: each conv built from m shared lego filters over 2 input splits, one-hot selection (STE)"
    counting = (
        "lego filters plus one coefficient per (input split, output channel), plus BN and biases; "
        "the selection logits (a training-time proxy for a discrete choice) are not counted"
    )
    splits = (2, 1)

    def _layers(self, net: Net) -> tuple[list[tuple[str, tuple[int, ...]]], int]:
        """(name and weight shape of every conv it rebuilds, backbone scalars outside them)."""
        require_family(self, net, "resnet")
        with torch.device("meta"):
            model = net.build()
        convs = [(n, tuple(model.get_submodule(n).weight.shape)) for n in lego.targets(model)]
        rest = backbone(model, net.arch.head) - sum(math.prod(s) for _, s in convs)
        return convs, rest

    @staticmethod
    def _count(convs: list[tuple[str, tuple[int, ...]]], rest: int, legos: list[int], split: int) -> int:
        return rest + sum(lego.count(s, m, split) for (_, s), m in zip(convs, legos, strict=True))

    def _reach(self, net: Net, split: int) -> tuple[int, int]:
        convs, rest = self._layers(net)
        return self._count(convs, rest, [1] * len(convs), split), self._count(
            convs, rest, [s[0] for _, s in convs], split
        )

    def reach(self, net: Net) -> tuple[int, int]:
        reaches = [self._reach(net, split) for split in self.splits]
        return min(lo for lo, _ in reaches), max(hi for _, hi in reaches)

    def setting(self, net: Net, budget: int) -> LegoSetting:
        split = next(s for s in self.splits if self._reach(net, s)[0] <= budget <= self._reach(net, s)[1])
        convs, rest = self._layers(net)

        def legos_at(f: float) -> list[int]:
            return [max(1, min(s[0], int(f * s[0]))) for _, s in convs]

        f = solver.bisect(lambda f: self._count(convs, rest, legos_at(f), split), 0.0, 1.0, budget, integer=False)
        legos = legos_at(f)
        if self._count(convs, rest, legos, split) > budget:
            legos = legos_at(max(0.0, f - 1e-9))
        # One fraction moves all layers of a width together in big steps; fill what is left
        # one lego at a time, largest steps first, down to the stem's (C_in k^2 scalars).
        steps = [lego.count(s, 2, split) - lego.count(s, 1, split) for _, s in convs]
        for i in sorted(range(len(convs)), key=lambda i: -steps[i]):
            room = (budget - self._count(convs, rest, legos, split)) // steps[i]
            legos[i] += max(0, min(room, convs[i][1][0] - legos[i]))
        return {"legos": dict(zip([n for n, _ in convs], legos, strict=True)), "split": split}

    def build(self, net: Net, setting: LegoSetting, seed: int) -> nn.Module:
        return lego.convert(net.build(), setting["legos"], setting["split"])
