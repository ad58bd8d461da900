"""Pruning to a budget (Tables 6 and 7): a dense network trained, then pruned by a
schedule of suite/training/schedules.py. The dense network is another method's (plain, or RPG with
its ring), built at a fraction of the plain backbone or at the budget itself."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import nn

from baselines import filters, imp, knapsack
from suite.archs import Net
from suite.methods.base import Knobs, Method, Trained, backbone, plain_backbone, require_family
from suite.methods.registry import register
from suite.methods.sharing import RPG, RPG_
from suite.methods.widths import PLAIN
from suite.tasks import Recipe, Splits, Task
from suite.training import schedules


class ImpSetting(TypedDict):
    """IMP's knob: the dense network's setting, the weights the last level keeps, the
    levels' remaining counts and the rate each level prunes."""

    dense: dict
    keep: int
    levels: list[int]
    rate: float


class SlimSetting(TypedDict):
    """Structured pruning's knob: the dense network's setting (its start method's), the
    share of its FLOPs the slimmed network keeps, and the head no pruning touches."""

    dense: dict
    flops_fraction: float
    head: str


class _FromDense:
    """A pruning method starts from another method's dense network (``start``): its knobs, what
    they change in the setting (under ``dense``) and the model it builds are that method's."""

    start: Method

    @property
    def knobs(self) -> type[Knobs]:
        return self.start.knobs

    def tuned(self, setting, knobs: Knobs):
        return {**setting, "dense": self.start.tuned(setting["dense"], knobs)}

    def build(self, net: Net, setting, seed: int) -> nn.Module:
        return self.start.build(net, setting["dense"], seed)


@dataclass
class Imp(_FromDense, Method):
    """Iterative magnitude pruning with rewinding of a dense network down to the budget: the
    plain network at its natural size (``imp``), or RPG with a ring of half the plain
    backbone (``rpg-imp``, Table 6's pruned ResNet-18-RPG: the paper's ResNet-18-RPG
    elsewhere has half of ResNet-18's backbone; it does not say which it pruned).

    Counting rule: a pruned tensor counts its unmasked entries (its mask's nonzeros, not the
    ``numel`` of ``weight_orig``), plus BN and biases."""

    name: str
    start: Method
    start_fraction: float
    description: str
    knob: str = "weights kept by the last pruning level"
    counting: str = (
        "unmasked entries of every pruned tensor (the mask's nonzeros, not numel of weight_orig), plus BN and biases"
    )

    def _dense(self, net: Net) -> tuple[dict, int, int]:
        """(the dense network's setting, its backbone, the prunable weights in it)."""
        require_family(self, net, "resnet")
        setting = self.start.setting(net, round(self.start_fraction * plain_backbone(net)))
        if isinstance(self.start, RPG):
            _, rest, _ = self.start.split(net)
            return setting, rest + setting["ring_size"], setting["ring_size"]
        with torch.device("meta"):
            model = self.start.build(net, setting, 0)
        return setting, backbone(model, net.arch.head), sum(m.weight.numel() for m, _ in imp.targets(model))

    def reach(self, net: Net) -> tuple[int, int]:
        _, total, prunable = self._dense(net)
        return total - prunable + 1, total

    def setting(self, net: Net, budget: int) -> ImpSetting:
        dense, total, prunable = self._dense(net)
        keep = prunable - (total - budget)
        return {"dense": dense, "keep": keep, "levels": imp.levels(prunable, keep), "rate": imp.RATE}

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: ImpSetting, **kw
    ) -> Trained:
        return schedules.iterative_magnitude(
            model, task, splits, recipe, seed, keep=setting["keep"], rate=setting["rate"], **kw
        )

    def trainings(self, net: Net, budget: int) -> int:
        return 1 + len(self.setting(net, budget)["levels"])

    def counted(self, net: Net, budget: int) -> nn.Module:
        return self.start.counted(net, round(self.start_fraction * plain_backbone(net)))

    def pruned(self, model: nn.Module, setting: ImpSetting) -> nn.Module:
        """A copy pruned to the budget in one shot, at its current weights: the count IMP's
        last level lands on (``rpg-bench ledger`` shows it; training prunes in levels)."""
        copy_ = copy.deepcopy(model)
        imp.prune_to(imp.targets(copy_), setting["keep"])
        return copy_


@dataclass
class Slim(_FromDense, Method):
    """Structured pruning to a FLOPs budget (Table 7): a dense network trained, slimmed to
    60% of its FLOPs, fine-tuned. The budget is the size before pruning, as Table 7 reports
    it: Knapsack prunes the plain network at that size, rpg-l1-pruned the RPG network.

    Counting rule: the slimmed network's trainable scalars outside the head (an RPG
    network keeps its whole ring), plus BN and biases."""

    name: str
    start: Method
    pruner: str  # "knapsack" or "l1-filters"
    description: str
    budget_before_pruning = True

    @property
    def knob(self) -> str:
        return f"{self.start.knob} before pruning"

    @property
    def counting(self) -> str:
        return f"before pruning, as {self.start.name}: {self.start.counting}; recorded after slimming too"

    def reach(self, net: Net) -> tuple[int, int]:
        require_family(self, net, "resnet")
        return self.start.reach(net)

    def setting(self, net: Net, budget: int) -> SlimSetting:
        return {
            "dense": self.start.setting(net, budget),
            "flops_fraction": schedules.FLOPS_FRACTION,
            "head": net.arch.head,
        }

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: SlimSetting, **kw
    ) -> Trained:
        return schedules.slimmed(
            model,
            task,
            splits,
            recipe,
            seed,
            pruner=self.pruner,
            head=setting["head"],
            fraction=setting["flops_fraction"],
            **kw,
        )

    def trainings(self, net: Net, budget: int) -> int:
        return 2  # dense, then fine-tuned

    def counted(self, net: Net, budget: int) -> nn.Module:
        return self.start.counted(net, budget)

    def rebuild(self, net: Net, setting: SlimSetting, seed: int, state: dict) -> nn.Module:
        model = self.build(net, setting, seed)
        (filters.restore if self.pruner == "l1-filters" else knapsack.restore)(model, state)
        model.load_state_dict(state)
        return model


register(
    Imp(
        "imp",
        PLAIN,
        1.0,
        "IMP (Frankle et al. 2019): the plain network trained, 20% of its conv weights pruned globally by "
        "magnitude per level, rewound to an early iteration and retrained, down to the budget",
    )
)
register(
    Imp(
        "rpg-imp",
        RPG_,
        0.5,
        "RPG with a ring of half the plain backbone, its ring pruned by the same IMP down to the budget (Table 6)",
    )
)
register(
    Slim(
        "knapsack",
        PLAIN,
        "knapsack",
        "Knapsack pruning with inner distillation (Aflalo et al. 2020): the plain network trained, its channels "
        "(residual-coupled ones grouped) chosen by a knapsack on Taylor importance per MAC down to 60% of its "
        "FLOPs, removed, fine-tuned with the unpruned network as teacher (block-wise MSE)",
    )
)
register(
    Slim(
        "rpg-l1-pruned",
        RPG_,
        "l1-filters",
        "RPG trained, then l1-norm filter pruning (Li et al. 2017) of every residual block's first conv down to "
        "60% of its FLOPs, the ring kept, fine-tuned (Table 7)",
    )
)
