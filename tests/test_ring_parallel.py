"""A converted model under DistributedDataParallel and nn.DataParallel: the maps never travel,
and replicas that would read the wrong ring refuse to run."""

import importlib

import pytest
import torch
import torch.distributed as dist
from torch import nn

import rpg
from baselines.plain import ResNet


def small_resnet() -> ResNet:
    return ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10)


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group on the CPU, as torchrun would start with one process."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def broadcast_per_step(ddp: nn.parallel.DistributedDataParallel, step) -> list[torch.Tensor]:
    """The tensors DDP broadcasts during ``step`` (its buffer sync before each forward)."""
    sent: list[torch.Tensor] = []
    original = ddp._distributed_broadcast_coalesced

    def record(tensors, buffer_size, authoritative_rank=0):
        sent.extend(tensors)
        original(tensors, buffer_size, authoritative_rank)

    ddp._distributed_broadcast_coalesced = record
    step()
    del ddp._distributed_broadcast_coalesced
    return sent


@pytest.mark.parametrize("wrap", ["model", "container"])
def test_ddp_broadcasts_the_bn_statistics_but_never_the_maps(process_group, wrap):
    torch.manual_seed(0)
    model = rpg.convert(small_resnet(), 3000, scope="block")
    # A root rpg.convert never saw (the model inside a container) changes nothing: the maps are no buffers.
    root = model if wrap == "model" else nn.Sequential(model)
    ddp = nn.parallel.DistributedDataParallel(root)  # broadcast_buffers=True, the default
    x, y = torch.randn(4, 3, 16, 16), torch.randint(10, (4,))

    def step():
        nn.functional.cross_entropy(ddp(x), y).backward()

    step()  # the first recorded generation builds the inverse tables
    rings = rpg.rings(model).values()
    assert all(ring.inv.numel() > 0 for ring in rings)
    sent = broadcast_per_step(ddp, step)
    maps = {id(t) for ring in rings for t in (ring.idx, ring.signs, ring.inv)}
    assert sent and not any(id(t) in maps for t in sent)
    assert [id(t) for t in sent] == [id(b) for b in root.buffers()]  # the BN statistics, all of them
    assert any(t is model.bn1.running_mean for t in sent)
    assert not any(name.endswith(("idx", "signs", "inv")) for name in ddp.named_module_buffers)
    assert all(ring.weight.grad.abs().sum() > 0 for ring in rings)


def test_data_parallel_without_gpus_runs_the_model_itself():
    model = rpg.convert(small_resnet(), 3000).eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(nn.DataParallel(model)(x), model(x))


def test_data_parallel_replicas_refuse_to_run_and_point_to_ddp(monkeypatch):
    """nn.DataParallel on several GPUs runs replicas made by torch.nn.parallel.replicate; on
    the CPU the same replicate runs once its GPU broadcast is replaced by copies."""
    replicate = importlib.import_module("torch.nn.parallel.replicate")

    def broadcast_on_cpu(tensors, devices, detach=False):
        return [[t.detach().clone() if detach else t.view_as(t) for t in tensors] for _ in devices] if tensors else []

    monkeypatch.setattr(replicate, "_broadcast_coalesced_reshape", broadcast_on_cpu)
    model = rpg.convert(small_resnet(), 3000).eval()
    replicas = replicate.replicate(model, [0, 1])
    assert len(replicas) == 2
    for replica in replicas:
        with pytest.raises(RuntimeError, match="nn.DataParallel cannot run a converted model.*DistributedDataParallel"):
            replica(torch.randn(2, 3, 16, 16))
    model(torch.randn(2, 3, 16, 16))  # the original still runs
