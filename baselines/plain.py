"""The plain comparator: conventional ResNets (He et al. 2016) with free per-stage widths.

Module names and shapes follow torchvision's ResNet, so at widths (64, 128, 256, 512)
the ImageNet variant is torchvision's resnet18/34 parameter for parameter (and loads its
state dicts). The CIFAR variant uses a 3x3 stride-1 stem and no max-pool.
The plain method meets a parameter budget by scaling the stage widths (`scaled`).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

BLOCKS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
WIDTHS = (64, 128, 256, 512)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(
        self,
        depth: int = 18,
        widths: Sequence[int] = WIDTHS,
        *,
        stem: str = "imagenet",
        in_channels: int = 3,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        if depth not in BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(BLOCKS)}, got {depth}")
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"ResNet needs four positive stage widths, got {tuple(widths)}")
        self.widths = tuple(int(w) for w in widths)
        w0 = self.widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, w0, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        elif stem == "cifar":
            self.conv1 = conv3x3(in_channels, w0)
            self.maxpool = nn.Identity()
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.bn1 = nn.BatchNorm2d(w0)
        self.relu = nn.ReLU(inplace=True)
        cin = w0
        for stage, (blocks, width) in enumerate(zip(BLOCKS[depth], self.widths, strict=True)):
            layer = []
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                layer.append(BasicBlock(cin, width, stride))
                cin = width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            # Meta models only count parameters: skip the (slow there) init.
            if isinstance(m, nn.Conv2d) and not m.weight.is_meta:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def scaled(widths: Sequence[int], multiplier: float) -> tuple[int, ...]:
    """Stage widths times ``multiplier``, rounded, at least one channel each."""
    return tuple(max(1, round(w * multiplier)) for w in widths)
