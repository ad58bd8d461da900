"""--compile: the training step through torch.compile trains as the eager step does."""

import pytest
import torch
from torch import nn

import rpg
from suite import tasks
from suite.tasks import recipes
from suite.training import train


def _model() -> nn.Module:
    torch.manual_seed(0)
    # One input channel, as digits has: on a CPU, inductor's channels-last convolutions with
    # an odd channel count reach oneDNN's heap-corrupting weight gradient (suite/training/train.py).
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )  # fmt: skip
    return rpg.convert(net, 300, seed=0)


@pytest.mark.slow
def test_a_compiled_training_step_trains_as_the_eager_one():
    task = tasks.get("digits")
    splits = task.load(None, torch.device("cpu"), "full")
    recipe = recipes.with_changes(task.profiles["smoke"], {"epochs": 2})
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = train.fit(_model(), task, splits, recipe, seed=0, progress=False)
    assert not torch._dynamo.utils.counters["stats"]["unique_graphs"]
    with train.compiling(True):
        compiled = train.fit(_model(), task, splits, recipe, seed=0, progress=False)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile
    losses = [[h["train_loss"] for h in run["history"]] for run in (eager, compiled)]
    # The same function: only the rounding of fused kernels (and the order of the ring's
    # gradient sums) differs.
    assert torch.allclose(torch.tensor(losses[0]), torch.tensor(losses[1]), rtol=2e-3), losses
    assert losses[1][-1] < losses[1][0]
