"""Networks that meet a budget by their widths: the plain network (and, configured alike,
the unshared stacked hourglasses of suite.methods.stacked and MDEQ of
suite.methods.equilibrium)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TypedDict

from torch import nn

from baselines.plain import scaled
from suite.archs import Net
from suite.counting import solver
from suite.methods.base import Method, plain_backbone, plain_backbone_at, require_family
from suite.methods.registry import register


class WidthsSetting(TypedDict):
    """The plain network's knob: its stages' widths."""

    widths: list[int]


@dataclass
class Widths(Method):
    """The network itself, its widths scaled (then set one by one) to meet the budget.

    Counting rule: every trainable scalar outside the head."""

    name: str = "plain"
    family: str = "resnet"
    knob: str = "stage widths"
    description: str = "the conventional network, stage widths scaled (then set per stage) to meet the budget"
    counting: str = "every trainable scalar outside the task head (BN and biases included)"
    min_width: int = 1
    max_multiplier: float = 4.0

    def _widths(self, net: Net, multiplier: float) -> tuple[int, ...]:
        return tuple(max(self.min_width, w) for w in scaled(net.widths, multiplier))

    def _count(self, net: Net, multiplier: float) -> int:
        return plain_backbone_at(net, self._widths(net, multiplier))

    def reach(self, net: Net) -> tuple[int, int]:
        require_family(self, net, self.family)
        return self._count(net, 0.0), self._count(net, self.max_multiplier)

    def natural(self, net: Net) -> int:
        require_family(self, net, self.family)
        return plain_backbone(net)

    def setting(self, net: Net, budget: int) -> WidthsSetting:
        m = solver.bisect(lambda m: self._count(net, m), 0.0, self.max_multiplier, budget, integer=False)
        # Per-stage widths fine-tune the count; they stay non-decreasing, as in a ResNet.
        widths = solver.refine(
            self._widths(net, m),
            lambda w: plain_backbone_at(net, w),
            budget,
            steps=range(-3, 4),
            valid=lambda w: all(a <= b for a, b in itertools.pairwise(w)) and min(w) >= self.min_width,
        )
        return {"widths": list(widths)}

    def build(self, net: Net, setting: WidthsSetting, seed: int) -> nn.Module:
        return net.build(tuple(setting["widths"]))

    def counted(self, net: Net, budget: int) -> nn.Module:
        return self.build(net, self.setting(net, budget), 0)  # the network shrunk to its budget


PLAIN = register(Widths())
