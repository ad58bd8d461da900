"""Shapeshifter Networks (Plummer et al. 2022; baselines/ssn.py): every conv generated from
the flat bank of its parameter group, groups random or learned."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import torch
from sklearn.cluster import KMeans
from torch import nn

from baselines import ssn
from suite.archs import Net
from suite.methods.base import Method, Trained, backbone, require_family
from suite.methods.registry import register
from suite.tasks import Recipe, Splits, Task
from suite.training import train


class ShapeshifterSetting(TypedDict):
    """SSN's knob: the banks' scalars, its parameter groups and how they are assigned."""

    banks: int
    groups: int
    assignment: str


# Learned groups: the share of the recipe's epochs the one-group network trains before its
# layers are clustered (SSN's CIFAR recipe: --param_group_epochs 15 of 200), at least one.
PRETRAIN_FRACTION = 0.075


@functools.lru_cache(maxsize=256)
def _layers(net: Net) -> tuple[tuple[int, ...], int]:
    """(the weights of every conv, in ``ssn.targets`` order; the backbone scalars outside them)."""
    with torch.device("meta"):
        model = net.build()
    sizes = tuple(model.get_submodule(n).weight.numel() for n in ssn.targets(model))
    return sizes, backbone(model, net.arch.head) - sum(sizes)


def _convert(model: nn.Module, setting: ShapeshifterSetting, labels: list[int]) -> nn.Module:
    """``model``'s convs generated from banks by group ``labels`` (renumbered by first
    appearance, so an empty group is no bank), each bank sized by the weights it generates."""
    order = list(dict.fromkeys(labels))
    groups = [order.index(g) for g in labels]
    sizes = [model.get_submodule(n).weight.numel() for n in ssn.targets(model)]
    needs = [sum(s for s, g in zip(sizes, groups, strict=True) if g == i) for i in range(len(order))]
    return ssn.convert(model, groups, ssn.split(setting["banks"], needs, ssn.TEMPLATES))


def _reset(model: nn.Module) -> None:
    """Every layer outside the generated convs back to its initial distribution (BN to its
    identity, the head to nn.Linear's default): what a fresh build would hold."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm | nn.Linear):
            module.reset_parameters()


@dataclass
class Shapeshifter(Method):
    """Counting rule: every bank once (however many layers read it), T = 8 coefficients per
    conv, BN and biases.

    Knob: the banks' total size, to the scalar (so every budget in reach is met exactly):
    the budget less BN and the coefficients. From G banks of T scalars each up to banks as
    large as the weights they generate (SSN's high-budget regime, larger still, is not run)."""

    name: str = "ssn"
    groups: int = 4  # ours: the paper's count for CIFAR ResNets was not readable here
    assignment: str = "learned"  # or "random"
    description: str = (
        "Shapeshifter Networks (Plummer et al. 2022): every conv mixes 8 candidates read from its parameter "
        "group's flat bank (interpolated where it needs more); 4 groups learned by k-means on the layers' "
        "coefficients after a short one-group training"
    )
    knob: str = "the banks' total size (to the scalar)"
    counting: str = "every bank once, 8 coefficients per conv, BN and biases"

    def _fixed(self, net: Net) -> int:
        """What the budget holds besides the banks: BN (and biases) and the coefficients."""
        require_family(self, net, "resnet")
        sizes, rest = _layers(net)
        return rest + ssn.TEMPLATES * len(sizes)

    def reach(self, net: Net) -> tuple[int, int]:
        sizes, _ = _layers(net)
        return self._fixed(net) + self.groups * ssn.TEMPLATES, self._fixed(net) + sum(sizes)

    def setting(self, net: Net, budget: int) -> ShapeshifterSetting:
        return {"banks": budget - self._fixed(net), "groups": self.groups, "assignment": self.assignment}

    def _assemble(self, net: Net, setting: ShapeshifterSetting, groups: list[int]) -> nn.Module:
        return _convert(net.build(), setting, groups)

    def build(self, net: Net, setting: ShapeshifterSetting, seed: int) -> nn.Module:
        sizes, _ = _layers(net)
        if setting["assignment"] == "learned":  # one group until training has learned them
            return self._assemble(net, setting, [0] * len(sizes))
        deal = torch.randperm(len(sizes), generator=torch.Generator().manual_seed(seed)).tolist()
        return self._assemble(net, setting, [d % setting["groups"] for d in deal])

    def rebuild(self, net: Net, setting: ShapeshifterSetting, seed: int, state: dict) -> nn.Module:
        model = self._assemble(net, setting, state["ssn_groups"].tolist())
        model.load_state_dict(state)
        return model

    def train(
        self,
        model: nn.Module,
        task: Task,
        splits: Splits,
        recipe: Recipe,
        seed: int,
        setting: ShapeshifterSetting,
        **kw,
    ) -> Trained:
        if setting["assignment"] != "learned":
            return super().train(model, task, splits, recipe, seed, setting, **kw)
        checkpoint: Path | None = kw.pop("checkpoint", None)
        desc = kw.pop("desc", "")
        early = recipe.model_copy(update={"epochs": max(1, math.ceil(PRETRAIN_FRACTION * recipe.epochs))})
        path = checkpoint.with_name(f"{checkpoint.stem}.groups.pt") if checkpoint else None
        train.fit(model, task, splits, early, seed, desc=f"{desc} groups", checkpoint=path, **kw)
        features = ssn.coefficients(model).cpu().double().numpy()
        clusters = min(setting["groups"], len({tuple(f) for f in features.tolist()}))
        groups = KMeans(clusters, n_init=10, random_state=seed).fit_predict(features).tolist()
        # The main training starts afresh from the learned groups, as a fresh build would.
        torch.manual_seed(seed)
        names = ssn.targets(model)
        for name in names:
            torch.nn.utils.parametrize.remove_parametrizations(model.get_submodule(name), "weight")
        _reset(model)
        _convert(model, setting, groups)
        summary = train.fit(model, task, splits, recipe, seed, desc=desc, checkpoint=checkpoint, **kw)
        return Trained.of(model, summary)

    def trainings(self, net: Net, budget: int) -> float:
        return 1 + PRETRAIN_FRACTION if self.assignment == "learned" else 1


register(Shapeshifter())
register(
    Shapeshifter(
        "ssn-random",
        assignment="random",
        description=(
            "Shapeshifter Networks with random parameter groups: every conv dealt by the seed to one of 4 groups, "
            "each mixing 8 candidates from its group's flat bank"
        ),
    )
)
