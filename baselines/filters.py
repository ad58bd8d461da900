"""ℓ1-norm filter pruning (Li et al. 2017) of a ResNet's residual blocks, generated or not.

Li et al. prune the first conv of every residual block, whose output channels nothing
outside the block reads: the filters with the smallest ℓ1 norm go, with their BatchNorm
channels and the second conv's matching input channels. Every block keeps the same
fraction of its filters; that fraction is bisected until the network's FLOPs, counted by
torch's flop counter on the pruned network, fit the budget (Table 7 prunes ResNet-18-RPG
to Knapsack's FLOPs).

On an RPG network the pruned convs stay generated: each keeps a ``Keep``
parametrization after its ring's, which selects the surviving channels of the generated
kernel, so the ring (the parameters) is unchanged and fine-tuning trains it. A conv that
no ring generates is sliced in place.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

import rpg
from baselines.knapsack import forward_flops
from baselines.plain import BasicBlock

SEARCH_STEPS = 20  # bisection steps on the fraction of filters kept


class Keep(nn.Module):
    """A parametrization: the channels ``index`` of the weight along ``dim``."""

    def __init__(self, dim: int, index: torch.Tensor) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("index", index.clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.index_select(self.dim, self.index)


def blocks(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, BasicBlock)]


def order(model: nn.Module) -> dict[str, list[int]]:
    """Every block's first-conv filters, largest ℓ1 norm first (as the network computes them)."""
    with torch.no_grad():
        return {
            n: model.get_submodule(f"{n}.conv1").weight.abs().sum(dim=(1, 2, 3)).argsort(descending=True).tolist()
            for n in blocks(model)
        }


def keep_at(ranked: dict[str, list[int]], fraction: float) -> dict[str, list[int]]:
    """The filters each block keeps at ``fraction`` (at least one)."""
    return {n: sorted(r[: max(1, round(fraction * len(r)))]) for n, r in ranked.items()}


def _select(module: nn.Module, name: str, dim: int, index: torch.Tensor) -> None:
    if parametrize.is_parametrized(module, name):
        # After the ring's generation: the selection has another shape, hence unsafe.
        parametrize.register_parametrization(module, name, Keep(dim, index), unsafe=True)
    else:
        with torch.no_grad():
            setattr(module, name, nn.Parameter(getattr(module, name).index_select(dim, index).clone()))


def apply(model: nn.Module, keep: dict[str, list[int]]) -> None:
    """Keep, in place, only the listed first-conv filters of each block."""
    for n, channels in keep.items():
        block = model.get_submodule(n)
        index = torch.tensor(channels, device=block.bn1.weight.device)
        _select(block.conv1, "weight", 0, index)
        _select(block.conv2, "weight", 1, index)
        block.conv1.out_channels = block.conv2.in_channels = len(channels)
        bn = block.bn1
        with torch.no_grad():
            for name in ("weight", "bias"):
                setattr(bn, name, nn.Parameter(getattr(bn, name)[index].clone()))
            for name in ("running_mean", "running_var"):
                setattr(bn, name, getattr(bn, name)[index].clone())
        bn.num_features = len(channels)


def restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Prune a freshly built network as the state dict of a pruned one says (its ``Keep``
    indices), so that the state loads into it."""
    suffix = ".conv1.parametrizations.weight.1.index"
    keep = {k.removesuffix(suffix): state[k].tolist() for k in state if k.endswith(suffix)}
    apply(model, keep)


def prune_to_flops(model: nn.Module, example: torch.Tensor, target: int) -> dict:
    """Prune ``model`` in place to the largest common fraction of filters whose measured
    FLOPs fit ``target``."""
    ranked = order(model)
    dense = rpg.materialize(model)  # trials on a plain copy: the same convs, no generation
    lo, hi, best = 0.0, 1.0, None
    for _ in range(SEARCH_STEPS):
        fraction = (lo + hi) / 2
        trial = copy.deepcopy(dense)
        apply(trial, keep_at(ranked, fraction))
        flops = forward_flops(trial, example)
        if flops <= target:
            best, lo = (fraction, flops), fraction
        else:
            hi = fraction
    if best is None:
        raise ValueError(f"no fraction of filters reaches {target:,} FLOPs")
    fraction, flops = best
    keep = keep_at(ranked, fraction)
    apply(model, keep)
    return {"fraction": fraction, "flops": flops, "blocks": {n: [len(k), len(ranked[n])] for n, k in keep.items()}}
