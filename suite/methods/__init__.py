"""Methods: a name, one size knob, and how to build and train a model that meets a backbone
budget (suite.methods.base). One module per family, each registering its methods where it
defines them (suite.methods.registry):

- sharing: RPG and the schemes that are its generator with other maps (random sharing,
  the hashing trick, the ablations, block-level rings, unrolled MDEQ blocks);
- widths: the plain network; stacked: CPM, SharpNet reuse, unshared hourglasses;
- lego: LegoNet; equilibrium: MDEQ; pruning: IMP and structured pruning; quantisation: int8 RPG.
"""

from __future__ import annotations

import torch

from suite.archs import Net
from suite.counting.ledger import format_count, ledger
from suite.errors import BudgetError
from suite.methods import (  # noqa: F401 (they register)
    equilibrium,
    fpgm,
    hypernet,
    lego,
    lowrank,
    pruning,
    quantisation,
    sharing,
    softshare,
    ssn,
    stacked,
    widths,
)
from suite.methods.base import Built, Method, Trained, backbone, plain_backbone, plain_backbone_at
from suite.methods.registry import METHODS, get, register
from suite.methods.sharing import RPG

__all__ = [
    "METHODS",
    "RPG",
    "Built",
    "Method",
    "Trained",
    "backbone",
    "build",
    "check_budget",
    "get",
    "plain_backbone",
    "plain_backbone_at",
    "register",
]


def check_budget(method: Method, net: Net, budget: int) -> None:
    lo, hi = method.reach(net)
    if not lo <= budget <= hi:
        raise BudgetError(
            f"{method.name} cannot reach {format_count(budget)} ({budget}) backbone parameters on "
            f"{net.arch.name} at width {net.width:g}: it reaches {format_count(lo)} ({lo}) "
            f"to {format_count(hi)} ({hi})"
        )


def build(method: Method, net: Net, budget: int, seed: int, ring_std: str | float = "smallest") -> Built:
    """The method's model at the budget, its rings' W (if it has any) starting at
    ``ring_std``, with its ledger. Seeds torch first."""
    check_budget(method, net, budget)
    setting = method.with_ring_std(method.setting(net, budget), ring_std)
    torch.manual_seed(seed)
    model = method.build(net, setting, seed)
    return Built(model, setting, ledger(method.pruned(model, setting), net.arch.head), budget)
