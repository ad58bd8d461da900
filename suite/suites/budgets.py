"""How an experiment's budgets become backbone counts on its networks, at a profile.

One rule for the runner (which cells to build) and the claims (which cells a claim at
"11M" or "50%" is judged at), so the two can never disagree:

- a count (``"45K"``) is that many backbone parameters;
- a fraction (``"50%"``) is that share of the network's plain backbone;
- a method's name (``"cpm"``) is that method's natural size on the network.

Profiles that shrink paper-sized networks (``width_scale``) shrink counts with the
experiment's own network, one factor for all its architectures, so rows the paper matches
stay matched. BN does not shrink as fast as the convs: a count below what some method of
the experiment reaches on the shrunken networks is raised to just above it.
"""

from __future__ import annotations

import math
from functools import cached_property

from suite import archs, methods, tasks
from suite.suites.spec import Budget, Experiment, parse_budget


class Budgets:
    """The counts of one experiment's budgets at one (task) profile."""

    def __init__(self, experiment: Experiment, task_profile: str, overrides: tuple = ()) -> None:
        self.experiment = experiment
        self.task = tasks.get(experiment.task)
        # A recipe override may set the width scale too (the suite's or --set's).
        self.scale = dict(overrides).get("width_scale", self.task.profiles[task_profile].width_scale)

    def net(self, arch: str) -> archs.Net:
        """The network ``arch`` as this experiment builds it at this profile."""
        t = self.task
        return archs.Net(archs.get(arch), self.experiment.width * self.scale, t.in_channels, t.num_classes)

    def runs(self) -> list[tuple[str, str, Budget]]:
        """(architecture, method, budget) of every run the experiment asks for."""
        e = self.experiment
        entries = e.runs()
        out = [(a, m, budget) for budget in e.budgets for a, m, own in entries if own is None]
        out += [(a, m, own) for a, m, own in entries if own is not None]
        if e.ceiling:
            out += [(arch, "plain", 1.0) for arch in dict.fromkeys(a for a, _, _ in entries)]
        return out

    @cached_property
    def _ratio_and_floor(self) -> tuple[float, int]:
        e = self.experiment
        reference = archs.Net(archs.get(e.arch), e.width, self.task.in_channels, self.task.num_classes)
        ratio = methods.plain_backbone(self.net(e.arch)) / methods.plain_backbone(reference)
        floor = math.ceil(1.1 * max(methods.get(m).reach(self.net(a))[0] for a, m, _ in self.runs()))
        return ratio, floor

    def count(self, arch: str, budget: Budget | str) -> int:
        """The backbone count ``budget`` (as a suite writes it, or parsed) means for ``arch``."""
        if isinstance(budget, str):
            budget = parse_budget(budget)
        if isinstance(budget, int) and self.scale != 1:
            ratio, floor = self._ratio_and_floor
            return max(round(budget * ratio), floor)
        return at(self.net(arch), budget)


def at(net: archs.Net, budget: Budget | str) -> int:
    """The backbone count ``budget`` means on ``net`` itself (nothing rescaled)."""
    if isinstance(budget, str):
        budget = parse_budget(budget)
    if isinstance(budget, str):  # a method's natural size on this network
        return methods.get(budget).natural(net)
    if isinstance(budget, float):
        return round(budget * methods.plain_backbone(net))
    return budget
