"""Low-rank convolutions (baselines/lowrank.py, through tensorly-torch): every conv factorised,
CP or Tucker-2, its ranks chosen to meet the budget."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import nn

from baselines import lowrank
from suite.archs import Net
from suite.methods import knobs
from suite.methods.base import Method, backbone, require_family
from suite.methods.registry import register


class LowRankSetting(TypedDict):
    """The factorisation and each conv's ranks, by conv."""

    factorization: str
    ranks: dict[str, list[int]]


@functools.lru_cache(maxsize=256)
def _layers(net: Net) -> tuple[tuple[tuple[str, tuple[int, ...]], ...], int]:
    """(name and weight shape of every conv, the backbone scalars outside them)."""
    with torch.device("meta"):
        model = net.build()
    convs = tuple((n, tuple(model.get_submodule(n).weight.shape)) for n in lowrank.targets(model))
    return convs, backbone(model, net.arch.head) - sum(s[0] * s[1] * s[2] * s[3] for _, s in convs)


@dataclass
class LowRank(Method):
    """Counting rule: every factor of every factorised conv (CP's weights vector included),
    BN and biases.

    Knob: the ranks. One fraction of every conv's largest rank (CP: the rank at which it
    has the dense conv's size; Tucker: its channels), then one rank step at a time, largest
    first, while one fits: the smallest step (the stem's) sets how near a budget comes."""

    name: str
    factorization: str  # "cp" or "tucker"
    description: str
    knob: str = "rank of every conv"

    @property
    def counting(self) -> str:
        parts = "CP's weights vector and its four factors" if self.factorization == "cp" else "core and factors"
        return f"every factorised conv's {parts}, BN and biases"

    def _total(self, net: Net) -> tuple[list[tuple[int, ...]], Callable[[knobs.Knobs], int]]:
        require_family(self, net, "resnet")
        convs, rest = _layers(net)
        caps = [lowrank.caps(shape, self.factorization) for _, shape in convs]

        def total(ranks: knobs.Knobs) -> int:
            return rest + sum(lowrank.count(s, r, self.factorization) for (_, s), r in zip(convs, ranks, strict=True))

        return caps, total

    def reach(self, net: Net) -> tuple[int, int]:
        caps, total = self._total(net)
        return total(knobs.at(caps, 0.0)), total(caps)

    def setting(self, net: Net, budget: int) -> LowRankSetting:
        caps, total = self._total(net)
        convs, _ = _layers(net)
        ranks = knobs.meet(caps, total, budget)
        return {
            "factorization": self.factorization,
            "ranks": {n: list(r) for (n, _), r in zip(convs, ranks, strict=True)},
        }

    def build(self, net: Net, setting: LowRankSetting, seed: int) -> nn.Module:
        return lowrank.convert(net.build(), setting["ranks"], setting["factorization"])

    def counted(self, net: Net, budget: int) -> nn.Module:
        return self.build(net, self.setting(net, budget), 0)  # the factorised network is what trains


register(
    LowRank(
        "lowrank-cp",
        "cp",
        "every conv CP-factorised (tensorly-torch's FactorizedConv, rank per conv), trained from scratch: "
        "1x1 to the rank, two 1-D depthwise convs, 1x1 to the outputs",
    )
)
register(
    LowRank(
        "lowrank-tucker",
        "tucker",
        "every conv Tucker-2-factorised (tensorly-torch's FactorizedConv; channel ranks per conv, spatial modes "
        "whole), trained from scratch: 1x1 to r_in, the core's kxk conv to r_out, 1x1 to the outputs",
    )
)
