"""The paper's claims as data (suite/claims/rpg.toml), and verdicts on a run's results.

Each claim is judged where the paper made it: at its budget and on its networks
(suite.claims.rows), pair by pair for "RPG beats each baseline", with 95% intervals over
seeds from suite.stats (Welch's for independent seeds, paired where the rows are the same
seed's networks). Every verdict says what it was judged on, paper scale or which stand-in
(suite.claims.setting), and an inconclusive one says how many seeds would settle it.

- value claims (the paper's numbers) are judged at paper scale only; elsewhere they are
  "not judged", never "not reproduced";
- orderings: each claimed pair must differ in the claimed direction with its interval clear
  of zero;
- relations: the interval of the difference (or ratio) must lie inside the claimed bound;
- power laws: the interval of the exponents' difference must lie inside the bound;
- chance: a network with the wrong seeds must be no better than chance;
- storage: a checkpoint holds the ring, BN and dense layers, nothing generated.

Nothing is judged on data the code generated (the smoke profiles): such a run tests the
code, and its claims are "not judged" with the reason "generated data".

In a stand-in suite (other data than the claim's), a claim's ``stand_in`` keys say where
the smaller network realises the paper's comparison (the budget nearest the paper's
fraction of its network, or every budget for a claim the paper makes at every size).
"""

from __future__ import annotations

import pandas as pd

from suite.claims import comparisons, measures
from suite.claims.rows import View, claim_arch, where
from suite.claims.schema import Claim, load, parse
from suite.claims.verdicts import (
    INCONCLUSIVE,
    JUDGED,
    NOT_JUDGED,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    VERDICTS,
    Outcome,
    Verdict,
    by_scale,
    combine,
    most_seeds,
    summary,
)
from suite.counting.ledger import parse_count
from suite.errors import UsageError
from suite.suites import spec

GENERATED_DATA = "generated data"

JUDGES = {
    "value": measures.value,
    "ordering": comparisons.ordering,
    "relation": comparisons.relation,
    "powerlaw": measures.powerlaw,
    "chance": measures.chance,
    "storage": measures.storage,
}

__all__ = [
    "INCONCLUSIVE",
    "NOT_JUDGED",
    "NOT_REPRODUCED",
    "NOT_RUN",
    "REPRODUCED",
    "VERDICTS",
    "Claim",
    "Outcome",
    "Verdict",
    "by_scale",
    "judge",
    "load",
    "parse",
    "paper_points",
    "summary",
    "views",
]


def run_suite(run: dict) -> spec.Suite | None:
    """The suite that made the run (its budgets resolve a claim's), if it can still be read."""
    name = run.get("suite_file") or run.get("suite")
    if not name:
        return None
    try:
        return spec.load(name)
    except UsageError:
        return None


def views(ok: pd.DataFrame, run: dict) -> dict[str, View]:
    """Every experiment of the run with finished rows, by name."""
    present = sorted(set(ok["experiment"])) if len(ok) else []
    suite = run_suite(run)
    return {e: View(e, ok[ok["experiment"] == e], run, suite) for e in present}


def paper_points(claims: list[Claim], view: View, suite: str, metric: str) -> list[dict]:
    """The paper's own values of ``metric`` for this experiment's rows: each at the row it
    describes (``row_budget``) and at the paper's own parameter count (``budget``, None
    where the paper states none)."""
    out = []
    for c in claims:
        if c.kind != "value" or f"{suite}/{view.name}" not in c.experiments:
            continue
        if c.metric != metric or c.stage.startswith("before-"):
            continue
        arch = view.arch(claim_arch(c))
        rows = view.select(arch, c.method, where(c))
        if not len(rows) or rows["budget"].nunique() != 1:
            continue
        try:
            budget = parse_count(c.budget) if c.budget is not None else None
        except UsageError:
            budget = None
        out.append(
            {"arch": arch, "method": c.method, "row_budget": int(rows["budget"].iloc[0]), "budget": budget}
            | {"value": c.value, "id": c.id}
        )
    return out


def on_generated_data(view: View) -> dict:
    """The one detail of an experiment that trained on data the code generated: such data
    tests the code, never the paper, so no claim is judged on it (not even one about RPG
    itself: a network at chance on noise says nothing about the seeds)."""
    source = view.source or "data the code generated"
    text = f"not judged: {GENERATED_DATA} (profile {view.profile} read {source}), which tests the code, not the paper"
    return {"experiment": view.name, "budget": None, "verdict": NOT_JUDGED, "text": text, "generated": True}


def judge(claims: list[Claim], ok: pd.DataFrame, run: dict) -> list[Verdict]:
    """A verdict for every claim, from the ok rows of this run."""
    present = set(ok["experiment"]) if len(ok) else set()
    views_ = views(ok, run)
    by_id = {c.id: c for c in claims}
    name = run.get("suite", "")
    out = []
    for claim in claims:
        if claim.kind == "qualitative":
            out.append(Verdict(claim, NOT_RUN, reason="a qualitative claim: no number to check"))
            continue
        measured_by = [e.split("/", 1)[1] for e in claim.experiments if e.split("/", 1)[0] == name]
        measured_by = [e for e in measured_by if e in present]
        if not measured_by:
            out.append(Verdict(claim, NOT_RUN, reason="no experiment of this run measures it"))
            continue
        details = []
        for experiment in measured_by:
            view = views_[experiment]
            if view.generated:
                details.append(on_generated_data(view))
                continue
            details += JUDGES[claim.kind](claim.judged_as(view.task), view, by_id)
        verdict = combine([d["verdict"] for d in details])
        judged = [d for d in details if d["verdict"] in JUDGED]
        scales = {d["scale"] for d in judged}
        out.append(
            Verdict(
                claim,
                verdict,
                details,
                reason="; ".join(d["text"] for d in details) if verdict in (NOT_RUN, NOT_JUDGED) else "",
                scale=(scales.pop() if len(scales) == 1 else "stand-in") if judged else None,
                judged_on=list(dict.fromkeys(d["judged_on"] for d in judged)),
                seeds_needed=most_seeds([d["seeds_needed"] for d in judged]) if verdict == INCONCLUSIVE else None,
            )
        )
    return out
