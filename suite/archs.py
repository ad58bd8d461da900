"""Architectures by name (a suite.registry.Registry): what a suite's `arch` field may say.
Each is an instance of a class below, registered beside it (``register(Arch(...))``);
another package's architectures register the same way, in a module it names in the
``rpg_bench.archs`` entry-point group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from baselines import hourglass, mdeq, sharpnet
from baselines.plain import WIDTHS, ResNet, scaled
from suite.errors import UsageError
from suite.registry import Registry

ARCHS: Registry[Arch] = Registry("architecture", "rpg_bench.archs")
register = ARCHS.register
get = ARCHS.named


@dataclass(frozen=True)
class Arch:
    name: str
    depth: int
    stem: str
    description: str
    head: str = "fc"  # the task head's module name: outside the backbone budget
    widths: tuple[int, ...] = WIDTHS  # at width 1
    family: str = "resnet"

    def build(self, widths: Sequence[int], in_channels: int, num_classes: int, repeats: int | None = None) -> nn.Module:
        if repeats is not None:
            raise UsageError(
                f"{self.name} has no repeated block to unroll (the rpg-msK methods need an mdeq-* network)"
            )
        return ResNet(self.depth, widths, stem=self.stem, in_channels=in_channels, num_classes=num_classes)

    def rpg_scope(self):
        """The rings the paper's RPG uses on this network: one global ring (Table 5's
        SharpNets override it with a ring per building block)."""
        return "global"


register(Arch("resnet10-cifar", 10, "cifar", "ResNet-10 (one block per stage), CIFAR stem"))
register(Arch("resnet18-cifar", 18, "cifar", "ResNet-18, 3x3 stride-1 stem, no max-pool"))
register(Arch("resnet34-cifar", 34, "cifar", "ResNet-34, 3x3 stride-1 stem, no max-pool"))
register(Arch("resnet18", 18, "imagenet", "ResNet-18 as torchvision's (7x7 stem, max-pool)"))
register(Arch("resnet34", 34, "imagenet", "ResNet-34 as torchvision's (7x7 stem, max-pool)"))


@dataclass(frozen=True)
class MdeqArch(Arch):
    """A multiscale-block network: MDEQ itself, or (``repeats`` = K) K unrolled blocks."""

    family: str = "mdeq"

    def build(self, widths: Sequence[int], in_channels: int, num_classes: int, repeats: int | None = None) -> nn.Module:
        if repeats is None:
            return mdeq.MDEQ(tuple(widths), in_channels, num_classes)
        return mdeq.Unrolled(tuple(widths), in_channels, num_classes, repeats)


register(
    MdeqArch(
        "mdeq-tiny",
        0,
        "cifar",
        "MDEQ-TINY (2 streams x 24 channels, one multiscale block); K unrolled blocks for rpg-msK",
        widths=mdeq.TINY["widths"],
    )
)


@dataclass(frozen=True)
class HourglassArch(Arch):
    """A stacked hourglass network (Table 4): ``stacks`` sub-networks on one stem, each
    emitting heat-maps. Its one width is the sub-networks' channels; every parameter
    counts (no head outside the budget: the paper's 3.3M is the whole network)."""

    stacks: int = 1
    head: str = ""
    family: str = "hourglass"
    widths: tuple[int, ...] = (hourglass.CHANNELS,)

    def build(
        self, widths: Sequence[int], in_channels: int, num_classes: int, repeats: int | None = None, shared=False
    ) -> nn.Module:
        if repeats is not None:
            raise UsageError(
                f"{self.name} has no repeated block to unroll (the rpg-msK methods need an mdeq-* network)"
            )
        (channels,) = widths
        return hourglass.StackedHourglass(
            self.stacks, joints=num_classes, channels=channels, in_channels=in_channels, shared=shared
        )


for _stacks in (1, 2, 4):
    register(
        HourglassArch(
            f"hourglass-{_stacks}x",
            0,
            "hourglass",
            f"stacked hourglass, {_stacks} sub-network{'s' * (_stacks > 1)} of 256 channels (Newell et al. 2016)",
            stacks=_stacks,
        )
    )


@dataclass(frozen=True)
class SharpArch(Arch):
    """Stacked SharpNet-style sub-networks for depth and normals (Table 5): ``stacks`` of
    them on one stem. Its one width is the first encoder stage's channels; every parameter
    counts (no head outside the budget). ``repeats`` overrides the number of stacks
    (Table 5's "no reuse" is one sub-network, applied once)."""

    stacks: int = 2
    head: str = ""
    family: str = "sharpnet"
    widths: tuple[int, ...] = (sharpnet.CHANNELS,)

    def build(
        self, widths: Sequence[int], in_channels: int, num_classes: int, repeats: int | None = None, shared=False
    ) -> nn.Module:
        (channels,) = widths
        share = {False: "none", True: "all"}.get(shared, shared)
        return sharpnet.StackedSharpNet(repeats or self.stacks, channels, in_channels, share)

    def rpg_scope(self):
        return sharpnet.block_rings()


register(
    SharpArch(
        "sharpnet",
        0,
        "sharpnet",
        "SharpNet-style encoder and depth and normal decoders (Ramamonjisoa & Lepetit 2019), compact: "
        "2 stacked sub-networks of 32, 64 and 128 channels",
    )
)


@dataclass(frozen=True)
class Net:
    """The reference network of an experiment: an architecture at a width, for a task."""

    arch: Arch
    width: float
    in_channels: int
    num_classes: int

    @property
    def widths(self) -> tuple[int, ...]:
        return scaled(self.arch.widths, self.width)

    def build(
        self, widths: Sequence[int] | None = None, repeats: int | None = None, shared: bool | str = False
    ) -> nn.Module:
        if shared:  # sub-networks shared: stacked hourglasses (CPM) and SharpNets (Table 5)
            return self.arch.build(widths or self.widths, self.in_channels, self.num_classes, repeats, shared=shared)
        return self.arch.build(widths or self.widths, self.in_channels, self.num_classes, repeats)
