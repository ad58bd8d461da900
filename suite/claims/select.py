"""Claims as the unit a reviewer runs: which of a suite's cells settle a set of claims.

The cells are found by the judge itself, not by a second reading of the claims: the
planned cells are laid out as the rows a finished run would have, each claim is judged on
them by a view that records every row the judge selects, and the cells behind those rows
are the ones to run. A judge that then fails on rows without numbers has already said
which rows it reads."""

from __future__ import annotations

import contextlib
import fnmatch

import pandas as pd

from suite.cells import Cell
from suite.claims import JUDGES, names
from suite.claims.rows import EVERY, View
from suite.claims.schema import Claim
from suite.errors import UsageError
from suite.suites import spec

# The columns a planned cell's row has: what the views and judges select on.
_COLUMNS = ("key", "experiment", "task", "arch", "width", "method", "budget", "backbone", "seed", "profile")


def match(patterns: list[str], claims: list[Claim]) -> list[Claim]:
    """The claims whose ids match any of ``patterns`` (fnmatch globs, without regard to
    case), in the file's order. A pattern that matches nothing is one line naming what it
    most likely meant (suite.claims.names)."""
    ids = [c.id for c in claims]
    if not patterns:
        raise UsageError("--claims: give at least one claim id or glob (rpg-bench claims lists them)")
    wanted = set()
    for pattern in patterns:
        hits = [i for i in ids if fnmatch.fnmatchcase(i.lower(), pattern.lower())]
        if not hits:
            hint = names.hint(pattern, claims)
            raise UsageError(f"--claims {pattern}: no claim id matches{hint} (rpg-bench claims lists them)")
        wanted.update(hits)
    return [c for c in claims if c.id in wanted]


def parse(text: str) -> list[str]:
    """The patterns of a --claims value, in lower case as claim ids are (the run records
    them, and its report shows the claims they match first)."""
    return [p.strip().lower() for p in text.split(",") if p.strip()]


class _Recorder(View):
    """A view that remembers each selection: (arch, method, budget asked, rows given)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str, str | None, pd.DataFrame]] = []

    def select(self, arch: str, method: str, budget: str | None) -> pd.DataFrame:
        if budget is not None and budget.startswith("="):
            # Rows at the parameters another method has after pruning: only a finished run
            # knows that count, so every row of both methods is needed.
            rows = self.rows[(self.rows["arch"] == arch) & self.rows["method"].isin([method, budget[1:]])]
        else:
            rows = super().select(arch, method, budget)
        self.calls.append((arch, method, budget, rows))
        return rows


def _used(claim: Claim, view: _Recorder) -> set[str]:
    """The keys of the rows the claim's judgement reads, from the selections it made."""
    calls = view.calls
    if claim.kind == "powerlaw":  # fitted below a fraction of each network's plain size
        keys = set()
        for arch, _, _, rows in calls:
            plain = view.plain(arch)
            keys |= set(rows[rows["budget"] < claim.below_fraction * plain]["key"] if plain else rows["key"])
        return keys
    if claim.kind in ("ordering", "relation") and calls and all(b in (None, EVERY) for _, _, b, _ in calls):
        # Compared at every budget the entries share: the others compare nothing.
        shared = set.intersection(*(set(rows["budget"]) for *_, rows in calls))
        return {k for *_, rows in calls for k in rows[rows["budget"].isin(shared)]["key"]}
    return {k for *_, rows in calls for k in rows["key"]}


def _planned(cells: list[Cell]) -> pd.DataFrame:
    rows = [
        {
            "key": c.key(), "experiment": c.experiment, "task": c.task, "arch": c.arch, "width": c.width,
            "method": c.method, "budget": c.budget, "backbone": c.budget, "seed": c.seed, "profile": c.profile,
        }
        for c in cells
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def needed(claims: list[Claim], cells: list[Cell], suite: spec.Suite) -> dict[str, set[str]]:
    """Per claim id, the keys of ``cells`` its verdict in this suite is judged on (empty:
    the suite cannot judge it, or not at these cells)."""
    frame = _planned(cells)
    run = {"suite": suite.name, "experiments": {e.name: {"arch": e.arch} for e in suite.experiments}}
    by_id = {c.id: c for c in claims}
    out = {}
    for claim in claims:
        keys: set[str] = set()
        for where in claim.experiments:
            suite_name, _, experiment = where.partition("/")
            rows = frame[frame["experiment"] == experiment]
            if suite_name != suite.name or not len(rows) or claim.kind not in JUDGES:
                continue
            view = _Recorder(experiment, rows, run, suite)
            # On rows without numbers a judge may fail after selecting: its selections are what count.
            with contextlib.suppress(Exception):
                JUDGES[claim.kind](claim.judged_as(view.task), view, by_id)
            keys |= _used(claim, view)
        out[claim.id] = keys
    return out


def cells_for(patterns: list[str], claims: list[Claim], cells: list[Cell], suite: spec.Suite) -> list[Cell]:
    """The cells that settle the claims ``patterns`` match, in run order; none is one line."""
    chosen = match(patterns, claims)
    keys = set().union(*needed(chosen, cells, suite).values())
    if not keys:
        ids = ", ".join(c.id for c in chosen[:5]) + (", ..." if len(chosen) > 5 else "")
        raise UsageError(
            f"--claims {','.join(patterns)}: suite {suite.name} has no cell that settles {ids} at this profile "
            "(rpg-bench claims --suite SUITE says which suite judges which claim)"
        )
    return [c for c in cells if c.key() in keys]
