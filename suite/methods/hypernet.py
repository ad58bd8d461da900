"""HyperNetworks (Ha, Dai & Le 2016; baselines/hypernet.py): one generator makes every 3x3
conv but the first, tile by tile, from per-tile layer embeddings."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import nn

from baselines import hypernet
from suite.archs import Net
from suite.counting import solver
from suite.methods.base import Method, backbone, plain_backbone, require_family
from suite.methods.registry import register


class HyperNetSetting(TypedDict):
    """The hypernetwork's knob: its layer embeddings' size and its hidden width."""

    embedding: int
    hidden: int


@functools.lru_cache(maxsize=256)
def _layers(net: Net) -> tuple[tuple[tuple[int, ...], ...], int]:
    """(the shapes of the convs the generator makes, the backbone scalars outside them)."""
    with torch.device("meta"):
        model = net.build()
    shapes = tuple(tuple(model.get_submodule(n).weight.shape) for n in hypernet.targets(model))
    generated = sum(s[0] * s[1] * s[2] * s[3] for s in shapes)
    return shapes, backbone(model, net.arch.head) - generated


@register
@dataclass
class HyperNet(Method):
    """Counting rule: the generator, every tile's embedding, the convs it does not make (the
    first conv, the 1x1 shortcuts), BN and biases.

    Knob: the embedding size N_z and the generator's hidden size d (the paper: both 64).
    A budget takes the largest N_z (at most the largest N_z = d that fits) whose nearest d
    (the count is linear in d, in steps of 16 N_z + 160 scalars) meets it within tolerance.
    It reaches from N_z = d = 1 up to the plain network's size: a generator larger than what
    it generates is not the method."""

    name: str = "hypernet"
    knob: str = "embedding size N_z and generator hidden size d"
    description: str = (
        "HyperNetworks (Ha et al. 2016): one two-layer generator makes every 3x3 conv but the first, in "
        "16x16x3x3 tiles, each from its own learned layer embedding"
    )
    counting: str = "the generator, every tile's embedding, the first conv, the 1x1 shortcuts, BN and biases"

    def _count(self, net: Net, embedding: int, hidden: int) -> int:
        shapes, rest = _layers(net)
        return rest + hypernet.count(list(shapes), embedding, hidden)

    def reach(self, net: Net) -> tuple[int, int]:
        require_family(self, net, "resnet")
        return self._count(net, 1, 1), max(self._count(net, 1, 1), plain_backbone(net))

    def setting(self, net: Net, budget: int) -> HyperNetSetting:
        top = 1
        while self._count(net, top, top) < budget:
            top *= 2
        largest = int(solver.bisect(lambda e: self._count(net, e, e), 1, top, budget, integer=True))

        def nearest(e: int) -> tuple[int, int]:  # (|miss|, d) of the d nearest the budget at N_z = e
            step = self._count(net, e, 2) - self._count(net, e, 1)
            d = max(1, round((budget - self._count(net, e, 0)) / step))
            return abs(self._count(net, e, d) - budget), d

        # d's steps grow with N_z: of the N_z up to the largest that fits with d = N_z, the
        # largest whose nearest d meets the budget within tolerance (else the nearest of all).
        misses = {e: nearest(e) for e in range(1, largest + 1)}
        met = [e for e, (miss, _) in misses.items() if miss <= solver.TOLERANCE * budget]
        e = max(met) if met else min(misses, key=lambda e: misses[e][0])
        return {"embedding": e, "hidden": misses[e][1]}

    def build(self, net: Net, setting: HyperNetSetting, seed: int) -> nn.Module:
        return hypernet.convert(net.build(), setting["embedding"], setting["hidden"])
