"""Compare a run against a previous one of the same profile: rows that changed beyond
noise, and claims lost.

A nightly compares dozens of rows (experiment x method x budget). Testing each at 5% would
raise a false alarm on most unchanged nights (1 - 0.975^58 = 77% for the cifar suite), so:

- each row gets a one-sided p-value that it got worse, from a moderated t that steadies a
  three-seed row's spread with the other rows' (suite.stats.moderated_worse_p);
- the Benjamini-Hochberg procedure holds the false discovery rate across all rows at 5%;
- a change smaller than its metric's minimum effect (``MIN_EFFECT``: half a point of
  accuracy, PCKh or RMSE percent; 5% of the previous value for anything else, a latency
  say) is never a regression, however significant: seed noise that happens to be tight is
  not a regression a maintainer should be woken for.

A night fails on such a regression, or on a claim that went from reproduced to not
reproduced. A claim that went from reproduced to inconclusive is a noisier night, not a
loss; it is listed, not failed. Rows present in one run only are listed, not judged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from suite import claims, records, stats, tasks
from suite.errors import UsageError
from suite.report.frame import frame, ok_rows

MIN_EFFECT = {"top1": 0.5, "pckh": 0.5, "depth_rmse": 0.5, "normal_rmse": 0.5}  # in the metric's own unit
MIN_RELATIVE = 0.05  # for a metric not listed: this share of the previous mean
FALSE_DISCOVERY_RATE = 0.05


def min_effect(metric: str, before_mean: float) -> float:
    return MIN_EFFECT.get(metric, MIN_RELATIVE * abs(before_mean))


def previous(prev: Path, profile: str | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The previous run's ok rows and its claim verdicts by id; a run of another profile
    is refused (a smoke night against a full one compares nothing alike)."""
    if not (prev / records.RECORDS).is_dir():
        raise UsageError(f"--compare {prev}: it holds no rpg-bench records (expected {prev / records.RECORDS}/)")
    run, recs = records.read_run(prev)
    if profile and run.get("profile") and run["profile"] != profile:
        raise UsageError(
            f"--compare {prev}: it ran profile {run['profile']}, this run {profile}; compare runs of one profile"
        )
    ok = ok_rows(frame(recs))
    verdicts = {}
    claims_path = prev / "claims.json"
    if claims_path.exists():
        verdicts = {c["id"]: c["verdict"] for c in json.loads(claims_path.read_text(encoding="utf-8"))["claims"]}
    return ok, verdicts


KEYS = ["experiment", "entry", "budget"]


def changes(now: pd.DataFrame, before: pd.DataFrame) -> list[dict]:
    """Per (experiment, method, budget): the change of the mean metric, signed so that
    positive is better, its Welch 95% interval, and whether it is a regression (controlled
    across rows, and material) or an improvement beyond noise. Rows in one run only are
    listed with ``status`` "new" or "gone"."""
    out = []
    then = {k: g for k, g in before.groupby(KEYS)} if len(before) else {}
    for key, g in now.groupby(KEYS) if len(now) else []:
        experiment, method, budget = key
        row = {"experiment": experiment, "method": method, "budget": int(budget), "now": float(g["value"].mean())}
        b = then.pop(key, None)
        if b is None:
            out.append(row | {"status": "new", "regression": False, "improvement": False})
            continue
        higher = tasks.get(g["task"].iloc[0]).higher_is_better
        ci = stats.welch(g["value"], b["value"])
        ci = ci if higher else ci.flipped()
        metric = g["metric"].iloc[0]
        row |= {"before": float(b["value"].mean()), "diff": ci.estimate, "ci": ci.as_tuple(), "status": "both"}
        row |= {"metric": metric, "higher": higher, "values": (g["value"].tolist(), b["value"].tolist())}
        out.append(row | {"min_effect": min_effect(metric, row["before"])})
    for (experiment, method, budget), b in then.items():
        row = {"experiment": experiment, "method": method, "budget": int(budget), "before": float(b["value"].mean())}
        out.append(row | {"status": "gone", "regression": False, "improvement": False})
    compared = [r for r in out if r["status"] == "both"]
    for metric in {r["metric"] for r in compared}:  # one spread to borrow from per metric
        rows = [r for r in compared if r["metric"] == metric]
        p = stats.moderated_worse_p([r["values"][0] for r in rows], [r["values"][1] for r in rows], rows[0]["higher"])
        for r, pvalue in zip(rows, p, strict=True):
            r["p"] = float(pvalue)
    found = stats.discoveries([r["p"] for r in compared], FALSE_DISCOVERY_RATE)
    for r, discovered in zip(compared, found, strict=True):
        r["regression"] = discovered and -r["diff"] >= r["min_effect"]
        r["improvement"] = r["ci"][0] > 0 and r["diff"] >= r["min_effect"]
        del r["values"], r["higher"]
    return out


def lost_claims(verdicts: list[claims.Verdict], before: dict[str, str]) -> list[str]:
    """Ids of claims the previous run reproduced and this one finds not reproduced."""
    return [
        v.claim["id"]
        for v in verdicts
        if before.get(v.claim["id"]) == claims.REPRODUCED and v.verdict == claims.NOT_REPRODUCED
    ]


def weakened_claims(verdicts: list[claims.Verdict], before: dict[str, str]) -> list[str]:
    """Ids of claims the previous run reproduced and this one leaves inconclusive (listed, not failed)."""
    return [
        v.claim["id"]
        for v in verdicts
        if before.get(v.claim["id"]) == claims.REPRODUCED and v.verdict == claims.INCONCLUSIVE
    ]
