"""Benchmark (pytest-benchmark) of what DistributedDataParallel broadcasts per training step
for a converted CIFAR ResNet-18 (2M ring), before and after issue #23.

    python -m pytest benchmarks/test_ddp.py --benchmark-only      (or --benchmark-disable: one run each)

DDP with ``broadcast_buffers=True`` (its default) sends every buffer of the model from rank 0
before each forward. Before #23 a ring's maps were (non-persistent) buffers, so they went
too: ``idx`` (int32) and ``signs`` (int8), 5 bytes per generated weight, plus the inverse
table, 4 more, once the first backward has built it. Now they are plain tensors every rank
regenerates from the seeds, and only the BN statistics travel. "maps-as-buffers" puts the
maps back in the rings' buffers to measure the old state with today's code. The timing is
one training step on a one-process gloo group (its broadcast is a no-op copy, so the time
barely differs here); the bytes are the point: ``extra_info["broadcast_bytes"]``, printed too.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch import nn

import rpg
from baselines.plain import ResNet

pytest.importorskip("pytest_benchmark")

RING = 2_000_000
BATCH = 8


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def maps_as_buffers(model: nn.Module) -> None:
    """The rings as before #23: their maps registered as non-persistent buffers."""
    for ring in rpg.rings(model).values():
        for name in ("idx", "signs", "inv"):
            tensor = ring.__dict__.pop(name)
            ring.register_buffer(name, tensor, persistent=False)


@pytest.mark.slow
@pytest.mark.benchmark(group="ddp-step-broadcast")
@pytest.mark.parametrize("maps", ["maps-as-buffers", "maps-as-attributes"])
def test_ddp_step_broadcast(benchmark, process_group, maps):
    torch.manual_seed(0)
    model = rpg.convert(ResNet(18, (64, 128, 256, 512), stem="cifar", num_classes=10), RING)
    if maps == "maps-as-buffers":
        maps_as_buffers(model)
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = torch.Generator().manual_seed(0)
    x, y = torch.randn(BATCH, 3, 32, 32, generator=data), torch.randint(10, (BATCH,), generator=data)

    sent: list[int] = []
    broadcast = ddp._distributed_broadcast_coalesced

    def counted(tensors, buffer_size, authoritative_rank=0):
        sent.append(sum(t.numel() * t.element_size() for t in tensors))
        broadcast(tensors, buffer_size, authoritative_rank)

    ddp._distributed_broadcast_coalesced = counted

    def step():
        loss = nn.functional.cross_entropy(ddp(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # the first step builds the inverse table: the steady state starts after it
    sent.clear()
    benchmark.pedantic(step, rounds=3, warmup_rounds=0)
    per_step = sent[-1]
    bn = sum(
        b.numel() * b.element_size() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for b in m.buffers()
    )
    benchmark.extra_info["broadcast_bytes"] = per_step
    print(f"\n{maps}: {per_step:,} bytes broadcast per step ({per_step / 2**20:.1f} MiB; BN statistics {bn:,})")
    assert len(set(sent)) == 1  # the same every step
    if maps == "maps-as-attributes":
        assert per_step == bn
    else:
        (ring,) = rpg.rings(model).values()
        assert per_step == bn + sum(t.numel() * t.element_size() for t in (ring.idx, ring.signs, ring.inv))
