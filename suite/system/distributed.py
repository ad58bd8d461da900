"""Data-parallel training under torchrun: one process per GPU, one global batch.

``torchrun --nproc_per_node G -m suite --suite S`` starts G copies of rpg-bench. Every
process walks the same cells in the same order and trains each one together through
DistributedDataParallel; rank 0 alone measures the trained model and writes records.

The recipe's batch size stays the global batch: every rank draws the same shuffled,
augmented batch from the shared seed and trains on its slice, each slice's loss weighted
by its share, so the averaged gradient is the global batch's gradient. On CUDA the
BatchNorm layers are synchronised (SyncBatchNorm) while training, so a G-GPU run trains
the network a one-GPU run trains, up to floating-point order. SyncBatchNorm needs CUDA: on
the CPU (gloo; how the tests run it) each rank normalises its own slice.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn

# Rank 0 measures each trained model (ONNX export, memory probes) while the others wait
# for the next cell; that can take long on large networks.
TIMEOUT = datetime.timedelta(hours=2)


def launched() -> bool:
    """Whether torchrun started this process (one process too: it still trains through DDP,
    with SyncBatchNorm on CUDA, which is how ``rpg-bench doctor`` checks that path on one GPU)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def joined() -> bool:
    return dist.is_available() and dist.is_initialized()


def sync_batchnorm(device: torch.device) -> bool:
    """Whether training on ``device`` synchronises BatchNorm across the ranks."""
    return joined() and device.type == "cuda"


def world() -> int:
    return dist.get_world_size() if joined() else 1


def rank() -> int:
    return dist.get_rank() if world() > 1 else 0


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group; return this rank's device (its own GPU on CUDA)."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world() > 1:
        dist.barrier()


def broadcast(obj):
    """Rank 0's ``obj`` on every rank."""
    if world() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
    """The module to train: ``model`` itself outside torchrun, else a DDP wrapper around it
    (``find_unused_parameters``: some parameters may go without gradients in a step)."""
    if not joined():
        return model
    device = next(model.parameters()).device
    if sync_batchnorm(device):
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None, find_unused_parameters=find_unused_parameters
    )


def unwrap(model: nn.Module) -> None:
    """Undo ``wrap``'s SyncBatchNorm conversion in place: the measured model is the plain one."""
    for name, child in model.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            bn = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            bn.load_state_dict(child.state_dict())
            bn.train(child.training)
            setattr(model, name, bn.to(child.weight.device if child.affine else child.running_mean.device))
        else:
            unwrap(child)


def local_slice(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """This rank's slice of a global batch, and the weight that makes the mean of the ranks'
    weighted slice losses the global batch's mean loss."""
    n = world()
    if n == 1:
        return x, y, 1.0
    xs, ys = x.tensor_split(n), y.tensor_split(n)
    r = rank()
    return xs[r], ys[r], len(ys[r]) * n / len(y)


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over the ranks (a copy; every rank gets it)."""
    if world() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world()
