"""HyperNetworks for ResNets (Ha, Dai & Le 2016, Section 3.1), written from the paper.

One generator, shared by every generated conv, maps a layer embedding z (size N_z) to a
kernel tile of N_out x N_in x f x f weights in two linear layers: first N_in vectors
a_i = W_i z + B_i of size d, then each a_i to its input channel's slice of the tile,
K_i = W_out a_i + B_out. A conv larger than a tile is assembled from a grid of tiles, each
with its own embedding: a conv of C_out x C_in channels takes ceil(C_out / N_out) x
ceil(C_in / N_in) embeddings (the paper's channel counts are multiples of the tile; a
narrower network's are not, and the grid is cropped to the conv). The paper's tile is
16 x 16 x 3 x 3 with N_z = d = 64; the budget here sets N_z and d.

Generated: every 3x3 conv but the first (it reads the image's channels: the paper's
ResNets keep it ordinary). The 1x1 shortcuts stay ordinary too. BN follows every conv, so
one generator's output scale serves layers of any width.

Counting rule: the generator (W_i, B_i, W_out, B_out), every embedding, the convs it does
not generate, BN and biases.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

TILE = 16  # N_in = N_out: the paper's tile for ResNets
KERNEL = 3


def targets(model: nn.Module) -> list[str]:
    """The convs the generator makes: every 3x3 conv but the first."""
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (KERNEL, KERNEL)]
    return convs[1:]


def tiles(shape: tuple[int, ...]) -> tuple[int, int]:
    """The grid of tiles (rows of output channels, columns of input channels) a conv takes."""
    return math.ceil(shape[0] / TILE), math.ceil(shape[1] / TILE)


def generator_count(embedding: int, hidden: int) -> int:
    return TILE * (embedding * hidden + hidden) + (hidden + 1) * TILE * KERNEL * KERNEL


def count(shapes: list[tuple[int, ...]], embedding: int, hidden: int) -> int:
    """Learned scalars of the generator and the embeddings of the convs of ``shapes``."""
    return generator_count(embedding, hidden) + embedding * sum(math.prod(tiles(s)) for s in shapes)


class Generator(nn.Module):
    """z (..., N_z) -> tiles (..., N_out, N_in, f, f)."""

    def __init__(self, embedding: int, hidden: int) -> None:
        super().__init__()
        self.embedding, self.hidden = embedding, hidden
        # a = W_i z + B_i, each a_i of size d: z ~ N(0, 1) gives a ~ N(0, 1); the tile then
        # starts at the std of a Kaiming-initialised conv of TILE outputs.
        self.w_in = nn.Parameter(torch.randn(embedding, TILE * hidden) / math.sqrt(embedding))
        self.b_in = nn.Parameter(torch.zeros(TILE * hidden))
        std = math.sqrt(2.0 / (TILE * KERNEL * KERNEL))
        self.w_out = nn.Parameter(torch.randn(hidden, TILE * KERNEL * KERNEL) * std / math.sqrt(hidden))
        self.b_out = nn.Parameter(torch.zeros(TILE * KERNEL * KERNEL))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a = (z @ self.w_in + self.b_in).unflatten(-1, (TILE, self.hidden))  # (..., N_in, d)
        k = (a @ self.w_out + self.b_out).unflatten(-1, (TILE, KERNEL, KERNEL))  # (..., N_in, N_out, f, f)
        return k.transpose(-4, -3)  # (..., N_out, N_in, f, f)


class Tiled(nn.Module):
    """A parametrization: the conv's kernel, a grid of tiles the generator makes from the
    layer's embeddings, cropped to the conv."""

    def __init__(self, generator: Generator, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.generator = generator
        self.shape = tuple(shape)
        rows, columns = tiles(self.shape)
        self.z = nn.Parameter(torch.randn(rows, columns, generator.embedding))

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.new_empty(0)  # the dense weight is never read again: an empty placeholder

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        grid = self.generator(self.z)  # (rows, columns, N_out, N_in, f, f)
        rows, columns = grid.shape[:2]
        kernel = grid.permute(0, 2, 1, 3, 4, 5).reshape(rows * TILE, columns * TILE, KERNEL, KERNEL)
        return kernel[: self.shape[0], : self.shape[1]]


def convert(model: nn.Module, embedding: int, hidden: int) -> nn.Module:
    """Generate every target conv of ``model`` from one generator, in place; return the model."""
    names = targets(model)
    device = model.get_submodule(names[0]).weight.device
    generator = Generator(embedding, hidden).to(device)
    for name in names:
        conv = model.get_submodule(name)
        parametrize.register_parametrization(
            conv, "weight", Tiled(generator, conv.weight.shape).to(device), unsafe=True
        )
        conv.parametrizations.weight.original.requires_grad_(False)
    return model
