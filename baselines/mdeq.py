"""MDEQ (Bai, Koltun, Kolter 2020) for classification, and the same multiscale block unrolled.

The multiscale (MS) block runs parallel resolution streams: a residual block per stream
(GroupNorm, variational dropout; the input is injected at the highest resolution), then
every stream receives every other (strided 3x3 convs down, 1x1 conv and nearest upsampling
up), then a ReLU-1x1-GroupNorm per stream. ``MDEQ`` solves z* = f(z*, x) for the block with
torchdeq (Broyden forward, implicit backward) after a pre-training phase that unrolls the
weight-tied block a few times; ``Unrolled`` applies K separate copies of the block in
sequence (the RPG counterpart: rpg.convert generates every copy's convs from one ring, and
each copy keeps its own GroupNorm).

Deviations from the official code, the same for both forms so the comparison is fair: the
stem is one 3x3 conv with BatchNorm; the head (MDEQ's incremental classification head)
scales its channels with the streams; and weight normalisation is torch's
parametrisation (so the ledger sees the produced weight, as it does for RPG's), not
torchdeq's hook. The iteration caps are the NeurIPS'20 TINY setting (22/24); the
repository's current cls_mdeq_TINY.yaml says 18/20 and 8 GroupNorm groups.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm
from torchdeq import get_deq, reset_dropout
from torchdeq.dropout import VariationalDropout2d

from baselines.phases import Phased

# The official CIFAR TINY configuration (cls_mdeq_TINY): streams, iteration caps, tolerance.
TINY = {"widths": (24, 24), "expansion": 5, "groups": 4, "dropout": 0.25, "head": (8, 16), "final": 200}
SOLVER = {"f_max_iter": 22, "b_max_iter": 24, "f_tol": 1e-3, "b_tol": 1e-6}
INIT_STD = 0.01
# Pre-training: the weight-tied block unrolled ``unroll`` times, for the first ``fraction``
# of the epochs (the official 3000 steps of 50 epochs x 391 steps: 15%), then the solver.
PRETRAIN = {"fraction": 0.15, "unroll": 10}


def _gn(groups: int, c: int) -> nn.GroupNorm:
    # Widths that a budget solver picks need not divide by the group count.
    return nn.GroupNorm(math.gcd(groups, c), c)


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)


class Residual(nn.Module):
    """MDEQ's basic block: conv-GN-ReLU-dropout-conv, plus injection, GN, residual, ReLU, GN."""

    def __init__(self, c: int, expansion: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = _conv(c, expansion * c)
        self.gn1 = _gn(groups, expansion * c)
        self.drop = VariationalDropout2d(dropout)
        self.conv2 = _conv(expansion * c, c)
        self.gn2 = _gn(groups, c)
        self.gn3 = _gn(groups, c)

    def forward(self, z: torch.Tensor, injection: torch.Tensor | float = 0.0) -> torch.Tensor:
        out = self.drop(F.relu(self.gn1(self.conv1(z))))
        out = self.gn2(self.conv2(out) + injection)
        return self.gn3(F.relu(out + z))


class Up(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int, factor: int) -> None:
        super().__init__()
        self.conv, self.gn, self.factor = _conv(cin, cout, 1), _gn(groups, cout), factor

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.gn(self.conv(z)), scale_factor=self.factor, mode="nearest")


def _down(cin: int, cout: int, groups: int, times: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for t in range(times):
        last = t == times - 1
        layers += [_conv(cin, cout if last else cin, 3, 2), _gn(groups, cout if last else cin)]
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MSBlock(nn.Module):
    """One application of the multiscale block: f(z, x) for a list of streams z."""

    def __init__(self, widths: tuple[int, ...], expansion: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.branches = nn.ModuleList(Residual(c, expansion, groups, dropout) for c in widths)
        self.fuse = nn.ModuleList(
            nn.ModuleList(
                nn.Identity()
                if i == j
                else _down(widths[i], widths[j], groups, j - i)
                if i < j
                else Up(widths[i], widths[j], groups, 2 ** (i - j))
                for i in range(len(widths))
            )
            for j in range(len(widths))
        )
        self.post = nn.ModuleList(nn.Sequential(nn.ReLU(), _conv(c, c, 1), _gn(max(1, groups // 2), c)) for c in widths)

    def forward(self, zs: list[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        ys = [branch(z, x if k == 0 else 0.0) for k, (branch, z) in enumerate(zip(self.branches, zs, strict=True))]
        return [
            post(sum(f(y) for f, y in zip(fuse, ys, strict=True)))
            for fuse, post in zip(self.fuse, self.post, strict=True)
        ]


class Bottleneck(nn.Module):
    """The head's block (ResNet's bottleneck, BatchNorm): cin -> 4 x planes channels."""

    def __init__(self, cin: int, planes: int) -> None:
        super().__init__()
        out = 4 * planes
        self.body = nn.Sequential(
            _conv(cin, planes, 1), nn.BatchNorm2d(planes), nn.ReLU(),
            _conv(planes, planes), nn.BatchNorm2d(planes), nn.ReLU(),
            _conv(planes, out, 1), nn.BatchNorm2d(out),
        )  # fmt: skip
        self.skip = nn.Sequential(_conv(cin, out, 1), nn.BatchNorm2d(out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(z) + self.skip(z))


def _scaled(base: int, width: int, reference: int) -> int:
    return max(2, round(base * width / reference))


class _Net(nn.Module):
    """Stem, streams, head: what both forms share. The head is MDEQ's classification head:
    a bottleneck per stream (TINY: 8 and 16 planes), the higher resolution strided down and
    added into the next, a 1x1 conv to 200 channels, global pooling, ``fc``; its channels
    scale with the streams' widths (a quarter-width network has a quarter-width head)."""

    def __init__(self, widths: tuple[int, ...], in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.stem = nn.Sequential(_conv(in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU())
        reference = TINY["widths"]
        planes = [_scaled(h, w, r) for h, w, r in zip(TINY["head"], widths, reference, strict=True)]
        self.incre = nn.ModuleList(Bottleneck(w, p) for w, p in zip(widths, planes, strict=True))
        self.downsample = nn.ModuleList(
            nn.Sequential(_conv(4 * a, 4 * b, 3, 2), nn.BatchNorm2d(4 * b), nn.ReLU())
            for a, b in itertools.pairwise(planes)
        )
        final = _scaled(TINY["final"], widths[-1], reference[-1])
        self.final = nn.Sequential(_conv(4 * planes[-1], final, 1), nn.BatchNorm2d(final), nn.ReLU())
        self.fc = nn.Linear(final, num_classes)

    def _zeros(self, x: torch.Tensor) -> list[torch.Tensor]:
        n, _, h, w = x.shape
        return [x.new_zeros(n, c, -(-h // 2**k), -(-w // 2**k)) for k, c in enumerate(self.widths)]

    def _head(self, zs: list[torch.Tensor]) -> torch.Tensor:
        y = self.incre[0](zs[0])
        for incre, down, z in zip(self.incre[1:], self.downsample, zs[1:], strict=True):
            y = incre(z) + down(y)
        return self.fc(self.final(y).mean((2, 3)))


class MDEQ(_Net, Phased):
    """The equilibrium model: one MS block, its fixed point found by Broyden's method."""

    def __init__(
        self,
        widths: tuple[int, ...],
        in_channels: int,
        num_classes: int,
        *,
        expansion: int = TINY["expansion"],
        groups: int = TINY["groups"],
        dropout: float = TINY["dropout"],
        solver: dict | None = None,
        pretrain: dict | None = None,
    ) -> None:
        super().__init__(widths, in_channels, num_classes)
        self.block = MSBlock(self.widths, expansion, groups, dropout)
        for module in self.block.modules():
            if isinstance(module, nn.Conv2d):
                # Small initial weights make f a contraction at the start (as the official
                # code's initialisation does), so the first solves converge.
                nn.init.normal_(module.weight, 0.0, INIT_STD)
                weight_norm(module)
        self.solver = {**SOLVER, **(solver or {})}
        self.pretrain = {**PRETRAIN, **(pretrain or {})}
        self.deq = get_deq(f_solver="broyden", b_solver="broyden", ift=True, **self.solver)
        # A buffer, so a resumed run is in the phase it was in.
        self.register_buffer("pretraining", torch.tensor(self.pretrain["fraction"] > 0))
        self.stats: dict[str, float] = {}
        self._seen: list[tuple[int, dict]] = []  # (batch size, stats) of inference solves

    def solver_record(self) -> dict:
        """The solver's settings and, averaged over the examples solved in inference since
        the last call, its iterations and residuals at the returned point."""
        n = sum(k for k, _ in self._seen)
        mean = (
            {key: sum(k * s[key] for k, s in self._seen) / n for key in ("iterations", "abs_residual", "rel_residual")}
            if n
            else {}
        )
        self._seen.clear()
        return {
            "solver": "broyden",
            "backward": "implicit (broyden)",
            **self.solver,
            "pretrain": self.pretrain,
            "inference": {"examples": n, **mean},
        }

    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        """Pre-training ends on schedule (Phased: the trainer calls this after every epoch)."""
        if epoch >= math.ceil(self.pretrain["fraction"] * epochs):
            self.pretraining.fill_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.training:
            reset_dropout(self.block)  # a new variational mask per batch, fixed across iterations
        zs = self._zeros(x)
        with parametrize.cached():  # the normalised weights once per solve, not once per iteration
            if self.training and bool(self.pretraining):
                for _ in range(self.pretrain["unroll"]):
                    zs = self.block(zs, x)
                self.stats = {"phase": "unrolled", "iterations": self.pretrain["unroll"]}
            else:
                out, info = self.deq(lambda *z: self.block(list(z), x), zs)
                zs = out[-1]
                self.stats = {
                    "phase": "equilibrium",
                    "iterations": float(info["nstep"].float().mean()),
                    "abs_residual": float(info["abs_lowest"].float().mean()),
                    "rel_residual": float(info["rel_lowest"].float().mean()),
                }
                if not self.training:
                    self._seen.append((len(x), self.stats))
        return self._head(zs)


class Unrolled(_Net):
    """K separate MS blocks in sequence, each fed the injected input: z_k = f_k(z_{k-1}, x)."""

    def __init__(
        self,
        widths: tuple[int, ...],
        in_channels: int,
        num_classes: int,
        repeats: int,
        *,
        expansion: int = TINY["expansion"],
        groups: int = TINY["groups"],
        dropout: float = TINY["dropout"],
    ) -> None:
        super().__init__(widths, in_channels, num_classes)
        self.blocks = nn.ModuleList(MSBlock(self.widths, expansion, groups, dropout) for _ in range(repeats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.training:
            reset_dropout(self)
        zs = self._zeros(x)
        for block in self.blocks:
            zs = block(zs, x)
        return self._head(zs)
