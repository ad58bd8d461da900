"""FPGM (He et al., CVPR 2019; baselines/fpgm.py): the plain network at its natural size
trained, its filters pruned by geometric median down to the budget, fine-tuned."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import nn

from baselines import fpgm
from suite.archs import Net
from suite.methods import knobs
from suite.methods.base import Method, Trained, backbone, require_family
from suite.methods.registry import register
from suite.tasks import Recipe, Splits, Task
from suite.training import train


class FpgmSetting(TypedDict):
    """FPGM's knob: the filters each coupled group keeps, by group."""

    keep: dict[str, int]


@functools.lru_cache(maxsize=256)
def _plan(net: Net) -> tuple[tuple[str, ...], tuple[int, ...], tuple, int]:
    """(the channel groups, their channels, the layout of the convs and BNs they cover, the
    backbone scalars outside those)."""
    with torch.device("meta"):
        model = net.build()
    groups = tuple(fpgm.groups(model))
    roots = fpgm.roots(model)
    channels = tuple(model.get_submodule(roots[g]).out_channels for g in groups)
    layout = fpgm.layout(model)
    full = fpgm.count(layout, dict(zip(groups, channels, strict=True)))
    return groups, channels, tuple(layout.items()), backbone(model, net.arch.head) - full


def _example(model: nn.Module) -> torch.Tensor:
    """An input the dependency graph traces with (any image size the stem downsamples)."""
    conv = model.get_submodule("conv1")
    return torch.randn(1, conv.in_channels, 32, 32, device=conv.weight.device)


@register
@dataclass
class Fpgm(Method):
    """Counting rule: the pruned network's trainable scalars outside the head, BN included
    (the budget is met after pruning: what is deployed and counted is the pruned network).

    Knob: channels kept per group (each stage's residual stream, each block's inner
    channels). One kept fraction for every group, as FPGM prunes every layer at one rate,
    then single channels, largest first, while one fits."""

    name: str = "fpgm"
    knob: str = "channels kept per group (one fraction, then single channels)"
    description: str = (
        "FPGM (He et al. 2019): the plain network trained, the filters nearest their layer's geometric median "
        "removed (torch-pruning's FPGMImportance over residual-coupled groups) down to the budget, fine-tuned"
    )
    counting: str = "the pruned network's trainable scalars outside the head, BN included"

    def _total(self, net: Net):
        require_family(self, net, "resnet")
        groups, channels, layout, rest = _plan(net)
        layers = dict(layout)

        def total(keep: knobs.Knobs) -> int:
            return rest + fpgm.count(layers, {g: k for g, (k,) in zip(groups, keep, strict=True)})

        return [(c,) for c in channels], total

    def reach(self, net: Net) -> tuple[int, int]:
        caps, total = self._total(net)
        return total(knobs.at(caps, 0.0)), total(caps)

    def setting(self, net: Net, budget: int) -> FpgmSetting:
        caps, total = self._total(net)
        groups = _plan(net)[0]
        keep = knobs.meet(caps, total, budget)
        return {"keep": {g: k for g, (k,) in zip(groups, keep, strict=True)}}

    def build(self, net: Net, setting: FpgmSetting, seed: int) -> nn.Module:
        return net.build()  # dense: pruned after its training

    def pruned(self, model: nn.Module, setting: FpgmSetting) -> nn.Module:
        """A copy pruned to the budget at its current weights: the count training lands on."""
        copy_ = copy.deepcopy(model)
        fpgm.prune(copy_, _example(copy_), setting["keep"])
        return copy_

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: FpgmSetting, **kw
    ) -> Trained:
        """Train, prune, fine-tune (each round checkpointed under its own name beside the
        cell's, so a rerun replays the dense round, prunes alike and resumes the fine-tuning)."""
        checkpoint, desc = kw.pop("checkpoint", None), kw.pop("desc", "")

        def round_(level: int) -> dict:
            path = checkpoint.with_name(f"{checkpoint.stem}.round{level}.pt") if checkpoint else None
            label = f"{desc} {'fine-tune' if level else 'dense'}"
            return train.fit(model, task, splits, recipe, seed, desc=label, checkpoint=path, **kw)

        dense_round = round_(0)
        dense = copy.deepcopy(model)
        kept = fpgm.prune(model, _example(model), setting["keep"])
        tuned = round_(1)
        pruning = {
            "method": "fpgm",
            "importance": "torch-pruning FPGMImportance (p=2), per residual-coupled group",
            "kept": kept,
            "rounds": [{key: r[key] for key in ("best_epoch", "val")} for r in (dense_round, tuned)],
            "fine_tuning": "the task loss",
            "latency": "the pruned network's dense kernels",
        }
        return Trained.of(model, tuned, before=("before-pruning", dense), sections={"pruning": pruning})

    def trainings(self, net: Net, budget: int) -> int:
        return 2  # dense, then fine-tuned

    def counted(self, net: Net, budget: int) -> nn.Module:
        return net.build()  # the dense network (the fine-tuning's is smaller)

    def rebuild(self, net: Net, setting: FpgmSetting, seed: int, state: dict) -> nn.Module:
        model = self.build(net, setting, seed)
        fpgm.restore(model, state)
        model.load_state_dict(state)
        return model
