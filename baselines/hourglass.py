"""Stacked hourglass networks (Newell et al. 2016) for pose estimation, with or without
weights shared across the stacked sub-networks (Table 4).

A stem (7x7 stride-2 convolution, bottlenecks and a max-pool: a quarter of the input's
resolution) feeds N sub-networks. Each is an hourglass (down to 1/16 of the stem's
resolution and back, with a skip at every scale) followed by a bottleneck, a 1x1
convolution and a 1x1 scorer that emits one heat-map per joint; the heat-maps of every
sub-network are supervised (intermediate supervision), and, mapped back by 1x1
convolutions, are added to the features the next sub-network reads. Bottlenecks are
pre-activation (BN, ReLU, conv) with half as many inner channels, as in the paper's code.

``shared=True`` is convolutional-pose-machine-style sharing (Wei et al. 2016): every
sub-network is one module applied N times, BatchNorm included, so the parameters stay
those of one sub-network whatever N is. ``shared=False`` gives each sub-network its own
weights (no sharing: the ceiling); RPG converts that network, so that one ring generates
every sub-network while each keeps its own BatchNorm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = 256  # Newell et al.'s sub-network width
MIN_CHANNELS = 4  # the stem's first conv has a quarter of them


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 2
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, mid, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), nn.Conv2d(mid, mid, 3, padding=1)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), nn.Conv2d(mid, cout, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + self.skip(x)


class Hourglass(nn.Module):
    """Recursive: a skip branch at this scale, and a max-pooled branch that recurses
    ``depth - 1`` times before it is upsampled and added back."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.skip = Bottleneck(channels, channels)
        self.down = Bottleneck(channels, channels)
        self.inner = Hourglass(channels, depth - 1) if depth > 1 else Bottleneck(channels, channels)
        self.up = Bottleneck(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class SubNetwork(nn.Module):
    """One stacked sub-network: hourglass, features, heat-maps, and the maps back into the
    features the next sub-network reads."""

    def __init__(self, channels: int, joints: int, depth: int, last: bool) -> None:
        super().__init__()
        self.hourglass = Hourglass(channels, depth)
        self.features = nn.Sequential(
            Bottleneck(channels, channels), nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.score = nn.Conv2d(channels, joints, 1)
        # The last sub-network feeds nothing on: it has no maps back (no unused weights).
        self.back = None if last else nn.Conv2d(channels, channels, 1)
        self.remap = None if last else nn.Conv2d(joints, channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.features(self.hourglass(x))
        heatmaps = self.score(y)
        if self.back is None:
            return heatmaps, x
        return heatmaps, x + self.back(y) + self.remap(heatmaps)


class StackedHourglass(nn.Module):
    """``stacks`` sub-networks on one stem; forward returns every sub-network's heat-maps,
    (stacks, N, joints, H/4, W/4); the last are the prediction."""

    def __init__(
        self,
        stacks: int,
        joints: int = 16,
        channels: int = CHANNELS,
        depth: int = 4,
        in_channels: int = 3,
        shared: bool = False,
    ) -> None:
        super().__init__()
        if channels < MIN_CHANNELS:
            raise ValueError(f"a stacked hourglass needs at least {MIN_CHANNELS} channels, got {channels}")
        self.stacks, self.shared = stacks, shared
        half = channels // 2
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, half // 2, 7, stride=2, padding=3),
            nn.BatchNorm2d(half // 2),
            nn.ReLU(),
            Bottleneck(half // 2, half),
            nn.MaxPool2d(2),
            Bottleneck(half, half),
            Bottleneck(half, channels),
        )
        if shared:  # one module, applied ``stacks`` times: its maps back serve every transition
            self.subnetworks = nn.ModuleList([SubNetwork(channels, joints, depth, last=stacks == 1)])
        else:
            self.subnetworks = nn.ModuleList(
                SubNetwork(channels, joints, depth, last=i == stacks - 1) for i in range(stacks)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        outputs = []
        for i in range(self.stacks):
            sub = self.subnetworks[0 if self.shared else i]
            heatmaps, features = sub(x)
            # The shared module's maps back are skipped after the last application.
            x = features if i < self.stacks - 1 else x
            outputs.append(heatmaps)
        return torch.stack(outputs)
