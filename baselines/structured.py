"""Structured pruning's schedule (Table 7): train the dense network, slim it to a FLOPs
budget, fine-tune the slimmed network.

The budget is a fraction of the dense network's FLOPs, counted by torch's flop counter
on the network as it runs; Table 7 prunes ResNet-18 (1.82e9 multiply-adds on ImageNet)
to 1.09e9, and both of its methods land on the same count. Fine-tuning runs the recipe
again, as IMP retrains each level. Resuming: the dense training and the fine-tuning
checkpoint beside the cell's checkpoint; a rerun replays the dense training from its final
checkpoint, prunes again (a function of the trained weights and of fixed training
batches, so the same network) and resumes the fine-tuning.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import rpg
from baselines import filters, knapsack
from suite.tasks import Recipe, Splits, Task
from suite.train import fit

FLOPS_FRACTION = 0.6  # Table 7: 1.09e9 of ResNet-18's 1.82e9 multiply-adds


def _knapsack(model: nn.Module, task: Task, splits: Splits, recipe: Recipe, head: str, target: int, teacher, example):
    _, group_list = knapsack.groups(model, example, head)
    n = math.ceil(knapsack.TAYLOR_IMAGES / recipe.batch_size)
    # A fixed shuffled sample: in file order, ImageFolder's first images are all one class.
    batches = itertools.islice(task.batches(splits, "train", recipe.batch_size, torch.Generator().manual_seed(0)), n)
    scores = knapsack.taylor(model, group_list, batches, task.loss)
    info = knapsack.prune_to_flops(model, example, head, scores, target)
    kept = info.pop("kept")
    return info, knapsack.InnerDistillation(teacher, model, kept, task.loss)


def _l1(model: nn.Module, task: Task, splits: Splits, recipe: Recipe, head: str, target: int, teacher, example):
    return filters.prune_to_flops(model, example, target), None


PRUNERS: dict[str, Callable] = {"knapsack": _knapsack, "l1-filters": _l1}


def train(
    model: nn.Module,
    task: Task,
    splits: Splits,
    recipe: Recipe,
    seed: int,
    *,
    pruner: str,
    head: str,
    fraction: float = FLOPS_FRACTION,
    progress: bool = True,
    desc: str = "",
    checkpoint: Path | None = None,
) -> dict:
    """Train ``model``, slim it in place with ``pruner`` to ``fraction`` of its FLOPs and
    fine-tune it; returns fit's summary of the fine-tuning, both rounds', the pruning's
    record and the dense network as the "before-pruning" stage."""

    def round_(level: int, objective=None) -> dict:
        path = checkpoint.with_name(f"{checkpoint.stem}.round{level}.pt") if checkpoint else None
        label = f"{desc} {'fine-tune' if level else 'dense'}"
        return fit(
            model, task, splits, recipe, seed, progress=progress, desc=label, checkpoint=path, objective=objective
        )

    dense_round = round_(0)
    dense = copy.deepcopy(model)
    example = splits.head("train", 1)[0]
    dense_flops = knapsack.forward_flops(rpg.materialize(model), example)
    target = math.floor(fraction * dense_flops)
    info, objective = PRUNERS[pruner](model, task, splits, recipe, head, target, dense, example)
    if objective is None:
        tuned = round_(1)
    else:
        with objective:
            tuned = round_(1, objective)
    rounds = [{key: r[key] for key in ("best_epoch", "val")} for r in (dense_round, tuned)]
    return {
        "best_epoch": tuned["best_epoch"],
        "val": tuned["val"],
        "history": tuned["history"],
        "pruning": {
            "method": pruner,
            "flops_fraction": fraction,
            "dense_flops": dense_flops,
            "target_flops": target,
            **info,
            "rounds": rounds,
            "fine_tuning": "inner distillation from the dense network" if objective else "the task loss",
            "latency": "the slimmed network's dense kernels",
        },
        "stages": {"before-pruning": dense},
    }
