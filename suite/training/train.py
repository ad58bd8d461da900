"""Training: one loop of optimiser steps, with model selection on validation (the test
split is never read here). What the loop does besides its steps -- resume and checkpoint,
model selection, compile, precision, data parallelism, stop signals and the hooks of
networks with phases -- are callbacks (suite.training.callbacks, suite.training.checkpoints).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from suite.errors import Diverged
from suite.system import distributed, quiet, stopping
from suite.system import progress as bars
from suite.tasks import Recipe, Splits, Task
from suite.training.callbacks import (
    BF16,
    Callback,
    Compile,
    DataParallel,
    Objective,
    OnStep,
    Phases,
    Run,
    SelectOnValidation,
    StopOnSignal,
)
from suite.training.checkpoints import Checkpoint, Resume

# --compile: whether fit trains through torch.compile (callbacks.Compile). Set per cell by
# suite.run.pipeline (``compiling``), read by every fit of the cell (IMP's rounds, a pruned
# network's fine-tuning): an execution choice like the device, so it is recorded with the
# cell but is not part of its key.
_compile: contextvars.ContextVar[bool] = contextvars.ContextVar("compile", default=False)


@contextlib.contextmanager
def compiling(on: bool) -> Iterator[None]:
    token = _compile.set(on)
    try:
        yield
    finally:
        _compile.reset(token)


@dataclass
class Trained:
    """What a method's training gives the runner: the model to test and measure, and how it
    got there. ``before`` is the model before pruning or quantisation, under its stage's
    name ("before-pruning", "before-quantisation"); a record shows the metric before and
    the drop. ``quantised``: the model computes in integers (it counts as the float model
    ``before``, and its FLOPs and peak memory are not measured).

    What is the method's own, the record carries as the method gives it: ``sections``, each
    a section of the record (a pruning's levels, a quantisation's scheme), and ``probes``,
    sections read over the test pass, each a function that returns what it saw since it was
    last called (an equilibrium model's solver statistics)."""

    model: nn.Module
    best_epoch: int
    history: list[dict]
    val: float
    before: tuple[str, nn.Module] | None = None
    quantised: bool = False
    sections: dict[str, dict] = field(default_factory=dict)
    probes: dict[str, Callable[[], dict]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: nn.Module, summary: dict, **extra) -> Trained:
        """From suite.training.train.fit's summary of the (last) training."""
        return cls(model, summary["best_epoch"], summary["history"], summary["val"], **extra)


def _scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.epochs * steps_per_epoch)
    if recipe.schedule == "step":
        milestones = [m * steps_per_epoch for m in recipe.milestones]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, recipe.gamma)
    if recipe.schedule == "poly":
        total = recipe.epochs * steps_per_epoch
        return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=0.9)
    raise ValueError(f"unknown schedule {recipe.schedule!r}")


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    trained = [p for p in model.parameters() if p.requires_grad]
    # A method may exempt parameters from weight decay (soft sharing's coefficients: its
    # paper decays the templates only) by marking them ``no_weight_decay``.
    exempt = [p for p in trained if getattr(p, "no_weight_decay", False)]
    params = [{"params": [p for p in trained if not getattr(p, "no_weight_decay", False)]}]
    params += [{"params": exempt, "weight_decay": 0.0}] if exempt else []
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "rmsprop":  # Newell et al.'s, for the hourglass networks
        return torch.optim.RMSprop(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Optimiser steps in one pass: a last batch too small to give every rank an example
    is skipped (Task.train_batches), so the schedule counts only the batches that train."""
    full, rest = divmod(examples, batch_size)
    return full + (rest >= max(1, distributed.world()))


def fit(
    model: nn.Module,
    task: Task,
    splits: Splits,
    recipe: Recipe,
    seed: int,
    *,
    progress: bool = True,
    desc: str = "",
    checkpoint: Path | None = None,
    on_step: Callable[[int, nn.Module], None] | None = None,
    objective: Objective | None = None,
) -> dict:
    """Train for recipe.epochs; keep the weights of the epoch with the best validation metric.

    Returns the training history and the selected epoch. Raises Diverged on a NaN or
    infinite loss (found at the end of its epoch: the loss is read once per epoch). With
    ``checkpoint``, the training resumes from the checkpoint there and writes it as it goes
    (suite.training.checkpoints). A stop signal (suite.system.stopping) ends training after
    the step it arrives in, with the checkpoint written there, and raises Stopped.
    ``on_step(step, model)`` is called after every optimiser step (step counts from 1
    across epochs; IMP takes its rewind point there). ``objective(model, x, y)`` replaces
    the task's loss of ``model(x)`` (Knapsack's fine-tuning distils from a teacher there).
    """
    run = _run(model, task, splits, recipe, seed, objective)
    callbacks = _callbacks(recipe, checkpoint, on_step)
    _each(callbacks, "on_fit_start", run)
    bar = bars.bar(
        range(run.epoch, recipe.epochs),
        desc=desc or "epochs",
        leave=False,
        disable=not progress,
        unit="ep",
        initial=run.epoch,
        total=recipe.epochs,
    )
    # While training, a stop signal only sets a flag: StopOnSignal reads it after each step
    # and each epoch, and the loop stops there, with the checkpoint written, so the rerun
    # continues from that very step.
    with stopping.deferred():
        for _ in bar:
            _epoch(run, callbacks)
            bar.set_postfix(loss=f"{run.loss:.3f}", val=f"{run.history[-1]['val']:.2f}")
            if run.stop is not None:
                raise stopping.Stopped(run.stop)
    _each(callbacks, "on_fit_end", run)
    return {"best_epoch": run.best["epoch"], "val": run.best["val"], "history": run.history}


def _run(model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, objective: Objective | None) -> Run:
    """A fresh run: no epoch done, nothing selected yet."""
    if objective is None:

        def objective(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return task.loss(net(x), y)

    optimizer = _optimizer(model, recipe)
    steps = steps_per_epoch(splits.sizes["train"], recipe.batch_size)
    sign = 1.0 if task.higher_is_better else -1.0
    return Run(
        model,
        task,
        splits,
        recipe,
        optimizer,
        _scheduler(optimizer, recipe, steps),
        steps,
        torch.Generator().manual_seed(seed),
        objective,
        best={"epoch": -1, "val": -math.inf * sign, "state": None},
    )


def _callbacks(
    recipe: Recipe, checkpoint: Path | None, on_step: Callable[[int, nn.Module], None] | None
) -> list[Callback]:
    """The callbacks of a fit, in the order each event calls them: the checkpoint is read
    before the model is converted, wrapped and compiled; at a step's or epoch's end the
    stop signal is read after the hooks and the checkpoint written last."""
    return [
        *([Resume(checkpoint)] if checkpoint is not None else []),
        *([BF16()] if recipe.precision == "bf16" else []),
        DataParallel(),
        *([Compile()] if _compile.get() else []),
        *([OnStep(on_step)] if on_step is not None else []),
        Phases(),
        SelectOnValidation(),
        StopOnSignal(),
        *([Checkpoint(checkpoint)] if checkpoint is not None else []),
    ]


def _each(callbacks: list[Callback], event: str, run: Run) -> None:
    for callback in callbacks:
        getattr(callback, event)(run)


def _epoch(run: Run, callbacks: list[Callback]) -> None:
    """One epoch: its steps, then its loss read (NaN or infinite: Diverged) and its end's
    callbacks. A stop signal seen after a step raises Stopped there."""
    run.trained.train()
    run.shuffled = run.shuffle.get_state()  # the epoch's draws start here (a stop's checkpoint keeps it)
    run.batches = run.task.train_batches(run.splits, run.recipe.batch_size, run.shuffle)
    run.total, run.count, run.done = 0.0, 0, 0
    _each(callbacks, "on_epoch_start", run)
    for x, y, share, size in run.batches:
        _step(run, x, y, share, size)
        _each(callbacks, "on_step_end", run)
        if run.stop is not None:
            raise stopping.Stopped(run.stop)
    # Every rank sees the same sum, so all stop together on a diverged loss.
    total = float(distributed.mean(torch.as_tensor(run.total)))
    if not math.isfinite(total):
        raise Diverged(f"loss became {total} at epoch {run.epoch + 1}")
    run.epoch += 1
    run.loss = total / run.count
    _each(callbacks, "on_epoch_end", run)


def _step(run: Run, x: torch.Tensor, y: torch.Tensor, share: float, size: int) -> None:
    """One optimiser step on this rank's slice ``x, y`` of a batch (``share``: its weight in
    the global batch's loss; ``size``: its examples)."""
    quiet.pause()  # under --jobs, while another worker measures
    loss = run.objective(run.trained, x, y).float() * share
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    # Summed on the device and read once per epoch: no host sync per step (a GPU keeps its
    # queue full). A NaN or inf anywhere in the epoch stays in the sum.
    run.total = run.total + loss.detach().double() * size
    run.count += size
    run.done += 1
