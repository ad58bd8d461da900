"""Methods: a name, one size knob, and how to build a model that meets a backbone budget.

Every method answers the same three questions, so one solver and one ledger serve all:
``reach(net)`` (the smallest and largest backbone its knob can give), ``setting(net,
budget)`` (the knob that meets the budget, found without allocating weights) and
``build(net, setting, seed)``.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

import rpg
from baselines import filters, hourglass, imp, int8, knapsack, lego, structured
from baselines.plain import scaled
from suite import solver
from suite.archs import Net
from suite.errors import BudgetError, UsageError
from suite.ledger import format_count, ledger
from suite.tasks import Recipe, Splits, Task
from suite.train import fit


def backbone(model: nn.Module, head: str) -> int:
    """Trainable scalars outside the head, by the ledger's rule (meta models included).
    An architecture without a head (``""``) counts every one."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not head:
        return total
    return total - sum(p.numel() for p in model.get_submodule(head).parameters() if p.requires_grad)


@functools.lru_cache(maxsize=4096)
def _plain_backbone(net: Net, widths: tuple[int, ...]) -> int:
    with torch.device("meta"):
        return backbone(net.build(widths), net.arch.head)


def plain_backbone(net: Net) -> int:
    """The backbone of the reference network itself (its natural size: '100%')."""
    return _plain_backbone(net, net.widths)


@dataclass
class Built:
    model: nn.Module
    setting: dict
    ledger: dict
    budget: int

    @property
    def deviation(self) -> float:
        return solver.deviation(self.ledger["backbone"], self.budget)


class Method:
    name = ""
    knob = ""
    description = ""
    counting = "every trainable scalar outside the task head (BN and biases included)"
    # True when the budget is the model's size before training prunes it (Table 7 states
    # its methods so); otherwise the trained model itself meets the budget.
    budget_before_pruning = False

    def reach(self, net: Net) -> tuple[int, int]:
        raise NotImplementedError

    def setting(self, net: Net, budget: int) -> dict:
        raise NotImplementedError

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        raise NotImplementedError

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: dict, **kw
    ) -> dict:
        """Train the built model (fit's keywords: progress, desc, checkpoint). Methods whose
        training changes the model's size (pruning) override this."""
        return fit(model, task, splits, recipe, seed, **kw)

    def pruned(self, model: nn.Module, setting: dict) -> nn.Module:
        """The model as it will be counted after training (pruning methods shrink it there)."""
        return model

    def trainings(self, net: Net, budget: int) -> int:
        """How many times a cell trains the recipe through (for cost estimates)."""
        return 1

    def natural(self, net: Net) -> int:
        """The backbone this method has on ``net`` with nothing squeezed: what a budget that
        names the method means (Table 4 runs RPG "at CPM's size", written ``rpg@cpm``)."""
        raise UsageError(f"{self.name} has no natural size: it is built to a budget (write a count or a fraction)")

    def rebuild(self, net: Net, setting: dict, seed: int, state: dict) -> nn.Module:
        """The trained model again, from its setting and state dict (the memory probe's
        fresh process): built, pruned as the state says, loaded."""
        model = self.build(net, setting, seed)
        for key in state:  # a pruned model's tensors are weight_orig * weight_mask: prune them alike
            if key.endswith("_mask"):
                owner, _, name = key.removesuffix("_mask").rpartition(".")
                prune.identity(model.get_submodule(owner), name)
        model.load_state_dict(state)
        return model


class Plain(Method):
    name = "plain"
    knob = "stage widths"
    description = "the conventional network, stage widths scaled (then set per stage) to meet the budget"
    max_multiplier = 4.0
    family = "resnet"

    min_width = 1

    def _widths(self, net: Net, multiplier: float) -> tuple[int, ...]:
        return tuple(max(self.min_width, w) for w in scaled(net.widths, multiplier))

    def _f(self, net: Net, multiplier: float) -> int:
        return _plain_backbone(net, self._widths(net, multiplier))

    def reach(self, net: Net) -> tuple[int, int]:
        _family(self, net, self.family)
        return self._f(net, 0.0), self._f(net, self.max_multiplier)

    def natural(self, net: Net) -> int:
        _family(self, net, self.family)
        return plain_backbone(net)

    def setting(self, net: Net, budget: int) -> dict:
        m = solver.bisect(lambda m: self._f(net, m), 0.0, self.max_multiplier, budget, integer=False)
        # Per-stage widths fine-tune the count; they stay non-decreasing, as in a ResNet.
        widths = solver.refine(
            self._widths(net, m),
            lambda w: _plain_backbone(net, w),
            budget,
            steps=range(-3, 4),
            valid=lambda w: all(a <= b for a, b in itertools.pairwise(w)) and min(w) >= self.min_width,
        )
        return {"widths": list(widths)}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        return net.build(tuple(setting["widths"]))


@dataclass
class RPG(Method):
    """Every conv generated from rings: the paper's method, and the sharing schemes that are
    the same mechanism with other maps (random sharing, the hashing trick, the ablations).

    Counting rule: the rings' elements (each counted once, however many layers read them),
    plus every backbone parameter the rings do not generate (BN, biases).
    """

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
    knob = "ring size"
    counting = "the rings' elements, each counted once however many layers read it, plus BN and biases"

    def _network(self, net: Net) -> nn.Module:
        if self.repeats is None:
            _family(self, net, "resnet", "hourglass", "sharpnet")
        return net.build(repeats=self.repeats)

    def _scope(self, net: Net):
        return net.arch.rpg_scope() if self.scope == "paper" else self.scope

    def _split(self, net: Net) -> tuple[int, int, int]:
        """(weights the rings generate, backbone scalars they do not, number of rings)."""
        with torch.device("meta"):
            model = self._network(net)
        layers = rpg.plan(model, self._scope(net))
        modules = dict(model.named_modules())
        generated = sum(modules[n].weight.numel() for names in layers.values() for n in names)
        return generated, backbone(model, net.arch.head) - generated, len(layers)

    def reach(self, net: Net) -> tuple[int, int]:
        generated, rest, count = self._split(net)
        # Every ring needs an element; a ring larger than what it generates would leave
        # elements unused.
        return rest + count, rest + generated

    def setting(self, net: Net, budget: int) -> dict:
        _, rest, _ = self._split(net)
        return {"ring_size": budget - rest}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        model = self._network(net)
        return rpg.convert(
            model, setting["ring_size"], index=self.index, sign=self.sign, scope=self._scope(net), seed=seed
        )


RANDOM = RPG(
    "random",
    index="uniform",
    sign="none",
    scope="global",
    description=(
        "random weight sharing: every conv weight reads one element of a single global pool, "
        "drawn iid uniformly (no balance, no sign); the RPG generator with index 'uniform', sign 'none'"
    ),
)
HASH = RPG(
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
UNROLLED = [
    RPG(
        f"rpg-ms{k}",
        repeats=k,
        description=(
            f"RPG on MDEQ's multiscale block applied {k}x in sequence: every application's convs "
            "generated from one global ring, each with its own GroupNorm (Table 1)"
        ),
    )
    for k in (2, 3, 4)
]
VARIANTS = [
    RPG(),
    RPG(
        "rpg-block", scope="block", description="RPG with one ring per stage (and one for the stem): Table 2's RPG.blk"
    ),
    RPG("rpg-perm-only", sign="none", description="RPG ablation: even permuted sampling, no reflection (signs all +1)"),
    RPG(
        "rpg-sign-only", index="sequential", description="RPG ablation: random reflection, no permutation (ring order)"
    ),
    RPG("rpg-neither", index="sequential", sign="none", description="RPG ablation: ring order, no reflection"),
]


@dataclass
class Int8(RPG):
    """RPG, trained in float, then quantised to int8 after training (baselines/int8.py;
    Appendix A). Counted as the float model it quantises (the same ring); stored as itself."""

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: dict, **kw
    ) -> dict:
        summary = fit(model, task, splits, recipe, seed, **kw)
        n = math.ceil(int8.CALIBRATION / recipe.batch_size)
        # A fixed shuffled sample of training batches, as they train (torchvision's reference
        # calibrates on its training loader): in file order ImageNet's first are one class.
        sample = task.batches(splits, "train", recipe.batch_size, torch.Generator().manual_seed(0))
        batches = [x for x, _ in itertools.islice(sample, n)]
        quantised = int8.quantise(model, batches)
        return {
            **summary,
            "final": quantised,
            "stages": {"before-quantisation": model},
            "quantisation": {"bits": 8, "backend": int8.BACKEND, "calibration_images": sum(map(len, batches))},
        }


INT8 = Int8(
    "rpg-int8",
    description=(
        "RPG trained in float, then 8-bit post-training quantisation (PyTorch FX, x86 backend, per-channel "
        "weights, calibrated on 1,024 training images); runs on the CPU (Appendix A)"
    ),
)


class Lego(Method):
    """LegoNet (baselines/lego.py): every conv built from m shared lego filters per layer.

    Counting rule: lego filters + one coefficient per (split, output channel); the
    selection logits are a training-time proxy for a discrete choice and are not counted.
    Knob: legos per layer, with the input split in 2 (LegoNet's usual o = 2); budgets
    beyond what o = 2 reaches (about half the plain network) take o = 1, which reaches
    the plain network's size plus the coefficients. Below one lego per layer it cannot go.
    """

    name = "lego"
    knob = "legos per layer"
    description = "LegoNet: each conv built from m shared lego filters over 2 input splits, one-hot selection (STE)"
    counting = (
        "lego filters plus one coefficient per (input split, output channel), plus BN and biases; "
        "the selection logits (a training-time proxy for a discrete choice) are not counted"
    )
    splits = (2, 1)

    def _layers(self, net: Net) -> tuple[list[tuple[str, tuple[int, ...]]], int]:
        """(name and weight shape of every conv it rebuilds, backbone scalars outside them)."""
        _family(self, net, "resnet")
        with torch.device("meta"):
            model = net.build()
        convs = [(n, tuple(model.get_submodule(n).weight.shape)) for n in lego.targets(model)]
        rest = backbone(model, net.arch.head) - sum(math.prod(s) for _, s in convs)
        return convs, rest

    @staticmethod
    def _count(convs: list[tuple[str, tuple[int, ...]]], rest: int, legos: list[int], split: int) -> int:
        return rest + sum(lego.count(s, m, split) for (_, s), m in zip(convs, legos, strict=True))

    def _reach(self, net: Net, split: int) -> tuple[int, int]:
        convs, rest = self._layers(net)
        return self._count(convs, rest, [1] * len(convs), split), self._count(
            convs, rest, [s[0] for _, s in convs], split
        )

    def reach(self, net: Net) -> tuple[int, int]:
        reaches = [self._reach(net, split) for split in self.splits]
        return min(lo for lo, _ in reaches), max(hi for _, hi in reaches)

    def setting(self, net: Net, budget: int) -> dict:
        split = next(s for s in self.splits if self._reach(net, s)[0] <= budget <= self._reach(net, s)[1])
        convs, rest = self._layers(net)

        def legos_at(f: float) -> list[int]:
            return [max(1, min(s[0], int(f * s[0]))) for _, s in convs]

        f = solver.bisect(lambda f: self._count(convs, rest, legos_at(f), split), 0.0, 1.0, budget, integer=False)
        legos = legos_at(f)
        if self._count(convs, rest, legos, split) > budget:
            legos = legos_at(max(0.0, f - 1e-9))
        # One fraction moves all layers of a width together in big steps; fill what is left
        # one lego at a time, largest steps first, down to the stem's (C_in k^2 scalars).
        steps = [lego.count(s, 2, split) - lego.count(s, 1, split) for _, s in convs]
        for i in sorted(range(len(convs)), key=lambda i: -steps[i]):
            room = (budget - self._count(convs, rest, legos, split)) // steps[i]
            legos[i] += max(0, min(room, convs[i][1][0] - legos[i]))
        return {"legos": dict(zip([n for n, _ in convs], legos, strict=True)), "split": split}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        return lego.convert(net.build(), setting["legos"], setting["split"])


class Mdeq(Plain):
    """MDEQ (baselines/mdeq.py): one weight-normalised multiscale block solved to its fixed
    point. Its size knob is the streams' widths, as plain's is the stage widths.

    Counting rule: every trainable scalar outside the head; a weight-normalised conv counts
    its direction and its per-channel gain (what is learned)."""

    name = "mdeq"
    knob = "stream widths"
    description = "MDEQ: one multiscale block, its equilibrium found by Broyden's method, implicit backward"
    counting = "every trainable scalar outside the head (weight norm's direction and gain both), GN and BN included"

    family = "mdeq"


class Imp(Method):
    """Iterative magnitude pruning with rewinding (baselines/imp.py) of a dense network down
    to the budget: the plain network at its natural size (``imp``), or RPG with a ring of
    half the plain backbone (``rpg-imp``, Table 6's pruned ResNet-18-RPG: the paper's
    ResNet-18-RPG elsewhere has half of ResNet-18's backbone; it does not say which it pruned).

    Counting rule: a pruned tensor counts its unmasked entries (its mask's nonzeros, not the
    ``numel`` of ``weight_orig``), plus BN and biases."""

    knob = "weights kept by the last pruning level"
    counting = (
        "unmasked entries of every pruned tensor (the mask's nonzeros, not numel of weight_orig), plus BN and biases"
    )

    def __init__(self, name: str, start: Method, start_fraction: float, description: str) -> None:
        self.name, self.start, self.start_fraction, self.description = name, start, start_fraction, description

    def _dense(self, net: Net) -> tuple[dict, int, int]:
        """(the dense network's setting, its backbone, the prunable weights in it)."""
        _family(self, net, "resnet")
        setting = self.start.setting(net, round(self.start_fraction * plain_backbone(net)))
        if isinstance(self.start, RPG):
            _, rest, _ = self.start._split(net)
            return setting, rest + setting["ring_size"], setting["ring_size"]
        with torch.device("meta"):
            model = self.start.build(net, setting, 0)
        return setting, backbone(model, net.arch.head), sum(m.weight.numel() for m, _ in imp.targets(model))

    def reach(self, net: Net) -> tuple[int, int]:
        _, total, prunable = self._dense(net)
        return total - prunable + 1, total

    def setting(self, net: Net, budget: int) -> dict:
        dense, total, prunable = self._dense(net)
        keep = prunable - (total - budget)
        return {"dense": dense, "keep": keep, "levels": imp.levels(prunable, keep), "rate": imp.RATE}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        return self.start.build(net, setting["dense"], seed)

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: dict, **kw
    ) -> dict:
        return imp.train(model, task, splits, recipe, seed, keep=setting["keep"], rate=setting["rate"], **kw)

    def trainings(self, net: Net, budget: int) -> int:
        return 1 + len(self.setting(net, budget)["levels"])

    def pruned(self, model: nn.Module, setting: dict) -> nn.Module:
        """A copy pruned to the budget in one shot, at its current weights: the count IMP's
        last level lands on (``rpg-bench ledger`` shows it; training prunes in levels)."""
        copy_ = copy.deepcopy(model)
        imp.prune_to(imp.targets(copy_), setting["keep"])
        return copy_


class Slim(Method):
    """Structured pruning to a FLOPs budget (baselines/structured.py; Table 7): a dense
    network trained, slimmed to 60% of its FLOPs (Table 7's 1.09e9 of ResNet-18's 1.82e9),
    fine-tuned. The budget is the size before pruning, as Table 7 reports it: Knapsack
    prunes the plain network at that size, rpg-l1-pruned the RPG network of that size.

    Counting rule: the slimmed network's trainable scalars outside the head (an RPG
    network keeps its whole ring), plus BN and biases."""

    budget_before_pruning = True

    def __init__(self, name: str, start: Method, pruner: str, description: str) -> None:
        self.name, self.start, self.pruner, self.description = name, start, pruner, description
        self.knob = f"{start.knob} before pruning"
        self.counting = f"before pruning, as {start.name}: {start.counting}; recorded after slimming too"

    def reach(self, net: Net) -> tuple[int, int]:
        _family(self, net, "resnet")
        return self.start.reach(net)

    def setting(self, net: Net, budget: int) -> dict:
        return {
            "dense": self.start.setting(net, budget),
            "flops_fraction": structured.FLOPS_FRACTION,
            "head": net.arch.head,
        }

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        return self.start.build(net, setting["dense"], seed)

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: dict, **kw
    ) -> dict:
        return structured.train(
            model,
            task,
            splits,
            recipe,
            seed,
            pruner=self.pruner,
            head=setting["head"],
            fraction=setting["flops_fraction"],
            **kw,
        )

    def trainings(self, net: Net, budget: int) -> int:
        return 2  # dense, then fine-tuned

    def rebuild(self, net: Net, setting: dict, seed: int, state: dict) -> nn.Module:
        model = self.build(net, setting, seed)
        (filters.restore if self.pruner == "l1-filters" else knapsack.restore)(model, state)
        model.load_state_dict(state)
        return model


class Noshare(Plain):
    """Stacked hourglass sub-networks, each with its own weights (Table 4's "no sharing":
    parameters grow with the number of sub-networks)."""

    name = "noshare"
    knob = "channels"
    description = "stacked hourglass sub-networks with weights of their own (no sharing): Table 4's ceiling"
    family = "hourglass"
    min_width = hourglass.MIN_CHANNELS


class Cpm(Method):
    """Convolutional-pose-machine-style sharing (Wei et al. 2016; baselines/hourglass.py,
    ``shared=True``): one sub-network, BatchNorm included, applied at every stage, so the
    network has one sub-network's parameters however many stages it runs. It has no knob:
    it runs at its natural size, and Table 4 matches RPG to it (``rpg@cpm``).

    Counting rule: every trainable scalar (the shared sub-network counted once)."""

    name = "cpm"
    knob = "none (one sub-network's weights, reused at every stage)"
    description = (
        "CPM-style sharing: one hourglass sub-network, BatchNorm included, applied at every stage (Wei et al. 2016)"
    )
    counting = "every trainable scalar; the shared sub-network counts once"

    def natural(self, net: Net) -> int:
        _family(self, net, "hourglass")
        with torch.device("meta"):
            return backbone(net.build(shared=True), net.arch.head)

    def reach(self, net: Net) -> tuple[int, int]:
        n = self.natural(net)
        return n, n

    def setting(self, net: Net, budget: int) -> dict:
        return {"channels": net.widths[0], "shared": True}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        return net.build((setting["channels"],), shared=True)


class Reuse(Method):
    """Table 5's stacked SharpNet sub-networks at one sub-network's parameters, with no knob:
    one sub-network applied once (``noreuse``), applied twice with everything shared
    (``reuse``), or applied twice with its convolutions shared and a BatchNorm per
    application (``reuse-bn``). RPG, matched to ``reuse-bn`` (``rpg@reuse-bn``), adds a
    permutation and reflection per application. Runs at its natural size.

    Counting rule: every trainable scalar; a shared tensor counts once."""

    knob = "none (one sub-network's convolutions)"
    counting = "every trainable scalar; a shared tensor counts once"

    def __init__(self, name: str, applications: int | None, share: str, description: str) -> None:
        self.name, self.applications, self.share, self.description = name, applications, share, description

    def natural(self, net: Net) -> int:
        _family(self, net, "sharpnet")
        with torch.device("meta"):
            return backbone(self.build(net, self.setting(net, 0), 0), net.arch.head)

    def reach(self, net: Net) -> tuple[int, int]:
        n = self.natural(net)
        return n, n

    def setting(self, net: Net, budget: int) -> dict:
        return {"channels": net.widths[0], "share": self.share, "applications": self.applications}

    def build(self, net: Net, setting: dict, seed: int) -> nn.Module:
        return net.build((setting["channels"],), repeats=setting["applications"], shared=setting["share"])


REUSE = [
    Reuse("noreuse", 1, "none", "one SharpNet sub-network, applied once (no reuse): Table 5's first row"),
    Reuse("reuse", None, "all", "the SharpNet sub-network applied twice, BatchNorm included (plain reuse)"),
    Reuse(
        "reuse-bn",
        None,
        "conv",
        "the SharpNet sub-network's convolutions applied twice, a new BatchNorm for the second application",
    ),
]


SLIM = [
    Slim(
        "knapsack",
        Plain(),
        "knapsack",
        "Knapsack pruning with inner distillation (Aflalo et al. 2020): the plain network trained, its channels "
        "(residual-coupled ones grouped) chosen by a knapsack on Taylor importance per MAC down to 60% of its "
        "FLOPs, removed, fine-tuned with the unpruned network as teacher (block-wise MSE)",
    ),
    Slim(
        "rpg-l1-pruned",
        RPG(),
        "l1-filters",
        "RPG trained, then l1-norm filter pruning (Li et al. 2017) of every residual block's first conv down to "
        "60% of its FLOPs, the ring kept, fine-tuned (Table 7)",
    ),
]

PRUNING = [
    Imp(
        "imp",
        Plain(),
        1.0,
        "IMP (Frankle et al. 2019): the plain network trained, 20% of its conv weights pruned globally by "
        "magnitude per level, rewound to an early iteration and retrained, down to the budget",
    ),
    Imp(
        "rpg-imp",
        RPG(),
        0.5,
        "RPG with a ring of half the plain backbone, its ring pruned by the same IMP down to the budget (Table 6)",
    ),
]


def _family(method: Method, net: Net, *families: str) -> None:
    if net.arch.family not in families:
        raise UsageError(f"{method.name} does not run on {net.arch.name} (it needs a {' or '.join(families)} network)")


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        *VARIANTS,
        RANDOM,
        HASH,
        Lego(),
        Plain(),
        Mdeq(),
        *UNROLLED,
        *PRUNING,
        *SLIM,
        INT8,
        Noshare(),
        Cpm(),
        *REUSE,
    ]
}


def get(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def check_budget(method: Method, net: Net, budget: int) -> None:
    lo, hi = method.reach(net)
    if not lo <= budget <= hi:
        raise BudgetError(
            f"{method.name} cannot reach {format_count(budget)} ({budget}) backbone parameters on "
            f"{net.arch.name} at width {net.width:g}: it reaches {format_count(lo)} ({lo}) "
            f"to {format_count(hi)} ({hi})"
        )


def build(method: Method, net: Net, budget: int, seed: int) -> Built:
    """The method's model at the budget, with its ledger. Seeds torch first."""
    check_budget(method, net, budget)
    setting = method.setting(net, budget)
    torch.manual_seed(seed)
    model = method.build(net, setting, seed)
    return Built(model, setting, ledger(method.pruned(model, setting), net.arch.head), budget)
