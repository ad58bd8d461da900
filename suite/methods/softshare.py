"""Soft parameter sharing (Savarese & Maire 2019; baselines/softshare.py): each stage's 3x3
convs mix k templates of a bank the stage owns."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import nn

from baselines import softshare
from baselines.plain import scaled
from suite.archs import Net
from suite.counting import solver
from suite.methods.base import Method, backbone, require_family
from suite.methods.registry import register


class SoftShareSetting(TypedDict):
    """Soft sharing's knob: each stage's templates, and the stages' widths."""

    templates: list[int]
    widths: list[int]


@functools.lru_cache(maxsize=4096)
def _plan(net: Net, widths: tuple[int, ...]) -> tuple:
    """Per stage (its template shape, how many convs share it), and, last, the backbone
    scalars outside the shared convs."""
    with torch.device("meta"):
        model = net.build(widths)
    shared = softshare.stages(model)
    stages = tuple((tuple(model.get_submodule(n[0]).weight.shape), len(n)) for n in shared.values())
    generated = sum(model.get_submodule(n).weight.numel() for names in shared.values() for n in names)
    return (*stages, backbone(model, net.arch.head) - generated)


@register
@dataclass
class SoftSharing(Method):
    """Counting rule: every stage's templates (counted once, however many convs mix them),
    one coefficient per (template, shared conv), the convs that share nothing (the stem, each
    stage's first conv and shortcut), BN and biases.

    Knob: the templates per stage, k, one number for every stage as the paper's SWRN-L-k
    (capped at a stage's shared convs: k equal to them shares nothing), then, for an exact
    match, the stage widths -- the paper's other knob (its widen factor). A budget takes the
    smallest k that reaches it at the reference widths, and narrows the stages to meet it
    exactly; the network is never wider than the reference."""

    name: str = "soft-sharing"
    knob: str = "templates per stage (k), then stage widths for an exact match"
    description: str = (
        "soft parameter sharing (Savarese & Maire 2019): each stage's 3x3 convs are mixes of k templates the "
        "stage owns, each conv with its own coefficients (orthogonal at start, no weight decay)"
    )
    counting: str = (
        "every stage's templates once, one coefficient per (template, shared conv), the unshared convs "
        "(stem, each stage's first conv and shortcut), BN and biases"
    )

    def _count(self, net: Net, widths: tuple[int, ...], k: int) -> int:
        *stages, rest = _plan(net, widths)
        return rest + sum(softshare.count(shape, min(k, n), n) for shape, n in stages)

    def _most(self, net: Net) -> int:
        """The k at which no stage shares (its every conv a template of its own)."""
        require_family(self, net, "resnet")
        return max(n for _, n in _plan(net, net.widths)[:-1])

    def reach(self, net: Net) -> tuple[int, int]:
        most = self._most(net)
        return self._count(net, (1,) * len(net.widths), 1), self._count(net, net.widths, most)

    def setting(self, net: Net, budget: int) -> SoftShareSetting:
        ks = range(1, self._most(net) + 1)
        k = next((k for k in ks if self._count(net, net.widths, k) >= budget), ks[-1])

        def count(m: float) -> int:
            return self._count(net, scaled(net.widths, m), k)

        m = solver.bisect(count, 0.0, 1.0, budget, integer=False)
        widths = solver.refine(
            scaled(net.widths, m),
            lambda w: self._count(net, w, k),
            budget,
            steps=range(-3, 4),
            valid=lambda w: all(a <= b for a, b in itertools.pairwise(w)),
        )
        *stages, _ = _plan(net, widths)
        return {"templates": [min(k, n) for _, n in stages], "widths": list(widths)}

    def build(self, net: Net, setting: SoftShareSetting, seed: int) -> nn.Module:
        model = net.build(tuple(setting["widths"]))
        shared = softshare.stages(model)
        return softshare.convert(model, shared, dict(zip(shared, setting["templates"], strict=True)))

    def counted(self, net: Net, budget: int) -> nn.Module:
        return net.build(tuple(self.setting(net, budget)["widths"]))  # the narrowed network
