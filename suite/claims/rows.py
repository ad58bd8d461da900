"""Which rows of a run a claim is judged on: its entries, at the budgets it names.

An entry is ``"method"``, ``"arch/method"`` or either with ``"@budget"`` (a count, a
fraction of the plain backbone, or a method's natural size: the forms a suite's budgets
take). In an experiment that runs one network, that network stands in for whatever network
an entry names (the fashion suite's ResNet-10 for the paper's ResNet-34); with several, an
entry without an architecture means the claim's or the experiment's own.

A budget is resolved to a count by the rule the runner built the cells with
(suite.suites.budgets), so "11M" finds the cells the suite made for "11M" at any profile, and a
row matches when its budget is within the solver's tolerance of that count: a claim is
judged where the paper made it, never at the experiment's other budgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from suite import archs, methods, tasks
from suite.counting import solver
from suite.counting.ledger import format_count
from suite.errors import BudgetError, UsageError
from suite.suites import spec
from suite.suites.budgets import Budgets

if TYPE_CHECKING:
    from suite.claims.schema import Claim

EVERY = "*"  # a budget that means: at every budget the entries share
# "=knapsack": the backbone the knapsack rows have after pruning, known only once they ran,
# so the suite runs its best estimate and rows within this share of it match.
DERIVED_TOLERANCE = 0.05


@dataclass(frozen=True)
class Entry:
    arch: str  # "" when the entry names no network
    method: str
    budget: str | None  # what follows "@"

    @classmethod
    def parse(cls, text: str) -> Entry:
        name, _, budget = text.partition("@")
        arch, _, method = name.rpartition("/")
        return cls(arch, method, budget or None)

    def __str__(self) -> str:
        return f"{self.arch + '/' if self.arch else ''}{self.method}{'@' + self.budget if self.budget else ''}"


def claim_arch(fields: Claim) -> str:
    """The network a claim names: Table 4's ``subnetworks`` pick the hourglass-<n>x network."""
    if fields.subnetworks is not None:
        return f"hourglass-{fields.subnetworks}x"
    return fields.arch


def where(fields: Claim) -> str | None:
    """The budget a claim is judged at, as the suite would write it (None: not stated)."""
    return fields.at or fields.budget


class View:
    """One experiment's finished rows, and the rule that resolves budgets on its networks."""

    def __init__(self, name: str, rows: pd.DataFrame, run: dict, suite: spec.Suite | None) -> None:
        self.name = name
        self.rows = rows
        self.archs = sorted(set(rows["arch"]))
        self.task = str(rows["task"].iloc[0])
        self.profile = str(rows["profile"].iloc[0])
        # Data the code generated (a smoke profile) tests the code; it never judges the paper.
        self.generated = self.profile in tasks.get(self.task).generated_profiles
        self.source = str(rows["data_source"].iloc[0]) if "data_source" in rows else ""
        info = run.get("experiments", {}).get(name, {})
        self.default_arch = info.get("arch") or str(rows["arch"].mode().iloc[0])
        experiment = next((e for e in suite.experiments if e.name == name), None) if suite else None
        # Without the suite that made the run (a custom suite file since moved), budgets are
        # resolved at the rows' own widths, unscaled: right for every profile but smoke.
        self.budgets = Budgets(experiment, self.profile) if experiment else None

    def arch(self, named: str) -> str:
        """The network of this experiment that stands for ``named``."""
        return self.archs[0] if len(self.archs) == 1 else named or self.default_arch

    def shown(self, entry: Entry) -> str:
        """An entry as this experiment ran it. With one network, that network stood in for
        any the entry names (and `judged_on` says which), so the entry is named by its
        method alone: never a network that did not run."""
        if len(self.archs) == 1 and entry.arch:
            return str(Entry("", entry.method, entry.budget))
        return str(entry)

    def width(self, arch: str) -> float:
        return float(self.rows[self.rows["arch"] == arch]["width"].iloc[0])

    def count(self, arch: str, budget: str) -> int | None:
        """The backbone count ``budget`` means for ``arch`` in this experiment (None if it
        means nothing there: a method with no natural size, an unknown network)."""
        try:
            if self.budgets is not None:
                return self.budgets.count(arch, budget)
            parsed = spec.parse_budget(budget)
            if isinstance(parsed, int):
                return parsed
            task = tasks.get(self.task)
            net = archs.Net(archs.get(arch), self.width(arch), task.in_channels, task.num_classes)
            if isinstance(parsed, float):
                return round(parsed * methods.plain_backbone(net))
            return methods.get(parsed).natural(net)
        except (UsageError, BudgetError, IndexError):
            return None

    def plain(self, arch: str) -> int | None:
        return self.count(arch, "100%")

    def select(self, arch: str, method: str, budget: str | None) -> pd.DataFrame:
        """The rows of (arch, method) at ``budget`` (all of them for None or EVERY)."""
        rows = self.rows[(self.rows["arch"] == arch) & (self.rows["method"] == method)]
        if budget in (None, EVERY):
            return rows
        if budget.startswith("="):
            other = self.rows[(self.rows["arch"] == arch) & (self.rows["method"] == budget[1:])]
            if not len(other):
                return rows.iloc[0:0]
            count = float(other["backbone"].mean())
            return rows[(rows["budget"] - count).abs() <= DERIVED_TOLERANCE * count]
        count = self.count(arch, budget)
        if count is None:
            return rows.iloc[0:0]
        return rows[(rows["budget"] - count).abs() <= solver.TOLERANCE * count]

    def describe(self, arch: str, method: str, budget: str | None) -> str:
        """How a row set is named in evidence: 'resnet18/plain at 100% (11.2M)'."""
        if budget in (None, EVERY):
            return f"{arch}/{method}"
        if budget.startswith("="):
            other = self.rows[(self.rows["arch"] == arch) & (self.rows["method"] == budget[1:])]
            known = f"{format_count(other['backbone'].mean())} ±5%" if len(other) else "unknown: no rows"
            return f"{arch}/{method} at the parameters {budget[1:]} has after pruning ({known})"
        count = self.count(arch, budget)
        return f"{arch}/{method} at {budget}" + (f" ({format_count(count)})" if count else "")
