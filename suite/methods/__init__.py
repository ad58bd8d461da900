"""Methods: a name, one size knob, and how to build and train a model that meets a backbone
budget (suite.methods.base). One module per family, each registering its methods where it
defines them (suite.methods.registry):

- sharing: RPG and the schemes that are its generator with other maps (random sharing,
  the hashing trick, the ablations, block-level rings, unrolled MDEQ blocks);
- widths: the plain network; stacked: CPM, SharpNet reuse, unshared hourglasses;
- lego: LegoNet; equilibrium: MDEQ; pruning: IMP and structured pruning; quantisation: int8 RPG.
"""

from __future__ import annotations

from typing import Any

import pydantic
import torch

from suite.archs import Net
from suite.counting.ledger import format_count, ledger
from suite.errors import BudgetError, UsageError
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
from suite.methods.base import Built, Knobs, Method, Trained, backbone, plain_backbone, plain_backbone_at
from suite.methods.registry import METHODS, get, register
from suite.methods.sharing import RPG
from suite.tasks import recipes

__all__ = [
    "METHODS",
    "RPG",
    "Built",
    "Knobs",
    "Method",
    "Trained",
    "backbone",
    "build",
    "check_budget",
    "check_knobs",
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


def check_knobs(name: str, values: dict[str, Any], where: str) -> tuple:
    """``values`` (knob: value, from ``--set <name>.<knob>=value``) checked by method
    ``name``'s Knobs, as a sorted tuple of pairs a cell carries; or one line naming ``where``,
    and the method or the knob at fault with what exists."""
    method = get(name)
    known = tuple(method.knobs.model_fields)
    unknown = sorted(set(values) - set(known))
    if unknown:
        has = f"its knobs are {', '.join(known)}" if known else "it has no knobs"
        raise UsageError(f"{where}: method {name} has no knob {', '.join(unknown)}; {has}")
    try:
        method.knobs(**values)
    except pydantic.ValidationError as e:
        raise UsageError(f"{where}: {recipes.message(e)}") from None
    return tuple(sorted(values.items()))


def build(method: Method, net: Net, budget: int, seed: int, knobs: dict[str, Any] | None = None) -> Built:
    """The method's model at the budget, its ``knobs`` (checked by ``check_knobs``) set and
    the rest at their defaults, with its ledger. Seeds torch first."""
    check_budget(method, net, budget)
    setting = method.tuned(method.setting(net, budget), method.knobs(**(knobs or {})))
    torch.manual_seed(seed)
    model = method.build(net, setting, seed)
    return Built(model, setting, ledger(method.pruned(model, setting), net.arch.head), budget)
