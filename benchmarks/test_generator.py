"""Benchmarks (pytest-benchmark) of the ring generator and of a CIFAR ResNet-18 training step.

    python -m pytest benchmarks --benchmark-only

These measure, they assert nothing about speed; the project's default ``pytest`` run
(testpaths = tests) does not collect them. The groups put the rivals side by side:

- generator-forward: the fused generation of all 20 conv kernels from a 2M ring (one
  autograd node) against the per-layer reference (index_select, sign, scale per layer);
- generator-backward: dL/dW from given kernel gradients, by the fused paths (index_add,
  inverse-table gather + sum) and the per-layer reference;
- train-step: one SGD step (forward, cross-entropy, backward, step) at batch 64, RPG
  against the plain network; ``rpg-bench speed`` reports the same ratio with interleaving;
- deployed: inference of ``rpg.materialize(model)`` against the plain network.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rpg
from baselines.plain import ResNet

pytest.importorskip("pytest_benchmark")

RING = 2_000_000
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
