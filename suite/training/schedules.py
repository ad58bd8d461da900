"""The training schedules of the pruning methods: how many times the recipe runs and what
happens between runs. The pruning itself lives in baselines/ (which never imports the
engine); the engine trains.

IMP (Frankle et al. 2019; 2020; Table 6): train the dense network; prune by magnitude
(baselines.imp); rewind the survivors to iteration k of the first training; train again;
repeat down to the budget. Every round checkpoints under its own name beside the cell's
checkpoint, and so does the rewind point: a rerun replays finished rounds from their final
checkpoints (each prune is a function of the trained weights, so the replay lands on the
same masks) and resumes the unfinished one.

Structured pruning (Table 7): train the dense network, slim it to a fraction of its FLOPs
(Knapsack with inner distillation, baselines.knapsack; or l1 filter norm of RPG's blocks,
baselines.filters), fine-tune the slimmed network. The budget is a fraction of the dense
network's FLOPs, counted by torch's flop counter on the network as it runs: Table 7
prunes ResNet-18 (1.82e9 multiply-adds on ImageNet) to 1.09e9, and both its methods land
there. A rerun replays the dense training from its final checkpoint, prunes again (a
function of the trained weights and of fixed training batches) and resumes the fine-tuning.
"""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path

import torch
from torch import nn

import rpg
from baselines import filters, imp, knapsack
from suite.system import distributed
from suite.tasks import Recipe, Splits, Task
from suite.training import checkpoints, train

FLOPS_FRACTION = 0.6  # Table 7: 1.09e9 of ResNet-18's 1.82e9 multiply-adds


def _round_path(checkpoint: Path | None, name: str) -> Path | None:
    return checkpoint.with_name(f"{checkpoint.stem}.{name}.pt") if checkpoint else None


def iterative_magnitude(
    model: nn.Module,
    task: Task,
    splits: Splits,
    recipe: Recipe,
    seed: int,
    *,
    keep: int,
    rate: float = imp.RATE,
    rewind_fraction: float = imp.REWIND,
    progress: bool = True,
    desc: str = "",
    checkpoint: Path | None = None,
) -> train.Trained:
    """IMP on ``model`` down to ``keep`` prunable weights: the last round's training, every
    round's, and the dense network after the first round as the model before pruning."""
    tensors = imp.targets(model)
    plan = imp.levels(imp.remaining(tensors), keep, rate)
    steps = train.steps_per_epoch(splits.sizes["train"], recipe.batch_size) * recipe.epochs
    k = max(1, round(rewind_fraction * steps))
    saved = _round_path(checkpoint, "rewind")
    snapshot: dict[str, torch.Tensor] = {}
    if saved is not None and saved.exists():
        snapshot = torch.load(saved, weights_only=True)

    def take(step: int, net: nn.Module) -> None:
        if step == k and not snapshot:
            snapshot.update(copy.deepcopy(net.state_dict()))
            if saved is not None and distributed.is_main():  # under torchrun, rank 0 writes
                checkpoints.save(saved, snapshot)

    def round_(level: int, on_step=None) -> dict:
        label = f"{desc} round {level}/{len(plan)}"
        path = _round_path(checkpoint, f"round{level}")
        return train.fit(
            model, task, splits, recipe, seed, progress=progress, desc=label, checkpoint=path, on_step=on_step
        )

    rounds = [{"remaining": imp.remaining(tensors), **round_(0, take)}]
    if not snapshot:
        raise RuntimeError(f"the rewind point (step {k}) was never reached")
    dense = copy.deepcopy(model)
    for level, left in enumerate(plan, start=1):
        imp.prune_to(tensors, left)
        imp.rewind(model, snapshot)
        rounds.append({"remaining": left, **round_(level)})
    pruning = {
        "method": "imp",
        "rate": rate,
        "rewind_step": k,
        "levels": plan,
        "rounds": [{key: r[key] for key in ("remaining", "best_epoch", "val")} for r in rounds],
        "latency": "dense kernels with zeros",
    }
    return train.Trained.of(model, rounds[-1], before=("before-pruning", dense), sections={"pruning": pruning})


def _taylor_batches(task: Task, splits: Splits, recipe: Recipe):
    # A fixed shuffled sample: in file order, ImageFolder's first images are all one class.
    n = math.ceil(knapsack.TAYLOR_IMAGES / recipe.batch_size)
    return itertools.islice(task.batches(splits, "train", recipe.batch_size, torch.Generator().manual_seed(0)), n)


def slimmed(
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
) -> train.Trained:
    """Train ``model``, slim it in place with ``pruner`` ("knapsack" or "l1-filters") to
    ``fraction`` of its FLOPs and fine-tune it."""

    def round_(level: int, objective=None) -> dict:
        label = f"{desc} {'fine-tune' if level else 'dense'}"
        path = _round_path(checkpoint, f"round{level}")
        return train.fit(
            model, task, splits, recipe, seed, progress=progress, desc=label, checkpoint=path, objective=objective
        )

    dense_round = round_(0)
    dense = copy.deepcopy(model)
    example = splits.head("train", 1)[0]
    dense_flops = knapsack.forward_flops(rpg.materialize(model), example)
    target = math.floor(fraction * dense_flops)
    objective = None
    if pruner == "knapsack":
        _, group_list = knapsack.groups(model, example, head)
        scores = knapsack.taylor(model, group_list, _taylor_batches(task, splits, recipe), task.loss)
        info = knapsack.prune_to_flops(model, example, head, scores, target)
        objective = knapsack.InnerDistillation(dense, model, info.pop("kept"), task.loss)
        with objective:
            tuned = round_(1, objective)
    else:
        info = filters.prune_to_flops(model, example, target)
        tuned = round_(1)
    pruning = {
        "method": pruner,
        "flops_fraction": fraction,
        "dense_flops": dense_flops,
        "target_flops": target,
        **info,
        "rounds": [{key: r[key] for key in ("best_epoch", "val")} for r in (dense_round, tuned)],
        "fine_tuning": "inner distillation from the dense network" if objective else "the task loss",
        "latency": "the slimmed network's dense kernels",
    }
    return train.Trained.of(model, tuned, before=("before-pruning", dense), sections={"pruning": pruning})
