"""Training with model selection on validation: the test split is never read here."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from suite.errors import Diverged, naming
from suite.system import distributed, quiet, stopping
from suite.system import progress as bars
from suite.tasks import Recipe, Splits, Task

log = logging.getLogger("rpg_bench.cell")  # the cell's log file (suite.run.pipeline)

# A resume checkpoint is written after the first epoch, after the last, and after any epoch
# ending at least this many seconds after the previous write: a kill loses at most about
# this much training. Every epoch would cost the embedded default's short cells about a
# tenth of their time (a save is ~30 ms; a digits epoch 0.2 s).
CHECKPOINT_SECONDS = 10.0

# --compile: the training step through torch.compile (its forward and, by AOTAutograd, its
# backward). Set per cell by suite.run.pipeline (``compiling``), read by every fit of the cell
# (IMP's rounds, a pruned network's fine-tuning): an execution choice like the device, so
# it is recorded with the cell but is not part of its key.
_compile: contextvars.ContextVar[bool] = contextvars.ContextVar("compile", default=False)


def compile_options(device: torch.device) -> dict | None:
    """Inductor's options for a training step on ``device``: on a CPU, no layout optimisation
    (fit says why)."""
    return {"layout_optimization": False} if device.type == "cpu" else None


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


def save(path: Path, state: dict) -> None:
    """torch.save, atomically: a kill leaves the previous checkpoint or the new one. Written
    through a Python file, so a full disk is an OSError (ENOSPC) naming the file, not
    torch's opaque writer error; a failed write leaves no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise naming(e, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _before_first_read_layout(model_state: dict) -> bool:
    """Whether a resume checkpoint holds a ring saved before rings stored W in first-read
    order: the ring itself would load it (permuting W), but the optimizer's momentum beside
    it is in the old order, so resuming would pair each element with another's momentum."""
    return any(
        key.endswith("_extra_state") and isinstance(value, dict) and "index_seed" in value and "layout" not in value
        for key, value in model_state.items()
    )


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
    objective: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict:
    """Train for recipe.epochs; keep the weights of the epoch with the best validation metric.

    Returns the training history and the selected epoch. Raises Diverged on a NaN or
    infinite loss (found at the end of its epoch: the loss is read once per epoch). With
    ``checkpoint``, the full training state (model, optimiser, scheduler, RNG states, best
    weights, history) is saved there atomically after the first and the last epoch and
    every ``CHECKPOINT_SECONDS`` in between (at an epoch's end), and a run that finds
    one resumes from it: on CPU the result is bit-for-bit that of an uninterrupted run.
    A stop signal (suite.system.stopping) ends training after the step it arrives in: the
    checkpoint is written there (with the batches done of the epoch under way, which the
    resumed run draws again and skips) and Stopped is raised.
    ``on_step(step, model)`` is called after every optimiser step (step counts from 1
    across epochs; IMP takes its rewind point there). Under torchrun the ranks train one
    global batch together (suite.system.distributed); rank 0 writes the checkpoint, every rank
    resumes from it. ``objective(model, x, y)`` replaces the task's loss of ``model(x)``
    (Knapsack's fine-tuning distils from a teacher there).
    """
    if objective is None:

        def objective(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return task.loss(net(x), y)

    optimizer = _optimizer(model, recipe)
    steps = steps_per_epoch(splits.sizes["train"], recipe.batch_size)
    scheduler = _scheduler(optimizer, recipe, steps)
    shuffle = torch.Generator().manual_seed(seed)
    sign = 1.0 if task.higher_is_better else -1.0
    best = {"epoch": -1, "val": -math.inf * sign, "state": None}
    history = []
    start, partial = 0, None
    state = torch.load(checkpoint, weights_only=True) if checkpoint is not None and checkpoint.exists() else None
    if state is not None and _before_first_read_layout(state["model"]):
        log.warning("%s was written before rings stored W in first-read order: the cell starts afresh", checkpoint)
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        shuffle.set_state(state["shuffle"])
        torch.set_rng_state(state["torch_rng"])
        best, history, start = state["best"], state["history"], state["epoch"]
        partial = state.get("partial")  # a stop's checkpoint, inside epoch start + 1
        within = f" and {partial['batches']} batches" if partial else ""
        log.info("resumed from %s after epoch %d%s", checkpoint, start, within)
    bar = bars.bar(
        range(start, recipe.epochs),
        desc=desc or "epochs",
        leave=False,
        disable=not progress,
        unit="ep",
        initial=start,
        total=recipe.epochs,
    )
    device = next(model.parameters()).device
    bf16 = recipe.precision == "bf16"
    # channels-last feeds the tensor cores' convolutions; on a CPU it would only cost copies.
    channels_last = bf16 and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    trained = distributed.wrap(model)
    if _compile.get():
        # Not fullgraph: some comparators' forwards (MDEQ's solver loop, LegoNet's phases)
        # break the graph, and compile runs them eagerly there; RPG's rings compile whole.
        # On a CPU without inductor's layout optimisation: it makes convolutions channels-last,
        # and oneDNN's channels-last weight gradient with an odd channel count (digits' one
        # input channel) corrupts the heap in torch 2.14.1 (crop_flip's note): compiled
        # digits training aborted with "double free", or trained on silently altered numbers.
        trained = torch.compile(trained, options=compile_options(device))
    step = start * steps
    saved = None  # when this process last wrote the checkpoint

    def write(epochs: int, shuffled: dict, within: dict | None = None) -> None:
        """The resume checkpoint after ``epochs`` epochs (and ``within``'s batches of the
        next); ``shuffled``: the shuffle's state at the start of the epoch after those."""
        if checkpoint is None or not distributed.is_main():
            return
        kept = {
            "epoch": epochs,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "shuffle": shuffled,
            "torch_rng": torch.get_rng_state(),
            "best": best,
            "history": history,
        }
        save(checkpoint, kept | ({"partial": within} if within else {}))

    # A stop signal (suite.system.stopping) is looked at after each step and each epoch: the cell
    # stops there, with its checkpoint written, so the rerun continues from that very step.
    with stopping.deferred():
        for epoch in bar:
            trained.train()
            shuffled = shuffle.get_state()  # the epoch's draws start here (a stop's checkpoint keeps it)
            batches = task.train_batches(splits, recipe.batch_size, shuffle)
            total, count, done = 0.0, 0, 0
            if partial is not None:
                # Resuming from a stop inside this epoch: its first batches again, untrained, so
                # that the shuffle (and any augmentation) draws what it drew; then the state at the stop.
                for _ in itertools.islice(batches, partial["batches"]):
                    pass
                total, count, done = partial["total"], partial["count"], partial["batches"]
                torch.set_rng_state(state["torch_rng"])
                step += done
                partial = None
            for xr, yr, share, size in batches:
                quiet.pause()  # under --jobs, while another worker measures
                if channels_last and xr.dim() == 4:
                    xr = xr.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = objective(trained, xr, yr).float() * share
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                if on_step is not None:
                    on_step(step, model)
                # Summed on the device and read once per epoch: no host sync per step (a GPU
                # keeps its queue full). A NaN or inf anywhere in the epoch stays in the sum.
                total = total + loss.detach().double() * size
                count += size
                done += 1
                if stopping.requested() is not None:
                    write(epoch, shuffled, {"batches": done, "total": total, "count": count})
                    raise stopping.Stopped(stopping.requested())
            # Every rank sees the same sum, so all stop together on a diverged loss.
            total = float(distributed.mean(torch.as_tensor(total)))
            if not math.isfinite(total):
                raise Diverged(f"loss became {total} at epoch {epoch + 1}")
            for module in model.modules():
                # Methods whose training has phases (LegoNet freezes its selection) hear of each epoch.
                if hasattr(module, "on_epoch_end"):
                    module.on_epoch_end(epoch + 1, recipe.epochs)
            val = task.evaluate(model, splits, "val", recipe.eval_batch_size)
            history.append({"epoch": epoch + 1, "train_loss": total / count, "val": val})
            log.info("epoch %d/%d: train loss %.4f, val %.4f", epoch + 1, recipe.epochs, total / count, val)
            bar.set_postfix(loss=f"{total / count:.3f}", val=f"{val:.2f}")
            if sign * val > sign * best["val"]:
                best = {"epoch": epoch + 1, "val": val, "state": copy.deepcopy(model.state_dict())}
            stop = stopping.requested()
            due = saved is None or epoch + 1 == recipe.epochs or time.monotonic() - saved >= CHECKPOINT_SECONDS
            if due or stop is not None:
                saved = time.monotonic()
                write(epoch + 1, shuffle.get_state())
            if stop is not None:
                raise stopping.Stopped(stop)
    distributed.unwrap(model)
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    model.load_state_dict(best["state"])
    return {"best_epoch": best["epoch"], "val": best["val"], "history": history}
