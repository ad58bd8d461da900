"""fit's per-epoch hook: networks whose training has phases (baselines.phases.Phased) hear of
every epoch's end, after its steps and before its validation; nothing else is called."""

import pytest
import torch
from torch import nn

from baselines import lego, mdeq
from baselines.phases import Phased
from suite import tasks
from suite.training.train import fit


@pytest.fixture(scope="module")
def digits():
    task = tasks.get("digits")
    return task, task.load(None, torch.device("cpu"), "smoke")


class Listener(nn.Module, Phased):
    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events

    def forward(self, x):
        if self.training:
            self.events.append("step")
        return x

    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        self.events.append(("end", epoch, epochs))


class Bystander(nn.Module):
    """Has a method of the hook's name without being Phased: fit must not call it."""

    def forward(self, x):
        return x

    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        raise AssertionError("fit called a module that is not Phased")


def test_a_phased_module_hears_each_epochs_end_between_its_steps_and_its_validation(digits, monkeypatch):
    task, splits = digits
    events = []
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), Listener(events), Bystander())
    evaluate = task.evaluate

    def evaluating(*args):
        events.append("val")
        return evaluate(*args)

    monkeypatch.setattr(task, "evaluate", evaluating)
    recipe = tasks.Recipe(epochs=2, batch_size=-(-splits.sizes["train"] // 2), lr=0.1)  # two steps an epoch
    fit(model, task, splits, recipe, seed=0, progress=False)
    assert events == ["step", "step", ("end", 1, 2), "val", "step", "step", ("end", 2, 2), "val"]


def test_the_comparators_with_training_phases_are_phased_and_switch_phase_through_fit(digits):
    task, splits = digits
    assert isinstance(mdeq.MDEQ((4, 4), 1, 10), Phased)  # its switch: tests/test_mdeq.py
    torch.manual_seed(0)
    model = lego.convert(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(10)), {"0": 2}, split=1)
    model(splits.head("train", 1)[0])
    (weight,) = model[0].parametrizations.weight
    assert isinstance(weight, Phased) and weight.logits.requires_grad
    recipe = tasks.Recipe(epochs=2, batch_size=splits.sizes["train"], lr=0.01)
    summary = fit(model, task, splits, recipe, seed=0, progress=False)
    assert bool(weight.frozen) and not weight.logits.requires_grad, "the selection froze after the warm-up"
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
