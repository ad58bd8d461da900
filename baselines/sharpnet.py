"""A compact SharpNet-style multi-task network (Ramamonjisoa & Lepetit 2019) for depth and
surface normals, its sub-network stacked, with or without its weights reused (Table 5).

A stem (3x3 convolution, stride 2) feeds ``stacks`` sub-networks. Each is an encoder of
three residual stages (1, 1/2 and 1/4 of the stem's resolution, channels C, 2C, 4C)
shared by two decoders, depth and normals, that upsample back with a skip from every
encoder stage, as SharpNet's decoders do from its ResNet encoder. Each decoder ends in a
1x1 scorer: log-depth (1 channel) and a normal (3 channels), upsampled to the input's
resolution. Every sub-network's predictions are supervised. The next sub-network reads
the stem's features plus both decoders' last features: a transition without weights,
so stacking adds no parameter and the paper's four variants can all have one count.

``share`` says how the stacked sub-networks relate:
    "none"  each has weights of its own (what RPG converts: one ring per building block,
            read by the corresponding blocks of every sub-network, each with its own BN);
    "all"   one sub-network applied ``stacks`` times, BatchNorm included ("reuse");
    "conv"  one set of convolutions, a BatchNorm per application ("reuse with new BN").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = 32  # C: the first encoder stage's width (the others have 2C and 4C)
MIN_CHANNELS = 2
SHARES = ("none", "all", "conv")
# The building blocks of a sub-network: RPG generates corresponding blocks of every
# sub-network from one ring (Section 5.4: "multiple RPGs at the building-block level").
BLOCKS = ("enc1", "enc2", "enc3", "depth.up2", "depth.up1", "depth.out", "normal.up2", "normal.up1", "normal.out")


def block_rings() -> dict[str, str]:
    """``rpg.convert``'s scope for a network with ``share="none"``: every sub-network's
    block ``b`` in ring ``b`` (the stem, outside every sub-network, stays dense)."""
    return {f"subnetworks.*.{b}*": b.replace(".", "-") for b in BLOCKS}


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Residual(nn.Module):
    """A ResNet basic block (two 3x3 convolutions), strided when the stage downsamples."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


class Up(nn.Module):
    """Upsample x2, a 3x3 convolution to the skip's width, the skip added, one more 3x3."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.reduce = _conv_bn(cin, cout)
        self.fuse = _conv_bn(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(self.reduce(x) + skip)


class Decoder(nn.Module):
    def __init__(self, channels: int, outputs: int) -> None:
        super().__init__()
        self.up2 = Up(4 * channels, 2 * channels)
        self.up1 = Up(2 * channels, channels)
        self.out = nn.Conv2d(channels, outputs, 1)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor, e3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.up1(self.up2(e3, e2), e1)
        return features, self.out(features)


class SubNetwork(nn.Module):
    """Encoder and both decoders: (features for the next sub-network, predictions)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.enc1 = Residual(channels, channels, 1)
        self.enc2 = Residual(channels, 2 * channels, 2)
        self.enc3 = Residual(2 * channels, 4 * channels, 2)
        self.depth = Decoder(channels, 1)
        self.normal = Decoder(channels, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        fd, depth = self.depth(e1, e2, e3)
        fn, normal = self.normal(e1, e2, e3)
        return fd + fn, torch.cat([depth, normal], 1)


def _tie_convs(source: nn.Module, target: nn.Module) -> None:
    """``target``'s convolutions read ``source``'s parameters (one tensor, counted once by
    ``parameters()``); its BatchNorms stay its own."""
    for (_, a), (_, b) in zip(source.named_modules(), target.named_modules(), strict=True):
        if isinstance(a, nn.Conv2d):
            b.weight = a.weight
            if a.bias is not None:
                b.bias = a.bias


class StackedSharpNet(nn.Module):
    """``stacks`` sub-networks on one stem; forward returns every sub-network's predictions
    at the input's resolution, (stacks, N, 4, H, W): channel 0 log-depth, 1-3 a normal
    (not yet unit length); the last sub-network's are the prediction."""

    def __init__(self, stacks: int, channels: int = CHANNELS, in_channels: int = 3, share: str = "none") -> None:
        super().__init__()
        if channels < MIN_CHANNELS:
            raise ValueError(f"a SharpNet sub-network needs at least {MIN_CHANNELS} channels, got {channels}")
        if share not in SHARES:
            raise ValueError(f"share must be one of {SHARES}, got {share!r}")
        self.stacks, self.share = stacks, share
        self.stem = _conv_bn(in_channels, channels, stride=2)
        count = 1 if share == "all" else stacks
        self.subnetworks = nn.ModuleList(SubNetwork(channels) for _ in range(count))
        if share == "conv":
            for sub in self.subnetworks[1:]:
                _tie_convs(self.subnetworks[0], sub)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem(x)
        outputs = []
        for i in range(self.stacks):
            features, predictions = self.subnetworks[0 if self.share == "all" else i](x)
            outputs.append(F.interpolate(predictions, size=size, mode="bilinear", align_corners=False))
            x = x + features
        return torch.stack(outputs)
