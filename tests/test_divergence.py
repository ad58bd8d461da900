"""A diverged loss is caught though the loss is read only once per epoch (no host sync per
step): one NaN step in the middle of an epoch names that epoch."""

import pytest
import torch
from torch import nn

from suite import tasks
from suite.errors import Diverged
from suite.training.train import fit, steps_per_epoch


def test_one_nan_step_mid_epoch_is_caught_at_the_end_of_its_epoch():
    task = tasks.get("digits")
    splits = task.load(None, torch.device("cpu"), "smoke")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
    model(splits.head("train", 1)[0])
    steps = []

    def objective(net, x, y):
        steps.append(1)
        loss = task.loss(net(x), y)
        return loss * float("nan") if len(steps) == per_epoch + 2 else loss  # epoch 2's second step

    recipe = tasks.Recipe(epochs=3, batch_size=splits.sizes["train"] // 4, lr=0.01)
    per_epoch = steps_per_epoch(splits.sizes["train"], recipe.batch_size)
    with pytest.raises(Diverged, match="loss became nan at epoch 2"):
        fit(model, task, splits, recipe, seed=0, progress=False, objective=objective)
    assert len(steps) == 2 * per_epoch, "the epoch ran to its end, and no further"


def test_a_finite_run_records_the_mean_loss_of_each_epoch():
    task = tasks.get("digits")
    splits = task.load(None, torch.device("cpu"), "smoke")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
    model(splits.head("train", 1)[0])
    seen = []

    def objective(net, x, y):
        loss = task.loss(net(x), y)
        seen.append((float(loss.detach()), len(y)))
        return loss

    recipe = tasks.Recipe(epochs=1, batch_size=splits.sizes["train"] // 4, lr=0.01)
    history = fit(model, task, splits, recipe, seed=0, progress=False, objective=objective)["history"]
    assert history[0]["train_loss"] == pytest.approx(sum(v * n for v, n in seen) / sum(n for _, n in seen))
