"""The resume checkpoint: a fit's full training state, written as it trains and read by the
next fit of the same cell, so that a killed or stopped cell continues where it was. On the
CPU the resumed training is bit for bit the uninterrupted one.

The checkpoint holds the model, optimiser, scheduler, the shuffle's and torch's RNG states,
the selected epoch (with its weights) and the history, after ``epoch`` epochs; a stop's
checkpoint also holds ``partial``: the batches done of the next epoch, with their summed
loss and examples. Under torchrun rank 0 writes it and every rank resumes from it.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from pathlib import Path

import torch

import rpg
from suite.errors import naming
from suite.system import distributed
from suite.training.callbacks import Callback, Run

log = logging.getLogger("rpg_bench.cell")  # the cell's log file (suite.run.pipeline)

# A resume checkpoint is written after the first epoch, after the last, and after any epoch
# ending at least this many seconds after the previous write: a kill loses at most about
# this much training. Every epoch would cost the embedded default's short cells about a
# tenth of their time (a save is ~30 ms; a digits epoch 0.2 s).
CHECKPOINT_SECONDS = 10.0


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


class Resume(Callback):
    """A fit that finds the checkpoint at ``path`` continues from it. From a stop's checkpoint
    the epoch under way draws its first batches again, untrained, so that the shuffle (and
    any augmentation) draws what it drew, and goes on from the state at the stop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial: dict | None = None
        self.torch_rng: torch.Tensor | None = None

    def on_fit_start(self, run: Run) -> None:
        if not self.path.exists():
            return
        state = torch.load(self.path, weights_only=True)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        rpg.reorder_optimizer(run.model, run.optimizer)  # a checkpoint from before W's layout changed
        run.scheduler.load_state_dict(state["scheduler"])
        run.shuffle.set_state(state["shuffle"])
        self.torch_rng = state["torch_rng"]
        torch.set_rng_state(self.torch_rng)
        run.best, run.history, run.epoch = state["best"], state["history"], state["epoch"]
        run.step = run.epoch * run.steps_per_epoch
        self.partial = state.get("partial")
        within = f" and {self.partial['batches']} batches" if self.partial else ""
        log.info("resumed from %s after epoch %d%s", self.path, run.epoch, within)

    def on_epoch_start(self, run: Run) -> None:
        if self.partial is None:
            return
        for _ in itertools.islice(run.batches, self.partial["batches"]):
            pass
        run.total, run.count, run.done = self.partial["total"], self.partial["count"], self.partial["batches"]
        torch.set_rng_state(self.torch_rng)
        run.step += run.done
        self.partial = None


class Checkpoint(Callback):
    """Writes the checkpoint at ``path`` after the first and the last epoch, every
    CHECKPOINT_SECONDS in between (at an epoch's end), and where a stop signal is seen
    (``run.stop``, after a step or at an epoch's end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: float | None = None  # when this process last wrote it

    def on_step_end(self, run: Run) -> None:
        if run.stop is not None:
            self.write(run, run.shuffled, {"batches": run.done, "total": run.total, "count": run.count})

    def on_epoch_end(self, run: Run) -> None:
        last = run.epoch == run.recipe.epochs
        due = self.saved is None or last or time.monotonic() - self.saved >= CHECKPOINT_SECONDS
        if due or run.stop is not None:
            self.saved = time.monotonic()
            self.write(run, run.shuffle.get_state())

    def write(self, run: Run, shuffled: torch.Tensor, within: dict | None = None) -> None:
        """The state after ``run.epoch`` epochs (and ``within``'s batches of the next);
        ``shuffled``: the shuffle's state at the start of the epoch after those."""
        if not distributed.is_main():
            return
        kept = {
            "epoch": run.epoch,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "shuffle": shuffled,
            "torch_rng": torch.get_rng_state(),
            "best": run.best,
            "history": run.history,
        }
        save(self.path, kept | ({"partial": within} if within else {}))
