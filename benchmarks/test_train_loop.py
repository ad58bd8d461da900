"""Benchmarks of suite.training.train's loss bookkeeping: read once per epoch against once per step.

    python -m pytest benchmarks/test_train_loop.py --benchmark-enable

suite.training.train sums each step's loss on the device and reads it once per epoch (no host sync
per step, which keeps a GPU's queue full; #28). On a CPU there is no queue to keep: this
shows what the change costs the CPU path, an epoch of the embedded default's RPG cell
(digits, 10 steps) with the loss read once per epoch against read every step (as before),
interleaved, the ratio of medians in the benchmark's extra_info. It measures, it asserts
nothing about speed.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from suite import archs, methods
from suite.archs import Net
from suite.data import digits

pytest.importorskip("pytest_benchmark")


def _epoch(read_every_step: bool):
    torch.manual_seed(0)
    model = methods.build(methods.get("rpg"), Net(archs.get("resnet18-cifar"), 0.25, 1, 10), 20_000, 0).model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = digits.load()["train"]

    def epoch() -> float:
        total = 0.0
        for i in range(0, len(y), 128):
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 128]), y[i : i + 128])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if read_every_step:  # the old loop: a host read (and isfinite check) per step
                total += float(loss) * len(y[i : i + 128])
            else:  # suite.training.train's: summed on the device, read once
                total = total + loss.detach().double() * len(y[i : i + 128])
        return float(total)

    return epoch


@pytest.mark.benchmark(group="loss-read")
def test_loss_read_per_epoch_against_per_step(benchmark):
    rounds = 2 if benchmark.disabled else 12
    per_epoch, per_step = _epoch(False), _epoch(True)
    times: dict[str, list[float]] = {"per-epoch": [], "per-step": []}

    def interleaved() -> None:
        for _ in range(rounds):
            for name, epoch in (("per-epoch", per_epoch), ("per-step", per_step)):
                start = time.perf_counter()
                epoch()
                times[name].append(time.perf_counter() - start)

    benchmark.pedantic(interleaved, rounds=1)
    medians = {name: statistics.median(t) for name, t in times.items()}
    benchmark.extra_info.update(
        {f"{name}_ms": 1000 * m for name, m in medians.items()} | {"ratio": medians["per-epoch"] / medians["per-step"]}
    )
    assert all(len(t) == rounds for t in times.values())
