"""Benchmarks (pytest-benchmark) of the ring generator and of a CIFAR ResNet-18 training step.

    python -m pytest benchmarks --benchmark-only

These measure, they assert nothing about speed; the project's default ``pytest`` run
(testpaths = tests) does not collect them. The groups put the rivals side by side:

- generator-forward: the fused generation of all 20 conv kernels from a ring of half the
  conv weights (one autograd node) against the per-layer reference (index_select, sign,
  scale per layer);
- generator-backward: dL/dW from given kernel gradients, by the fused paths (index_add,
  inverse-table gather + sum) and the per-layer reference;
- gather: the 1-D gather of the ring's maps on one thread against two (rpg/gather.py),
  in the seeds' storage order, in first-read order (maps.first_read_order) and in the
  blocked order rings use (maps.blocked_order);
- train-step: one SGD step (forward, cross-entropy, backward, step) at batch 64, RPG
  against the plain network;
- train-step-ratio: the same two steps interleaved, the ratio of medians recorded in the
  benchmark's extra_info (issue #40's target: at most 1.05 on two CPU threads);
  ``rpg-bench speed`` prints the same comparison with its interval;
- deployed: inference of ``rpg.materialize(model)`` against the plain network.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rpg
from baselines.plain import ResNet
from rpg import gather, maps
from suite.measure import speed

pytest.importorskip("pytest_benchmark")

RING = speed.ring_size(speed.DEFAULT_RING, "resnet18-cifar")  # half the conv weights, as rpg-bench speed
BATCH = 64


def resnet18() -> nn.Module:
    return ResNet(18, (64, 128, 256, 512), stem="cifar", num_classes=10)


@pytest.fixture(scope="module")
def ring() -> rpg.Ring:
    torch.manual_seed(0)
    return rpg.rings(rpg.convert(resnet18(), RING))["global"]


def per_layer(ring: rpg.Ring) -> list[torch.Tensor]:
    return [ring.slot(k) * scale for k, scale in enumerate(ring.scales)]


@pytest.mark.benchmark(group="generator-forward")
@pytest.mark.parametrize("path", ["fused", "per-layer"])
def test_generator_forward(benchmark, ring, path):
    generate = ring.generate if path == "fused" else lambda: per_layer(ring)
    weights = benchmark(generate)
    assert len(weights) == len(ring.sizes)


@pytest.mark.benchmark(group="generator-backward")
@pytest.mark.parametrize("path", ["index_add", "inverse", "per-layer"])
def test_generator_backward(benchmark, ring, path):
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(size, generator=gen) for size in ring.sizes]
    if path != "per-layer":
        ring.grad_path = path
        ring.inverse()  # built once, outside the timing

    def setup():
        ring.weight.grad = None
        weights = per_layer(ring) if path == "per-layer" else ring.generate()
        return (weights,), {}

    benchmark.pedantic(lambda weights: torch.autograd.backward(weights, grads), setup=setup, rounds=10, warmup_rounds=1)
    assert ring.weight.grad is not None
    ring.grad_path = "auto"


def train_setup(kind: str):
    torch.manual_seed(0)
    model = resnet18()
    if kind == "rpg":
        rpg.convert(model, RING)
    model.train()
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9, weight_decay=5e-4
    )
    data = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, 32, 32, generator=data)
    y = torch.randint(10, (BATCH,), generator=data)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return model, step


@pytest.mark.benchmark(group="train-step")
@pytest.mark.parametrize("kind", ["plain", "rpg"])
def test_train_step(benchmark, kind):
    _, step = train_setup(kind)
    benchmark.pedantic(step, rounds=10, warmup_rounds=2)


@pytest.mark.benchmark(group="train-step-ratio")
def test_train_step_ratio_interleaved(benchmark):
    # Untimed runs (the default --benchmark-disable) take two small pairs: enough to prove it runs.
    batch, steps, warmup = (8, 2, 0) if benchmark.disabled else (BATCH, 30, 3)
    result = benchmark.pedantic(
        lambda: speed.compare("resnet18-cifar", batch, RING, steps, warmup, torch.device("cpu"), deployed=False),
        rounds=1,
    )
    plain, rpg_ = result["train"]
    benchmark.extra_info.update(speed.ratio(rpg_, plain) | {"target": speed.TRAIN_TARGET})
    assert len(plain) == len(rpg_) == steps


@pytest.mark.benchmark(group="gather")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["seed", "first-read", "blocked"])
def test_gather(benchmark, ring, layout, threads):
    idx = ring.idx
    if layout != "blocked":
        idx = maps.INDEX["even"](ring.sizes, ring.size, maps.generator(ring.index_seed))
        idx = (idx if layout == "seed" else maps.first_read_order(idx, ring.size)[0]).to(ring.idx.dtype)
    source, out = ring.weight.detach(), torch.empty(ring.total)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # one torch thread: the plain serial index_select
    try:
        benchmark(gather.gather, source, idx, out)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out, torch.index_select(source, 0, idx))


@pytest.mark.benchmark(group="deployed")
@pytest.mark.parametrize("batch", [1, BATCH])
@pytest.mark.parametrize("kind", ["plain", "rpg-materialized"])
def test_deployed_inference(benchmark, kind, batch):
    torch.manual_seed(0)
    model = resnet18()
    if kind != "plain":
        model = rpg.materialize(rpg.convert(model, RING))
    model.eval()
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        benchmark.pedantic(model, args=(x,), rounds=100 if batch == 1 else 10, warmup_rounds=3)
