"""Knapsack pruning with inner distillation (Aflalo et al. 2020): keep the channels whose
importance is largest for what they cost, under a FLOPs budget, then fine-tune with the
unpruned network as teacher.

- Channels are grouped as torch-pruning's dependency graph couples them (a residual
  stage's channels go together). A channel's value is its first-order Taylor importance,
  its weight the MACs it costs (measured positions, every coupled layer's slice).
- The selection is a 0/1 knapsack, solved exactly by dynamic programming or greedily by
  value per MAC; its capacity is bisected until the slimmed network's FLOPs, counted by
  torch's flop counter, fit the budget.
- torch-pruning removes the dropped channels physically; the fine-tuning objective adds
  block-wise MSE to the teacher at the kept channels (``InnerDistillation``).

The exact solver works on integer costs. MAC counts are large, so ``select`` rounds every
cost *up* to a grid of ``resolution`` steps of the capacity: a selection that fits the
rounded costs fits the real ones, and it is optimal for the rounded instance.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from baselines.plain import BasicBlock

if TYPE_CHECKING:
    import torch_pruning as tp


def dp(values: Sequence[float], costs: Sequence[int], capacity: int) -> list[int]:
    """Indices of an optimal 0/1 selection: the largest total value with total cost at most
    ``capacity`` (integer costs and capacity; O(items x capacity) time, and one bit per
    item and capacity for the backtrack)."""
    if any(c < 0 for c in costs) or capacity < 0:
        raise ValueError("costs and capacity must be non-negative")
    best = np.zeros(capacity + 1)
    took = np.zeros((len(values), capacity + 1), dtype=bool)
    for i, (v, c) in enumerate(zip(values, costs, strict=True)):
        if c > capacity:
            continue
        candidate = np.full(capacity + 1, -np.inf)
        candidate[c:] = best[: capacity + 1 - c] + v
        took[i] = candidate > best
        best = np.maximum(best, candidate)
    chosen, room = [], capacity
    for i in range(len(values) - 1, -1, -1):
        if took[i, room]:
            chosen.append(i)
            room -= costs[i]
    return sorted(chosen)


def greedy(values: Sequence[float], costs: Sequence[int], capacity: int) -> list[int]:
    """Indices taken by value per unit cost, best first, while they fit (free items first)."""
    order = sorted(range(len(values)), key=lambda i: -values[i] / costs[i] if costs[i] else -math.inf)
    chosen, used = [], 0
    for i in order:
        if used + costs[i] <= capacity:
            chosen.append(i)
            used += costs[i]
    return sorted(chosen)


def select(
    values: Sequence[float], costs: Sequence[int], capacity: int, *, exact: bool = True, resolution: int = 20_000
) -> list[int]:
    """The channel groups to keep under ``capacity`` MACs: exact DP on costs rounded up to
    a grid of ``resolution`` steps of the capacity (or greedy on the real costs)."""
    if not exact:
        return greedy(values, costs, capacity)
    step = max(1, capacity // resolution)
    return dp(values, [-(-c // step) for c in costs], capacity // step)


# ---------------------------------------------------------------------------------------------
# The pruning: channel groups, their importance and cost, the slimmed network, the fine-tuning
# ---------------------------------------------------------------------------------------------

TAYLOR_IMAGES = 1024  # training images whose gradients score the channels
SEARCH_STEPS = 24  # bisection steps on the knapsack's capacity


def groups(model: nn.Module, example: torch.Tensor, head: str) -> tuple[tp.DependencyGraph, list]:
    """torch-pruning's channel groups of every conv: channels that must go together (a
    residual stage's channels are one group) and every layer each one touches. The head's
    inputs follow its stage; its outputs (the classes) are never pruned."""
    import torch_pruning as tp  # here: it imports timm and torchvision's models, seconds every start

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    ignored = [model.get_submodule(head)]
    return graph, list(graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d]))


def positions(model: nn.Module, example: torch.Tensor) -> dict[nn.Module, int]:
    """Output positions per image (H x W; 1 for a linear layer) of every conv and linear layer."""
    out: dict[nn.Module, int] = {}
    hooks = [
        m.register_forward_hook(lambda m, _, y: out.__setitem__(m, math.prod(y.shape[2:])))
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    model.eval()
    with torch.no_grad():
        model(example[:1])
    for h in hooks:
        h.remove()
    return out


def channel_macs(graph: tp.DependencyGraph, group, where: dict[nn.Module, int]) -> int:
    """The MACs one channel of ``group`` costs: the output slice of every conv it is an
    output of, and the input slice of every conv or linear layer it feeds."""
    total = 0
    for item in group:
        layer, fn = item.dep.target.module, item.dep.handler
        if isinstance(layer, nn.Conv2d):
            k = math.prod(layer.kernel_size) * where[layer] // layer.groups
            if graph.is_out_channel_pruning_fn(fn):
                total += layer.in_channels * k
            elif graph.is_in_channel_pruning_fn(fn):
                total += layer.out_channels * k
        elif isinstance(layer, nn.Linear) and graph.is_in_channel_pruning_fn(fn):
            total += layer.out_features
    return total


def taylor(model: nn.Module, group_list: list, batches, loss) -> list[torch.Tensor]:
    """First-order Taylor importance of every channel, per group: |w * dL/dw| summed over
    the coupled layers' slices (torch-pruning's GroupTaylorImportance, unnormalised so that
    groups compare), with gradients of the loss over ``batches`` (eval mode: BN fixed)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        loss(model(x), y).backward()
    import torch_pruning as tp

    scorer = tp.importance.GroupTaylorImportance(group_reduction="sum", normalizer=None)
    with torch.no_grad():
        scores = [scorer(g).detach().cpu().double() for g in group_list]
    model.zero_grad(set_to_none=True)
    return scores


def keep_plan(values: list[torch.Tensor], costs: list[int], capacity: int, exact: bool = True) -> list[list[int]]:
    """The channels to keep, per group: each group's most important channel always (a layer
    keeps at least one), the rest chosen by the knapsack under ``capacity`` MACs."""
    first = [int(v.argmax()) for v in values]
    items = [(g, c) for g, v in enumerate(values) for c in range(len(v)) if c != first[g]]
    room = max(0, capacity - sum(costs))
    chosen = select([float(values[g][c]) for g, c in items], [costs[g] for g, _ in items], room, exact=exact)
    keep = [[f] for f in first]
    for i in chosen:
        g, c = items[i]
        keep[g].append(c)
    return [sorted(k) for k in keep]


def slim(model: nn.Module, example: torch.Tensor, head: str, keep: list[list[int]]) -> dict[str, list[int]]:
    """Remove, in place, every channel of every group that ``keep`` leaves out, with all it
    is coupled to (torch-pruning). Returns, for every conv, the original index of each output
    channel it still has."""
    graph, group_list = groups(model, example, head)
    kept = {n: list(range(m.out_channels)) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    names = {m: n for n, m in model.named_modules()}
    for group, k in zip(group_list, keep, strict=True):
        drop = sorted(set(range(len(group[0].idxs))) - set(k))
        if not drop:
            continue
        sub = graph.get_pruning_group(group[0].dep.target.module, group[0].dep.handler, drop)
        for item in sub:
            layer = item.dep.target.module
            if isinstance(layer, nn.Conv2d) and graph.is_out_channel_pruning_fn(item.dep.handler):
                gone = set(item.idxs)
                kept[names[layer]] = [c for i, c in enumerate(kept[names[layer]]) if i not in gone]
        sub.prune()
    return kept


def forward_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one image, counted by torch's flop counter (a multiply-add is 2)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example[:1])
    return int(counter.get_total_flops())


def prune_to_flops(
    model: nn.Module, example: torch.Tensor, head: str, scores: list[torch.Tensor], target: int, exact: bool = True
) -> dict:
    """Slim ``model`` in place to at most ``target`` forward FLOPs, measured: the knapsack's
    costs are per channel and add up, while a conv's real cost is the product of its input
    and output widths, so the capacity is bisected until the slimmed copy's measured FLOPs
    fit. Returns what was kept and what it costs."""
    graph, group_list = groups(model, example, head)
    where = positions(model, example)
    costs = [channel_macs(graph, g, where) for g in group_list]
    lo, hi, best = 0, sum(c * len(v) for c, v in zip(costs, scores, strict=True)), None
    for _ in range(SEARCH_STEPS):
        if lo > hi:
            break
        capacity = (lo + hi) // 2
        keep = keep_plan(scores, costs, capacity, exact)
        trial = copy.deepcopy(model)
        slim(trial, example, head, keep)
        flops = forward_flops(trial, example)
        if flops <= target:
            best, lo = (capacity, keep, flops), capacity + 1
        else:
            hi = capacity - 1
    if best is None:
        raise ValueError(f"no channel selection reaches {target:,} FLOPs (one channel per group costs more)")
    capacity, keep, flops = best
    kept = slim(model, example, head, keep)
    return {
        "capacity_macs": capacity,
        "flops": flops,
        "groups": [{"channels": len(v), "kept": len(k)} for v, k in zip(scores, keep, strict=True)],
        "kept": kept,
    }


class InnerDistillation:
    """Knapsack's fine-tuning objective: the task loss, plus for every residual block the
    mean squared error between the student's output and the unpruned teacher's output at the
    channels the student kept (Aflalo et al.'s inner distillation). Use as a context: the
    hooks that catch the blocks' outputs live inside it."""

    def __init__(self, teacher: nn.Module, student: nn.Module, kept: dict[str, list[int]], loss) -> None:
        self.teacher, self.student, self.loss = teacher.eval(), student, loss
        # A block's output channels are its last conv's (the residual adds onto them).
        self.blocks = [n for n, m in student.named_modules() if isinstance(m, BasicBlock)]
        self.index = {n: torch.tensor(kept[f"{n}.conv2"]) for n in self.blocks}
        self.caught: dict[tuple[str, str], torch.Tensor] = {}
        self.hooks: list = []

    def __enter__(self) -> InnerDistillation:
        for side, net in (("teacher", self.teacher), ("student", self.student)):
            for n in self.blocks:
                hook = net.get_submodule(n).register_forward_hook(
                    lambda _m, _i, y, key=(side, n): self.caught.__setitem__(key, y)
                )
                self.hooks.append(hook)
        return self

    def __exit__(self, *exc) -> None:
        for h in self.hooks:
            h.remove()
        self.caught.clear()

    def __call__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = net(x)
        with torch.no_grad():
            self.teacher(x)
        inner = sum(
            F.mse_loss(
                self.caught[("student", n)],
                self.caught[("teacher", n)].index_select(1, self.index[n].to(x.device)),
            )
            for n in self.blocks
        )
        return self.loss(out, y) + inner / max(1, len(self.blocks))


def restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Shape a freshly built network like a slimmed network's state dict (every tensor the
    state holds smaller), so that the state loads into it."""
    own = model.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            owner, _, name = key.rpartition(".")
            module = model.get_submodule(owner)
            blank = torch.empty_like(value, device=own[key].device)
            if isinstance(getattr(module, name), nn.Parameter):
                setattr(module, name, nn.Parameter(blank))
            else:
                setattr(module, name, blank)
