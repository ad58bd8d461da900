"""The leaderboard as data: OUT/leaderboard.csv and OUT/leaderboard.json, one row per
(experiment, method, budget) with what the HTML's leaderboards show (mean, sd, 95% CI, n,
backbone, the paper's value) and the verdicts that row feeds. Their form is
suite/schemas/leaderboard.json; results.csv keeps the per-seed rows."""

from __future__ import annotations

import math

import pandas as pd

from suite.claims.rows import Entry
from suite.claims.schema import Claim
from suite.claims.verdicts import NOT_RUN, Verdict

COLUMNS = (
    "experiment", "budget", "entry", "arch", "method", "metric", "higher_is_better", "n", "mean", "sd",
    "ci_low", "ci_high", "rank", "tied", "backbone", "paper_value", "paper_claims", "deployed_batch1_ms",
    "training_batch1_ms", "seeds", "verdicts",
)  # fmt: skip


def _named(claim: Claim) -> set[str]:
    """The methods a claim's entries name (`resnet34-cifar/rpg@0.5` names `rpg`)."""
    names = [claim.method, claim.left, claim.right]
    names += [*(claim.order or []), *(claim.better or []), *(claim.worse or []), *claim.methods]
    return {Entry.parse(n).method for n in names if n}


def _feeds(verdict: Verdict, experiment: str, budget: int, method: str) -> bool:
    """A row feeds a verdict that compared at its experiment and budget and names its method."""
    if verdict.verdict == NOT_RUN or method not in _named(verdict.claim):
        return False
    return any(
        d.get("experiment") == experiment and d.get("budget") in (None, budget)
        for d in verdict.details
        if isinstance(d, dict)
    )


def _number(x):
    """JSON has no NaN or infinity: a missing figure, or one seed's unbounded interval, is null."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def rows(boards: list[dict], verdicts: list[Verdict]) -> list[dict]:
    """The leaderboards' rows (suite.report.tables.leaderboards) flattened, each with the ids
    and verdicts of the claims it feeds."""
    out = []
    for board in boards:
        for r in board["rows"]:
            method = r["method_name"]
            fed = [v for v in verdicts if _feeds(v, board["experiment"], board["budget"], method)]
            out.append(
                {
                    "experiment": board["experiment"],
                    "budget": board["budget"],
                    "entry": r["method"],
                    "arch": r["arch"],
                    "method": method,
                    "metric": board["metric"],
                    "higher_is_better": board["higher_is_better"],
                    "n": r["n"],
                    "mean": _number(float(r["mean"])),
                    "sd": _number(r["sd"]),
                    "ci_low": _number(float(r["ci"][0])),
                    "ci_high": _number(float(r["ci"][1])),
                    "rank": r["rank"],
                    "tied": bool(r["tied"]),
                    "backbone": r["backbone"],
                    "paper_value": r["paper"][0]["value"] if r["paper"] else None,
                    "paper_claims": [p["id"] for p in r["paper"]],
                    "deployed_batch1_ms": _number(float(r["deployed_ms"])),
                    "training_batch1_ms": _number(float(r["training_ms"])),
                    "seeds": r["seeds"],
                    "verdicts": [{"id": v.claim.id, "verdict": v.verdict} for v in fed],
                }
            )
    return out


def csv(table: list[dict]) -> str:
    """The rows as CSV: lists joined with spaces, verdicts as `id=verdict`."""
    flat = [
        {
            **row,
            "paper_claims": " ".join(row["paper_claims"]),
            "seeds": " ".join(str(s) for s in row["seeds"]),
            "verdicts": " ".join(f"{v['id']}={v['verdict'].replace(' ', '-')}" for v in row["verdicts"]),
        }
        for row in table
    ]
    return pd.DataFrame(flat, columns=list(COLUMNS)).to_csv(index=False)
