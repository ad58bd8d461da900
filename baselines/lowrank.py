"""Low-rank convolutions: every conv of a network replaced by a factorised one, trained from
scratch, through tensorly-torch (``tltorch.FactorizedConv``, BSD-3): no decomposition is
written here.

- CP (Lebedev et al. 2015): the kernel is sum_r w_r a_r (x) b_r (x) h_r (x) v_r, one factor
  per mode (output and input channels, kernel rows and columns); it runs as a 1x1 conv to r
  channels, two 1-D depthwise convs and a 1x1 conv to the outputs. One rank r per conv.
- Tucker-2 (Kim et al. 2016): a core of r_out x r_in x k x k between two channel factors
  (the spatial modes kept whole: their factors are k x k); it runs as a 1x1 conv to r_in
  channels, the core's k x k conv to r_out, and a 1x1 conv to the outputs. Ranks per conv:
  (r_out, r_in).

The factorised conv is what runs, trained and deployed: its factors are the model.
Factors start so that the kernel they make has the std of the Kaiming-initialised conv
it replaces (tltorch's ``normal_``).

Counting rule: every factor (CP's weights vector included), BN and biases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import tltorch
from torch import nn


def targets(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def count(shape: Sequence[int], rank: Sequence[int], factorization: str) -> int:
    """Learned scalars of one factorised conv: CP's rank (r,), Tucker's (r_out, r_in)."""
    out_channels, in_channels, *kernel = shape
    if factorization == "cp":
        (r,) = rank
        return r * (1 + out_channels + in_channels + sum(kernel))
    r_out, r_in = rank
    return r_out * r_in * math.prod(kernel) + out_channels * r_out + in_channels * r_in + sum(k * k for k in kernel)


def caps(shape: Sequence[int], factorization: str) -> tuple[int, ...]:
    """The largest rank of each knob: CP's, where it has the dense conv's size (the rank
    tltorch calls 'same'); Tucker's, the channels themselves."""
    out_channels, in_channels, *kernel = shape
    if factorization == "cp":
        return (max(1, math.prod(shape) // (1 + out_channels + in_channels + sum(kernel))),)
    return out_channels, in_channels


def convert(model: nn.Module, ranks: Mapping[str, Sequence[int]], factorization: str) -> nn.Module:
    """Replace every named conv by its factorised form at its ranks, in place; return the model."""
    for name, rank in ranks.items():
        conv = model.get_submodule(name)
        out_channels, in_channels, *kernel = conv.weight.shape
        full = int(rank[0]) if factorization == "cp" else (int(rank[0]), int(rank[1]), *kernel)
        layer = tltorch.FactorizedConv.from_conv(
            conv, rank=full, factorization=factorization, implementation="factorized", decompose_weights=False
        )
        layer.weight.normal_(0, math.sqrt(2.0 / (out_channels * math.prod(kernel))))  # Kaiming (fan_out)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, layer.to(conv.weight.device))
    return model
