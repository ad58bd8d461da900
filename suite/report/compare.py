"""Compare a run against a previous one: metric changes beyond noise, and lost claims."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from suite import claims, records, tasks
from suite.errors import UsageError


def previous(prev: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The previous run's ok rows and its claim verdicts by id."""
    from suite.report import frame, ok_rows

    if not (prev / records.RECORDS).is_dir():
        raise UsageError(f"--compare {prev}: it holds no rpg-bench records (expected {prev / records.RECORDS}/)")
    _, recs = records.read_run(prev)
    ok = ok_rows(frame(recs))
    verdicts = {}
    claims_path = prev / "claims.json"
    if claims_path.exists():
        verdicts = {c["id"]: c["verdict"] for c in json.loads(claims_path.read_text(encoding="utf-8"))["claims"]}
    return ok, verdicts


def changes(now: pd.DataFrame, before: pd.DataFrame) -> list[dict]:
    """Per (experiment, method, budget) in both runs: the change of the mean metric (signed
    so that positive is better), its Welch 95% CI, and whether it is a regression (the CI
    entirely on the worse side)."""
    out = []
    if not len(now) or not len(before):
        return out
    for (experiment, method, budget), g in now.groupby(["experiment", "entry", "budget"]):
        b = before[(before["experiment"] == experiment) & (before["entry"] == method) & (before["budget"] == budget)]
        if not len(b):
            continue
        diff, lo, hi = claims.welch(g["value"], b["value"])
        if not tasks.get(g["task"].iloc[0]).higher_is_better:  # report the change as "better is positive"
            diff, lo, hi = -diff, -hi, -lo
        out.append(
            {
                "experiment": experiment,
                "method": method,
                "budget": int(budget),
                "before": float(b["value"].mean()),
                "now": float(g["value"].mean()),
                "diff": diff,
                "ci": (lo, hi),
                "regression": hi < 0,
                "improvement": lo > 0,
            }
        )
    return out


def lost_claims(verdicts: list[claims.Verdict], before: dict[str, str]) -> list[str]:
    """Ids of claims reproduced by the previous run and not by this one."""
    return [
        v.claim["id"]
        for v in verdicts
        if before.get(v.claim["id"]) == claims.REPRODUCED and v.verdict != claims.REPRODUCED
    ]
