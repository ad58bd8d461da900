"""What a training does besides its steps, as callbacks on one loop (suite.training.train.fit).

The loop keeps its state in a ``Run``; a ``Callback`` hears of the fit's start, each epoch's
start, each optimiser step, each epoch's end and the fit's end, and reads or changes the run
there. Callbacks are called in the order fit lists them, for every event. The resume
checkpoint's two callbacks are in suite.training.checkpoints.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from baselines.phases import Phased
from suite.system import distributed, stopping
from suite.tasks import Recipe, Splits, Task

log = logging.getLogger("rpg_bench.cell")  # the cell's log file (suite.run.pipeline)

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Run:
    """One fit's state. ``epoch`` counts the epochs done (the one under way is ``epoch + 1``);
    ``step`` the optimiser steps, from 1 across epochs. ``trained`` is what a step calls: the
    model, or its data-parallel or compiled wrapper. ``best`` is the selected epoch (its
    number, validation metric and weights). The epoch under way: ``shuffled`` (the shuffle's
    state when it started), ``batches`` (its batches still to come), ``total``, ``count`` and
    ``done`` (its summed loss, examples and batches so far); ``loss`` is the last epoch's mean
    training loss. ``stop`` is the stop signal seen at the last step or epoch's end."""

    model: nn.Module
    task: Task
    splits: Splits
    recipe: Recipe
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int
    shuffle: torch.Generator
    objective: Objective
    best: dict
    trained: nn.Module | None = None
    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    shuffled: torch.Tensor | None = None
    batches: Iterator | None = None
    total: float | torch.Tensor = 0.0
    count: int = 0
    done: int = 0
    loss: float = math.nan
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.trained is None:
            self.trained = self.model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


class Callback:
    """A part of training beside the steps; every hook does nothing unless overridden."""

    def on_fit_start(self, run: Run) -> None:
        """Before the first epoch (of this call: a resumed fit starts later)."""

    def on_epoch_start(self, run: Run) -> None:
        """The epoch's batches are drawn (``run.batches``), none trained yet."""

    def on_step_end(self, run: Run) -> None:
        """After an optimiser step, its loss counted in ``run.total``."""

    def on_epoch_end(self, run: Run) -> None:
        """After an epoch's steps, ``run.epoch`` counting it and ``run.loss`` its mean loss."""

    def on_fit_end(self, run: Run) -> None:
        """After the last epoch (not after a stop or an error)."""


def compile_options(device: torch.device) -> dict | None:
    """Inductor's options for a training step on ``device``: on a CPU, no layout optimisation
    (Compile says why)."""
    return {"layout_optimization": False} if device.type == "cpu" else None


class Compile(Callback):
    """The training step through torch.compile (its forward and, by AOTAutograd, its backward).

    Not fullgraph: some comparators' forwards (MDEQ's solver loop, LegoNet's phases) break
    the graph, and compile runs them eagerly there; RPG's rings compile whole. On a CPU
    without inductor's layout optimisation: it makes convolutions channels-last, and
    oneDNN's channels-last weight gradient with an odd channel count (digits' one input
    channel) corrupts the heap in torch 2.14.1 (crop_flip's note): compiled digits training
    aborted with "double free", or trained on silently altered numbers."""

    def on_fit_start(self, run: Run) -> None:
        run.trained = torch.compile(run.trained, options=compile_options(run.device))


class BF16(Callback):
    """bf16 autocast around each step's forward and loss (the loss itself in float). On CUDA
    the model and its 4-d inputs are channels-last meanwhile, which feeds the tensor cores'
    convolutions; on a CPU that would only cost copies."""

    def on_fit_start(self, run: Run) -> None:
        self.channels_last = run.device.type == "cuda"
        if self.channels_last:
            run.model.to(memory_format=torch.channels_last)
        objective, device = run.objective, run.device.type

        def autocast(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device, dtype=torch.bfloat16):
                return objective(net, x, y).float()

        run.objective = autocast

    def on_fit_end(self, run: Run) -> None:
        if self.channels_last:
            run.model.to(memory_format=torch.contiguous_format)


class DataParallel(Callback):
    """Under torchrun, the ranks train one global batch together (suite.system.distributed);
    outside it the model trains as it is."""

    def on_fit_start(self, run: Run) -> None:
        # A phased network may stop training some parameters midway (LegoNet's frozen
        # selection): DDP must then expect parameters without gradients.
        phased = any(isinstance(m, Phased) for m in run.model.modules())
        run.trained = distributed.wrap(run.trained, find_unused_parameters=phased)

    def on_fit_end(self, run: Run) -> None:
        distributed.unwrap(run.model)


class Phases(Callback):
    """Networks whose training has phases (baselines.phases.Phased) hear of each epoch's end."""

    def on_epoch_end(self, run: Run) -> None:
        for module in run.model.modules():
            if isinstance(module, Phased):
                module.on_epoch_end(run.epoch, run.recipe.epochs)


class SelectOnValidation(Callback):
    """Model selection: each epoch's model is evaluated on the validation split (recorded in
    the history and the cell's log) and the best epoch's weights are kept; the fit ends with
    them loaded. The test split is never read."""

    def on_epoch_end(self, run: Run) -> None:
        val = run.task.evaluate(run.model, run.splits, "val", run.recipe.eval_batch_size)
        run.history.append({"epoch": run.epoch, "train_loss": run.loss, "val": val})
        log.info("epoch %d/%d: train loss %.4f, val %.4f", run.epoch, run.recipe.epochs, run.loss, val)
        sign = 1.0 if run.task.higher_is_better else -1.0
        if sign * val > sign * run.best["val"]:
            run.best = {"epoch": run.epoch, "val": val, "state": copy.deepcopy(run.model.state_dict())}

    def on_fit_end(self, run: Run) -> None:
        run.model.load_state_dict(run.best["state"])


class OnStep(Callback):
    """``hook(step, model)`` after every optimiser step (IMP takes its rewind point there)."""

    def __init__(self, hook: Callable[[int, nn.Module], None]) -> None:
        self.hook = hook

    def on_step_end(self, run: Run) -> None:
        self.hook(run.step, run.model)


class StopOnSignal(Callback):
    """A stop signal (suite.system.stopping) is looked at after each step and each epoch's
    end: it is read once there into ``run.stop`` (the callbacks after this one write the
    checkpoint for it) and the loop raises Stopped after them."""

    def on_step_end(self, run: Run) -> None:
        run.stop = stopping.requested()

    def on_epoch_end(self, run: Run) -> None:
        run.stop = stopping.requested()
