"""The statistics of comparing a run with a previous one of the same recipe: rows that
changed beyond noise, and claims whose verdict changed (suite.report.comparison builds
compare.json from them).

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
loss; it is listed, not failed. Rows present in one run only are listed, not judged, and a
row with fewer seeds than before is compared but marked (suite.report.comparison makes
both a loud skip: with one seed a row cannot show a regression at all).
"""

from __future__ import annotations

import pandas as pd

from suite import claims, stats, tasks

MIN_EFFECT = {"top1": 0.5, "pckh": 0.5, "depth_rmse": 0.5, "normal_rmse": 0.5}  # in the metric's own unit
MIN_RELATIVE = 0.05  # for a metric not listed: this share of the previous mean
FALSE_DISCOVERY_RATE = 0.05


def min_effect(metric: str, before_mean: float) -> float:
    return MIN_EFFECT.get(metric, MIN_RELATIVE * abs(before_mean))


KEYS = ["experiment", "entry", "budget"]


def changes(now: pd.DataFrame, before: pd.DataFrame) -> list[dict]:
    """Per (experiment, entry, budget): the change of the mean metric, signed so that
    positive is better, its Welch 95% interval, the seeds on each side, and whether it is a
    regression (controlled across rows, and material) or an improvement beyond noise. Rows
    in one run only are listed with ``status`` "new" or "gone"."""
    out = []
    then = {k: g for k, g in before.groupby(KEYS)} if len(before) else {}
    for key, g in now.groupby(KEYS) if len(now) else []:
        experiment, entry, budget = key
        row = {"experiment": experiment, "entry": entry, "budget": int(budget), "now": float(g["value"].mean())}
        row |= {"metric": g["metric"].iloc[0], "n_now": len(g)}
        b = then.pop(key, None)
        if b is None:
            out.append(row | {"status": "new", "regression": False, "improvement": False})
            continue
        higher = tasks.get(g["task"].iloc[0]).higher_is_better
        ci = stats.welch(g["value"], b["value"])
        ci = ci if higher else ci.flipped()
        row |= {"before": float(b["value"].mean()), "n_before": len(b), "diff": ci.estimate, "ci": ci.as_tuple()}
        row |= {"status": "both", "higher": higher, "values": (g["value"].tolist(), b["value"].tolist())}
        out.append(row | {"min_effect": min_effect(row["metric"], row["before"])})
    for (experiment, entry, budget), b in then.items():
        row = {"experiment": experiment, "entry": entry, "budget": int(budget), "before": float(b["value"].mean())}
        row |= {"metric": b["metric"].iloc[0], "n_before": len(b)}
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


def verdict_changes(verdicts: list[claims.Verdict], before: dict[str, str]) -> list[dict]:
    """Every claim judged in both runs whose verdict changed: ``lost`` when the previous
    run reproduced it and this one finds it not reproduced (a failure), ``weakened`` when
    this one leaves it inconclusive (listed, not failed)."""
    out = []
    for v in verdicts:
        then = before.get(v.claim.id)
        if then is None or then == v.verdict:
            continue
        lost = then == claims.REPRODUCED and v.verdict == claims.NOT_REPRODUCED
        weakened = then == claims.REPRODUCED and v.verdict == claims.INCONCLUSIVE
        out.append({"id": v.claim.id, "before": then, "now": v.verdict, "lost": lost, "weakened": weakened})
    return out
