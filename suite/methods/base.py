"""What a method is, and what training one gives the runner.

Every method answers the same questions, so one solver, one ledger and one cost model
serve all: ``reach(net)`` (the smallest and largest backbone its knob gives),
``setting(net, budget)`` (the knob that meets the budget, found without allocating
weights), ``build(net, setting, seed)``, ``train(...)`` (a ``Trained``), ``natural(net)``
(its size with nothing squeezed, for methods with no knob), and ``counted(net, budget)``
(the network whose forward a training step runs, which plan and --shard count FLOPs on).
"""

from __future__ import annotations

import abc
import functools
from dataclasses import dataclass

import pydantic
import torch
from torch import nn
from torch.nn.utils import prune

from suite.archs import Net
from suite.counting import solver
from suite.errors import UsageError
from suite.tasks import Recipe, Splits, Task
from suite.training import train
from suite.training.train import Trained


def backbone(model: nn.Module, head: str) -> int:
    """Trainable scalars outside the head, by the ledger's rule (meta models included).
    An architecture without a head (``""``) counts every one."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not head:
        return total
    return total - sum(p.numel() for p in model.get_submodule(head).parameters() if p.requires_grad)


@functools.lru_cache(maxsize=4096)
def plain_backbone_at(net: Net, widths: tuple[int, ...]) -> int:
    """The backbone of ``net`` built at ``widths`` (counted on the meta device)."""
    with torch.device("meta"):
        return backbone(net.build(widths), net.arch.head)


def plain_backbone(net: Net) -> int:
    """The backbone of the reference network itself (its natural size: '100%')."""
    return plain_backbone_at(net, net.widths)


def require_family(method: Method, net: Net, *families: str) -> None:
    if net.arch.family not in families:
        raise UsageError(f"{method.name} does not run on {net.arch.name} (it needs a {' or '.join(families)} network)")


class Knobs(pydantic.BaseModel):
    """A method's settings that ``--set <method>.<knob>=value`` changes, each a typed field
    with its default, checked as strictly as the recipe (suite.tasks.base.Recipe). This
    one has none: the knobs of a method that has some subclass it (RPG's ring_std)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass
class Built:
    model: nn.Module
    setting: dict
    ledger: dict
    budget: int

    @property
    def deviation(self) -> float:
        return solver.deviation(self.ledger["backbone"], self.budget)


class Method(abc.ABC):
    """A way to build a network of a given backbone size: the protocol every method keeps
    (tests/test_method_conformance.py holds every registered method to it).

    Attributes: ``name`` (the registry's), ``description`` (one line, shown by ``rpg-bench
    list`` and the report), ``knob`` (what it turns to meet a budget) and ``counting`` (its
    counting rule in words).

    What counts: the budget is the model's *backbone*, as suite.counting.ledger counts it -- every
    trainable scalar outside the task head, each counted once however many layers read it
    (a shared ring, bank or template), a pruned tensor by its unmasked entries, and a
    training-time proxy for a discrete choice (``ledger_proxy``) not at all. ``counting``
    says what that rule amounts to for the method (its rings, banks, factors, kept
    channels); the ledger's count must equal the scalars the built model stores and trains.

    - ``reach(net)``: the smallest and largest backbone its knob gives on ``net`` (a method
      that does not run on the network raises UsageError). Cheap: called for every method
      of an experiment to floor its budgets.
    - ``setting(net, budget)``: for a budget in reach, the knob that meets it within
      suite.counting.solver.TOLERANCE (0.5%), found without allocating weights (on the meta
      device or by counting). It is a JSON-able dict of the method's own keys, typed by a
      TypedDict declared beside the method (RPG's ``RingSetting``, ``{"ring_size": ...}``;
      a pruning method's ``ImpSetting``, ``{"dense": <its start's setting>, "keep": ...}``):
      the record keeps it as the cell's "setting" and the memory probe gets it as JSON, and
      it is all ``build`` and ``rebuild`` need besides the seed, so a record is rebuilt from
      its JSON alone. The ledger counts the built model, never the setting.
    - ``knobs``: the method's ``Knobs`` (a pydantic model; none by default), which
      ``--set <method>.<knob>=value`` sets; ``tuned(setting, knobs)`` writes them into the
      setting (by default every knob, at its default where not set, beside the setting's keys).
    - ``build(net, setting, seed)``: the model to train (torch is seeded before; the same
      seed builds the same model). Its ledger, of ``pruned(model, setting)``, is the count.
    - ``train(...)``: a ``Trained`` (the default: ``suite.training.train.fit`` once). Methods whose
      budget is met by training (pruning to it, learning groups first) do it here.
    - ``natural(net)``: the backbone with nothing squeezed, for methods with no knob (whose
      reach is that one size); ``counted(net, budget)``: the network whose forward a
      training step runs (FLOPs for ``plan``); ``trainings``: how many times a cell trains
      the recipe through; ``rebuild``: the trained model again from its state dict.

    The deployed form is ``rpg.materialize(model)``: a method that generates its weights
    (RPG, sharing, a hypernetwork) does so as a torch parametrization, so that deployment
    is the plain network with the generated weights; a method whose structure is the point
    (low-rank factors, a pruned network) deploys as itself."""

    name: str  # no class-level default: a dataclass method's name comes first and is required
    knob = ""
    description = ""
    counting = "every trainable scalar outside the task head (BN and biases included)"
    # True when the budget is the model's size before training prunes it (Table 7 states
    # its methods so); otherwise the trained model itself meets the budget.
    budget_before_pruning = False
    # What --set <name>.<knob>=value may set (a class, not a dataclass field).
    knobs = Knobs

    @abc.abstractmethod
    def reach(self, net: Net) -> tuple[int, int]: ...

    @abc.abstractmethod
    def setting(self, net: Net, budget: int) -> dict: ...

    @abc.abstractmethod
    def build(self, net: Net, setting: dict, seed: int) -> nn.Module: ...

    def train(
        self, model: nn.Module, task: Task, splits: Splits, recipe: Recipe, seed: int, setting: dict, **kw
    ) -> Trained:
        """Train the built model (fit's keywords: progress, desc, checkpoint)."""
        return Trained.of(model, train.fit(model, task, splits, recipe, seed, **kw))

    def tuned(self, setting: dict, knobs: Knobs) -> dict:
        """The setting with the method's knobs (``knobs``, an instance of ``self.knobs``)."""
        return {**setting, **knobs.model_dump()}

    def pruned(self, model: nn.Module, setting: dict) -> nn.Module:
        """The model as it will be counted after training (pruning methods shrink it there)."""
        return model

    def trainings(self, net: Net, budget: int) -> int:
        """How many times a cell trains the recipe through (for cost estimates)."""
        return 1

    def counted(self, net: Net, budget: int) -> nn.Module:
        """The network whose forward a training step runs, for counting its FLOPs: the
        reference network, for methods that generate or share its weights."""
        return net.build()

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
