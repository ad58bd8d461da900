"""The parametrization that makes a layer's weight a ring's output."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rpg.ring import Ring


class Generated(nn.Module):
    """A parametrization: the layer's weight is ``scale * sign * W[idx]`` from a ring.

    ``scale`` is the ring's scale for this slot: in ``rpg.convert``, the std the layer's
    weight was initialised at over the ring's initial std (the paper's "adaptive
    scaling"), so every generated kernel starts at the std of the weight it replaces.

    The first layer a ring generates owns it as a submodule, so W appears once in
    ``parameters()`` and in the state dict, and moves with ``.to()``; the other layers hold
    a plain reference. (Registering rings on the model itself would add a child to
    containers such as ``nn.Sequential`` and change what their forward runs.)
    """

    def __init__(self, ring: Ring, slot: int, shape: Sequence[int]) -> None:
        super().__init__()
        if slot == 0:
            self.ring = ring
        else:
            object.__setattr__(self, "ring", ring)
        self.slot = slot
        self.shape = tuple(shape)
        if math.prod(self.shape) != ring.sizes[slot]:
            raise ValueError(f"slot {slot} of ring {ring.name} generates {ring.sizes[slot]} weights, not {self.shape}")

    @property
    def scale(self) -> float:
        # Fixed, not learned: it stays in the forward pass, so it also scales the gradient.
        return self.ring.scales[self.slot]

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return self.ring.layer(self.slot).view(self.shape)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        # The dense weight is replaced by the ring: keep only an empty placeholder.
        return weight.new_empty(0)

    def extra_repr(self) -> str:
        return f"slot={self.slot}, shape={self.shape}, scale={self.scale:.4g}"
