"""Every conv generated from rings (rpg.convert): the paper's method, and the sharing
schemes that are the same mechanism with other maps (random sharing, the hashing trick,
the permutation and reflection ablations, block-level rings, unrolled MDEQ blocks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

import pydantic
import torch
from torch import nn

import rpg
from suite.archs import Net
from suite.methods.base import Knobs, Method, backbone, require_family
from suite.methods.registry import register


class Rings(Knobs):
    """The knobs of a method that builds rings: ``--set rpg.ring_std=official``."""

    # The std a ring's W starts at (rpg.convert's ring_std): "smallest" (its layers' smallest
    # initial std), "official" (the official code's sqrt(2/4608) at any width) or a number.
    ring_std: Literal["smallest", "official"] | pydantic.PositiveFloat = "smallest"


class RingSetting(TypedDict):
    """RPG's knob: the ring's size (its elements, the rings' total), and the std its W starts
    at (the Rings knob, written in by ``tuned``)."""

    ring_size: int
    ring_std: NotRequired[str | float]


@dataclass
class RPG(Method):
    """Counting rule: the rings' elements (each counted once, however many layers read
    them), plus every backbone parameter the rings do not generate (BN, biases)."""

    name: str = "rpg"
    index: str = "even"
    sign: str = "random"
    # "paper": the rings the paper uses on the network (one global ring; on Table 5's
    # SharpNets one ring per building block, read by every sub-network's copy of it).
    scope: str = "paper"
    description: str = (
        "RPG: every conv generated from one global ring (even sampling, random signs); on stacked SharpNets "
        "one ring per building block, shared by the corresponding blocks of every sub-network (Table 5)"
    )
    repeats: int | None = None  # on a multiscale-block network: K unrolled blocks (Table 1)
    knob: str = "ring size"
    counting: str = "the rings' elements, each counted once however many layers read it, plus BN and biases"
    knobs = Rings

    def _network(self, net: Net) -> nn.Module:
        if self.repeats is None:
            require_family(self, net, "resnet", "hourglass", "sharpnet")
        return net.build(repeats=self.repeats)

    def _scope(self, net: Net):
        return net.arch.rpg_scope() if self.scope == "paper" else self.scope

    def split(self, net: Net) -> tuple[int, int, int]:
        """(weights the rings generate, backbone scalars they do not, number of rings)."""
        with torch.device("meta"):
            model = self._network(net)
        layers = rpg.plan(model, self._scope(net))
        modules = dict(model.named_modules())
        generated = sum(modules[n].weight.numel() for names in layers.values() for n in names)
        return generated, backbone(model, net.arch.head) - generated, len(layers)

    def reach(self, net: Net) -> tuple[int, int]:
        generated, rest, count = self.split(net)
        # Every ring needs an element; a ring larger than what it generates would leave
        # elements unused.
        return rest + count, rest + generated

    def setting(self, net: Net, budget: int) -> RingSetting:
        _, rest, _ = self.split(net)
        return {"ring_size": budget - rest}

    def build(self, net: Net, setting: RingSetting, seed: int) -> nn.Module:
        model = self._network(net)
        return rpg.convert(
            model,
            setting["ring_size"],
            index=self.index,
            sign=self.sign,
            scope=self._scope(net),
            seed=seed,
            ring_std=setting.get("ring_std", Rings().ring_std),
        )

    def counted(self, net: Net, budget: int) -> nn.Module:
        return net.build(repeats=self.repeats)  # the reference network (K unrolled blocks for rpg-msK)


RPG_ = register(RPG())
register(
    RPG("rpg-block", scope="block", description="RPG with one ring per stage (and one for the stem): Table 2's RPG.blk")
)
register(
    RPG("rpg-perm-only", sign="none", description="RPG ablation: even permuted sampling, no reflection (signs all +1)")
)
register(
    RPG("rpg-sign-only", index="sequential", description="RPG ablation: random reflection, no permutation (ring order)")
)
register(RPG("rpg-neither", index="sequential", sign="none", description="RPG ablation: ring order, no reflection"))
register(
    RPG(
        "random",
        index="uniform",
        sign="none",
        scope="global",
        description=(
            "random weight sharing: every conv weight reads one element of a single global pool, "
            "drawn iid uniformly (no balance, no sign); the RPG generator with index 'uniform', sign 'none'"
        ),
    )
)
register(
    RPG(
        "hash",
        index="hash",
        sign="hash",
        scope="layer",
        description=(
            "HashedNets (Chen et al. 2015): each layer hashes (layer, position) into its own buckets, "
            "one compression factor for all layers, with a hashed sign; the RPG generator with index "
            "and sign 'hash', one ring per layer"
        ),
    )
)
for _k in (2, 3, 4):
    register(
        RPG(
            f"rpg-ms{_k}",
            repeats=_k,
            description=(
                f"RPG on MDEQ's multiscale block applied {_k}x in sequence: every application's convs "
                "generated from one global ring, each with its own GroupNorm (Table 1)"
            ),
        )
    )
