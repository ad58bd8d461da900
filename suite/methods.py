"""Methods: a name, one size knob, and how to build a model that meets a backbone budget.

Every method answers the same three questions, so one solver and one ledger serve all:
``reach(net)`` (the smallest and largest backbone its knob can give), ``setting(net,
budget)`` (the knob that meets the budget, found without allocating weights) and
``build(net, setting, seed)``.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import torch
from torch import nn

import rpg
from baselines.plain import scaled
from suite import solver
from suite.archs import Net
from suite.errors import BudgetError, UsageError
from suite.ledger import format_count, ledger


def backbone(model: nn.Module, head: str) -> int:
    """Trainable scalars outside the head, by the ledger's rule (meta models included)."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total - sum(p.numel() for p in model.get_submodule(head).parameters() if p.requires_grad)


@functools.lru_cache(maxsize=4096)
def _plain_backbone(net: Net, widths: tuple[int, ...]) -> int:
    with torch.device("meta"):
        return backbone(net.build(widths), net.arch.head)


@dataclass
class Built:
    model: nn.Module
    setting: dict
    ledger: dict
    budget: int

    @property
    def deviation(self) -> float:
        return solver.deviation(self.ledger["backbone"], self.budget)


class Method:
    name = ""
    knob = ""
    description = ""

    def reach(self, net: Net) -> tuple[int, int]:
        raise NotImplementedError

    def setting(self, net: Net, budget: int) -> dict:
        raise NotImplementedError

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        raise NotImplementedError


class Plain(Method):
    name = "plain"
    knob = "stage widths"
    description = "the conventional network, stage widths scaled (then set per stage) to meet the budget"
    max_multiplier = 4.0

    def _f(self, net: Net, multiplier: float) -> int:
        return _plain_backbone(net, scaled(net.widths, multiplier))

    def reach(self, net: Net) -> tuple[int, int]:
        return self._f(net, 0.0), self._f(net, self.max_multiplier)

    def setting(self, net: Net, budget: int) -> dict:
        m = solver.bisect(lambda m: self._f(net, m), 0.0, self.max_multiplier, budget, integer=False)
        # Per-stage widths fine-tune the count; they stay non-decreasing, as in a ResNet.
        widths = solver.refine(
            scaled(net.widths, m),
            lambda w: _plain_backbone(net, w),
            budget,
            steps=range(-3, 4),
            valid=lambda w: all(a <= b for a, b in itertools.pairwise(w)),
        )
        return {"widths": list(widths)}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        return net.build(tuple(setting["widths"]))


@dataclass
class RPG(Method):
    name: str = "rpg"
    index: str = "even"
    sign: str = "random"
    scope: str = "global"
    description: str = field(default="RPG: every conv generated from one global ring (even sampling, random signs)")
    knob = "ring size"

    def _split(self, net: Net) -> tuple[int, int]:
        """(weights the ring generates, backbone scalars it does not)."""
        with torch.device("meta"):
            model = net.build()
        generated = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd))
        return generated, backbone(model, net.arch.head) - generated

    def reach(self, net: Net) -> tuple[int, int]:
        generated, rest = self._split(net)
        # A ring larger than what it generates would leave elements unused.
        return rest + 1, rest + generated

    def setting(self, net: Net, budget: int) -> dict:
        _, rest = self._split(net)
        return {"ring_size": budget - rest}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        model = net.build()
        return rpg.convert(model, setting["ring_size"], index=self.index, sign=self.sign, scope=self.scope, seed=seed)


METHODS: dict[str, Method] = {m.name: m for m in [RPG(), Plain()]}


def get(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def check_budget(method: Method, net: Net, budget: int) -> None:
    lo, hi = method.reach(net)
    if not lo <= budget <= hi:
        raise BudgetError(
            f"{method.name} cannot reach {format_count(budget)} ({budget}) backbone parameters on "
            f"{net.arch.name} at width {net.width:g}: it reaches {format_count(lo)} ({lo}) "
            f"to {format_count(hi)} ({hi})"
        )


def build(method: Method, net: Net, budget: int, seed: int) -> Built:
    """The method's model at the budget, with its ledger. Seeds torch first."""
    check_budget(method, net, budget)
    setting = method.setting(net, budget)
    torch.manual_seed(seed)
    model = method.build(net, setting, seed)
    return Built(model, setting, ledger(model, net.arch.head), budget)
