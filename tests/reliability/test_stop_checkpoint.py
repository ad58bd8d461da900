"""A stop signal ends training after the step it arrives in, with the resume checkpoint
written there; the resumed training is bit for bit the uninterrupted one (on the CPU)."""

import signal

import pytest
import torch
from torch import nn

from suite import tasks
from suite.system import stopping
from suite.training.train import fit

RECIPE = tasks.Recipe(epochs=3, batch_size=128, lr=0.1)  # 10 steps an epoch on digits' 1221 images


def _model() -> nn.Module:
    torch.manual_seed(0)
    # Dropout draws from torch's global generator: the checkpoint must carry its state too.
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def digits():
    return tasks.get("digits"), tasks.get("digits").load(None, torch.device("cpu"), "smoke")


@pytest.fixture(autouse=True)
def forget_stops():
    stopping.reset()
    yield
    stopping.reset()


def _train(digits, checkpoint=None, on_step=None):
    task, splits = digits
    model = _model()
    summary = fit(model, task, splits, RECIPE, seed=0, progress=False, checkpoint=checkpoint, on_step=on_step)
    return model.state_dict(), summary


@pytest.mark.parametrize("where", [3, 10, 17, "evaluation"])  # steps: inside epoch 1, its last, inside 2
def test_a_stop_checkpoints_where_it_lands_and_the_resume_is_bit_for_bit(where, digits, tmp_path, monkeypatch):
    clean_state, clean = _train(digits)
    path = tmp_path / "cell.pt"
    steps = []

    def on_step(step, model):
        steps.append(step)
        if step == where:
            stopping.request(signal.SIGTERM)

    task = digits[0]
    if where == "evaluation":  # the signal lands while epoch 1's validation runs
        evaluate = task.evaluate

        def evaluating(*args):
            stopping.request(signal.SIGTERM)
            return evaluate(*args)

        monkeypatch.setattr(task, "evaluate", evaluating)
    with pytest.raises(stopping.Stopped) as stopped:
        _train(digits, path, on_step)
    monkeypatch.undo()
    assert stopped.value.signum == signal.SIGTERM and stopped.value.code == 143
    stop_step = 10 if where == "evaluation" else where
    assert steps[-1] == stop_step, "training stops after the step the signal arrived in"
    kept = torch.load(path, weights_only=True)
    if where == "evaluation":  # at the epoch's end: the checkpoint an epoch's end writes
        assert kept["epoch"] == 1 and "partial" not in kept
    else:  # inside an epoch: the epochs before it, and the batches done of it
        assert (kept["epoch"], kept["partial"]["batches"]) == ((where - 1) // 10, where - 10 * ((where - 1) // 10))

    stopping.reset()
    steps.clear()
    resumed_state, resumed = _train(digits, path, on_step=lambda step, model: steps.append(step))
    assert steps[0] == stop_step + 1, "the resumed training starts at the step after the stop"
    assert resumed == clean
    for name, value in clean_state.items():
        assert torch.equal(resumed_state[name], value), name


def test_outside_a_deferred_block_a_stop_raises_at_once_and_a_second_signal_changes_nothing():
    with pytest.raises(stopping.Stopped):
        stopping.request(signal.SIGINT)
    stopping.request(signal.SIGTERM)  # already stopping: no second exception, the first signal stays
    assert stopping.requested() == signal.SIGINT
    stopping.reset()
    with pytest.raises(stopping.Stopped) as stopped, stopping.deferred():
        stopping.request(signal.SIGTERM)
        reached = True
    assert reached and stopped.value.name == "SIGTERM"
    assert "stopped by SIGTERM" in stopped.value.line()
