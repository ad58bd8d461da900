"""Stacked sub-networks (Tables 4 and 5): shared CPM-style, reused SharpNet sub-networks,
and unshared hourglasses (Table 4's ceiling). RPG on these networks is suite.methods.sharing's
``rpg``, matched to them by a budget that names them (``rpg@cpm``, ``rpg@reuse-bn``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import nn

from baselines import hourglass
from suite.archs import Net
from suite.methods.base import Method, backbone, require_family
from suite.methods.registry import register
from suite.methods.widths import Widths

register(
    Widths(
        "noshare",
        family="hourglass",
        knob="channels",
        description="stacked hourglass sub-networks with weights of their own (no sharing): Table 4's ceiling",
        min_width=hourglass.MIN_CHANNELS,
    )
)


class CpmSetting(TypedDict):
    """CPM's setting: its one width, every stack sharing its weights."""

    channels: int
    shared: bool


class ReuseSetting(TypedDict):
    """A stacked network's setting: its width, what its applications share ("none", "all"
    or "conv"), and how many there are."""

    channels: int
    share: str
    applications: int | None  # None: the network's own number of sub-networks


@register
@dataclass
class Cpm(Method):
    """Convolutional-pose-machine-style sharing (Wei et al. 2016; baselines/hourglass.py,
    ``shared=True``): one sub-network, BatchNorm included, applied at every stage, so the
    network has one sub-network's parameters however many stages it runs. It has no knob:
    it runs at its natural size, and Table 4 matches RPG to it (``rpg@cpm``).

    Counting rule: every trainable scalar (the shared sub-network counted once)."""

    name: str = "cpm"
    knob: str = "none (one sub-network's weights, reused at every stage)"
    description: str = (
        "CPM-style sharing: one hourglass sub-network, BatchNorm included, applied at every stage (Wei et al. 2016)"
    )
    counting: str = "every trainable scalar; the shared sub-network counts once"

    def natural(self, net: Net) -> int:
        require_family(self, net, "hourglass")
        with torch.device("meta"):
            return backbone(net.build(shared=True), net.arch.head)

    def reach(self, net: Net) -> tuple[int, int]:
        n = self.natural(net)
        return n, n

    def setting(self, net: Net, budget: int) -> CpmSetting:
        return {"channels": net.widths[0], "shared": True}

    def build(self, net: Net, setting: CpmSetting, seed: int) -> nn.Module:
        return net.build((setting["channels"],), shared=True)


@dataclass
class Reuse(Method):
    """Table 5's stacked SharpNet sub-networks at one sub-network's parameters, with no knob:
    one sub-network applied once (``noreuse``), applied twice with everything shared
    (``reuse``), or applied twice with its convolutions shared and a BatchNorm per
    application (``reuse-bn``). RPG, matched to ``reuse-bn`` (``rpg@reuse-bn``), adds a
    permutation and reflection per application. Runs at its natural size.

    Counting rule: every trainable scalar; a shared tensor counts once."""

    name: str
    applications: int | None  # None: the network's own number of sub-networks
    share: str  # "none", "all" (BatchNorm too) or "conv" (a BatchNorm per application)
    description: str
    knob: str = "none (one sub-network's convolutions)"
    counting: str = "every trainable scalar; a shared tensor counts once"

    def natural(self, net: Net) -> int:
        require_family(self, net, "sharpnet")
        with torch.device("meta"):
            return backbone(self.build(net, self.setting(net, 0), 0), net.arch.head)

    def reach(self, net: Net) -> tuple[int, int]:
        n = self.natural(net)
        return n, n

    def setting(self, net: Net, budget: int) -> ReuseSetting:
        return {"channels": net.widths[0], "share": self.share, "applications": self.applications}

    def build(self, net: Net, setting: ReuseSetting, seed: int) -> nn.Module:
        return net.build((setting["channels"],), repeats=setting["applications"], shared=setting["share"])


for _method in [
    Reuse("noreuse", 1, "none", "one SharpNet sub-network, applied once (no reuse): Table 5's first row"),
    Reuse("reuse", None, "all", "the SharpNet sub-network applied twice, BatchNorm included (plain reuse)"),
    Reuse(
        "reuse-bn",
        None,
        "conv",
        "the SharpNet sub-network's convolutions applied twice, a new BatchNorm for the second application",
    ),
]:
    register(_method)
