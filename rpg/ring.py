"""The ring: one flat trainable vector W that generates the weights of many layers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rpg import maps


class Ring(nn.Module):
    """W with N scalars, and the index/sign maps for the T weights it generates.

    ``sizes`` are the numbers of weights of the generated layers, in layer order; layer k
    reads the slice ``[offset_k, offset_k + sizes[k])`` of the maps. The maps live in
    non-persistent buffers (so they follow ``.to(device)``) and are rebuilt from the seeds,
    which travel in the state dict as extra state.
    """

    def __init__(
        self,
        size: int,
        sizes: Sequence[int],
        *,
        index: str = "even",
        sign: str = "random",
        index_seed: int = 0,
        sign_seed: int = 1,
        std: float = 1.0,
        name: str = "global",
    ) -> None:
        super().__init__()
        self.name = name
        if size < 1:
            raise ValueError(f"a ring needs at least one element, got {size}")
        maps.check_strategy(index, sign)
        # Each layer's fixed scale brings its kernel from this std to its own Kaiming std.
        self.std = float(std)
        self.weight = nn.Parameter(torch.randn(int(size)) * self.std)
        self.sizes = [int(s) for s in sizes]
        self.offsets = [0]
        for s in self.sizes:
            self.offsets.append(self.offsets[-1] + s)
        self.index = index
        self.sign = sign
        self.index_seed = int(index_seed)
        self.sign_seed = int(sign_seed)
        self.register_buffer("idx", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("signs", torch.empty(0, dtype=torch.int8), persistent=False)
        self._build()

    @property
    def size(self) -> int:
        return self.weight.numel()

    @property
    def total(self) -> int:
        """T: how many weights this ring generates."""
        return self.offsets[-1]

    def _build(self) -> None:
        idx = maps.INDEX[self.index](self.sizes, self.size, maps.generator(self.index_seed))
        sign = maps.SIGN[self.sign](self.sizes, maps.generator(self.sign_seed))
        # int32 halves the map's memory; it is enough for any ring below 2**31 elements.
        dtype = torch.int32 if self.size < 2**31 else torch.long
        device = self.weight.device
        self.idx = idx.to(device=device, dtype=dtype)
        self.signs = sign.to(device=device, dtype=torch.int8)

    def slot(self, k: int) -> torch.Tensor:
        """The flat generated weights of layer k, before its scale."""
        lo, hi = self.offsets[k], self.offsets[k + 1]
        # index_select, not W[idx]: its backward (index_add) is deterministic on CPU,
        # the advanced-indexing backward is not.
        return torch.index_select(self.weight, 0, self.idx[lo:hi]) * self.signs[lo:hi]

    def usage(self) -> torch.Tensor:
        """How many generated weights read each element of W."""
        return torch.bincount(self.idx.long(), minlength=self.size)

    def get_extra_state(self) -> dict:
        return {
            "index": self.index,
            "sign": self.sign,
            "index_seed": self.index_seed,
            "sign_seed": self.sign_seed,
            "sizes": list(self.sizes),
        }

    def set_extra_state(self, state: dict) -> None:
        if list(state["sizes"]) != self.sizes:
            raise RuntimeError(
                "ring layout mismatch: the checkpoint's ring generates layers of sizes "
                f"{state['sizes'][:4]}... but this model's ring generates {self.sizes[:4]}...; "
                "convert the same architecture with the same scope before loading"
            )
        maps.check_strategy(state["index"], state["sign"])
        self.index, self.sign = state["index"], state["sign"]
        self.index_seed, self.sign_seed = int(state["index_seed"]), int(state["sign_seed"])
        self._build()

    def extra_repr(self) -> str:
        return (
            f"{self.name}: size={self.size}, generates={self.total}, layers={len(self.sizes)}, "
            f"index={self.index}, sign={self.sign}"
        )


def kaiming_fan_out_std(shape: Sequence[int]) -> float:
    """He et al.'s std for a ReLU network, fan-out mode (what torchvision's ResNets use)."""
    fan_out = shape[0] * math.prod(shape[2:])
    return math.sqrt(2.0 / fan_out)


class Generated(nn.Module):
    """A parametrization: the layer's weight is ``scale * sign * W[idx]`` from a ring.

    ``scale`` is the layer's Kaiming fan-out std over the ring's initial std (the paper's
    "adaptive scaling"): every generated kernel starts at its own layer's Kaiming std.

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
        # Fixed, not learned: it stays in the forward pass, so it also scales the gradient.
        self.scale = kaiming_fan_out_std(self.shape) / ring.std

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return (self.ring.slot(self.slot) * self.scale).view(self.shape)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        # The dense weight is replaced by the ring: keep only an empty placeholder.
        return weight.new_empty(0)

    def extra_repr(self) -> str:
        return f"slot={self.slot}, shape={self.shape}, scale={self.scale:.4g}"
