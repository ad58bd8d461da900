"""The report's tables: leaderboards with honest ranks, per-experiment overviews, and the
sections of pruned, quantised, equilibrium and generalisation results."""

from __future__ import annotations

import pandas as pd

from suite import claims, methods, stats, tasks
from suite.counting.ledger import format_count


def tied_ranks(rows: list[dict], higher_is_better: bool = True) -> None:
    """A row's rank is 1 + the number of rows whose 95% interval lies entirely above its own
    (entirely below, for a lower-is-better metric): the rule public leaderboards use for
    statistical ties. Rows no interval separates share a rank (``tied``); two rows whose
    intervals do not overlap never do, since every row entirely above the upper one is
    entirely above the lower one too. Rows are ordered by rank, then by mean."""
    sign = 1 if higher_is_better else -1

    def better(a: dict, b: dict) -> bool:  # a's interval entirely on b's better side
        return a["ci"][0] > b["ci"][1] if higher_is_better else a["ci"][1] < b["ci"][0]

    for r in rows:
        r["rank"] = 1 + sum(better(other, r) for other in rows if other is not r)
    for r in rows:
        r["tied"] = any(o["rank"] == r["rank"] for o in rows if o is not r)
    rows.sort(key=lambda r: (r["rank"], -sign * r["mean"]))


def _mean_std(values: pd.Series) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def _extra(group: pd.DataFrame) -> list[str]:
    """The metrics recorded beside the group's own (Table 5's normal RMSE)."""
    return [m for m in tasks.get(group["task"].iloc[0]).extra_metrics if m in group and group[m].notna().all()]


def leaderboards(ok: pd.DataFrame, claim_list: list[claims.Claim], views: dict, suite: str) -> list[dict]:
    boards = []
    for (experiment, budget), group in ok.groupby(["experiment", "budget"], sort=True):
        paper = claims.paper_points(claim_list, views[experiment], suite, group["metric"].iloc[0])
        extra = _extra(group)
        rows = []
        for entry, g in group.groupby("entry"):
            arch, method = g["arch"].iloc[0], g["method"].iloc[0]
            rows.append(
                {
                    "method": entry,
                    "method_name": method,
                    "arch": arch,
                    "n": len(g),
                    "mean": g["value"].mean(),
                    "sd": float(g["value"].std(ddof=1)) if len(g) > 1 else None,
                    "ci": stats.mean_ci(g["value"]).as_tuple(),
                    "value": _mean_std(g["value"]),
                    "extra": [_mean_std(g[m]) for m in extra],
                    "backbone": int(g["backbone"].iloc[0]),
                    "deviation_pct": g["deviation_pct"].abs().max(),
                    "dense": int(g["dense"].iloc[0]),
                    "stored_kb": g["stored_bytes"].iloc[0] / 1024,
                    "deployed_ms": g["latency_deployed_batch1_ms"].median(),
                    "training_ms": g["latency_training_batch1_ms"].median(),
                    "deployed_n_ms": g["latency_deployed_batchN_ms"].median(),
                    "unstable": not bool(
                        g["latency_deployed_batch1_stable"].all() and g["latency_training_batch1_stable"].all()
                    ),
                    "onnx_ms": g["onnx_batch1_ms"].median(),
                    "onnx_provider": ", ".join(sorted({p for p in g["onnx_provider"] if p})),
                    "onnx_ok": bool((g["onnx_status"] == "ok").all() and g["onnx_matches"].all()),
                    "onnx_status": ", ".join(sorted(set(g["onnx_status"]))),
                    "mflops": g["forward_flops"].iloc[0] / 1e6 if g["forward_flops"].notna().all() else None,
                    "memory": g["memory_inference_mb"].iloc[0],
                    "memory_train": g["memory_train_step_mb"].iloc[0],
                    "record_keys": list(g["key"]),
                    "seeds": sorted(int(x) for x in g["seed"]),
                    "commits": sorted({str(c)[:12] for c in g["git_commit"] if c}),
                    "paper": [p for p in paper if (p["arch"], p["method"], p["row_budget"]) == (arch, method, budget)],
                }
            )
        higher = tasks.get(group["task"].iloc[0]).higher_is_better
        tied_ranks(rows, higher)
        boards.append(
            {
                "experiment": experiment,
                "budget": int(budget),
                "budget_label": format_count(budget),
                "metric": group["metric"].iloc[0],
                "higher_is_better": higher,
                "extra": extra,
                "rows": rows,
            }
        )
    return boards


def overview(ok: pd.DataFrame) -> list[dict]:
    out = []
    for experiment, g in ok.groupby("experiment", sort=True):
        budgets = sorted(g["budget"].unique())
        tables = {}
        for column in ["value", *_extra(g)]:
            table = []
            for method, m in g.groupby("entry"):
                cells = [_mean_std(m[m["budget"] == b][column]) if (m["budget"] == b).any() else "" for b in budgets]
                table.append({"method": method, "cells": cells})
            tables[g["metric"].iloc[0] if column == "value" else column] = table
        metric = g["metric"].iloc[0]
        out.append(
            {
                "experiment": experiment,
                "budgets": [format_count(b) for b in budgets],
                "metric": metric,
                "rows": tables.pop(metric),
                "extra": tables,
            }
        )
    return out


def described_methods(ok: pd.DataFrame) -> list[dict]:
    """Every method in the run: what it is, and how its parameters are counted."""
    out = []
    for name in sorted(set(ok["method"]) & set(methods.METHODS)):  # records may outlive a method
        method = methods.METHODS[name]
        out.append({"name": name, "description": method.description, "counting": method.counting, "knob": method.knob})
    return out


def solves(ok: pd.DataFrame) -> list[dict]:
    """Per experiment with an equilibrium model: each entry's solver iterations (where it
    solves) and deployed latency per image, and the solver's latency over each other entry's."""
    out = []
    if "solver_iterations" not in ok:
        return out
    for experiment, g in ok.groupby("experiment", sort=True):
        if g["solver_iterations"].isna().all():
            continue
        rows = []
        for entry, e in g.groupby("entry", sort=True):
            solves = e["solver_iterations"].notna().all()
            rows.append(
                {
                    "entry": entry,
                    "n": len(e),
                    "latency_ms": float(e["latency_deployed_batch1_ms"].mean()),
                    "solves": solves,
                    "caps": f"{int(e['solver_f_max_iter'].iloc[0])} / {int(e['solver_b_max_iter'].iloc[0])}"
                    if solves
                    else "",
                    "iterations": float(e["solver_iterations"].mean()) if solves else None,
                    "rel_residual": float(e["solver_rel_residual"].mean()) if solves else None,
                }
            )
        solvers = [r for r in rows if r["solves"]]
        ratios = [
            {"left": s["entry"], "right": r["entry"], "ratio": s["latency_ms"] / r["latency_ms"]}
            for s in solvers
            for r in rows
            if not r["solves"]
        ]
        out.append({"experiment": experiment, "rows": rows, "ratios": ratios})
    return out


def compressed(ok: pd.DataFrame) -> list[dict]:
    """Per experiment with pruned or quantised models: each entry's metric before and after
    (mean and sd over seeds), the drop, and its backbone parameters and bytes before and after."""
    out = []
    if "drop" not in ok:
        return out
    for experiment, g in ok[ok["drop"].notna()].groupby("experiment", sort=True):
        rows = [
            {
                "entry": entry,
                "stage": e["stage"].iloc[0].removeprefix("before-"),
                "n": len(e),
                "before": float(e["value_before"].mean()),
                "before_sd": float(e["value_before"].std(ddof=1)) if len(e) > 1 else 0.0,
                "after": float(e["value"].mean()),
                "after_sd": float(e["value"].std(ddof=1)) if len(e) > 1 else 0.0,
                "drop": float(e["drop"].mean()),
                "backbone_before": int(e["backbone_before"].iloc[0]),
                "backbone": int(e["backbone"].iloc[0]),
                "bytes_before": int(e["stored_bytes_before"].iloc[0]),
                "bytes": int(e["stored_bytes"].iloc[0]),
            }
            for (entry, _), e in g.groupby(["entry", "budget"], sort=True)
        ]
        out.append({"experiment": experiment, "metric": g["metric"].iloc[0], "rows": rows})
    return out


def gaps(ok: pd.DataFrame) -> list[dict]:
    """Per experiment that records it (Table 8): each entry's metric on the training split,
    on test, and the gap (train minus test) with its 95% CI over seeds."""
    out = []
    if "train_minus_test" not in ok:
        return out
    for experiment, g in ok[ok["train_minus_test"].notna()].groupby("experiment", sort=True):
        rows = []
        for (entry, budget), e in g.groupby(["entry", "budget"], sort=True):
            lo, hi = stats.mean_ci(e["train_minus_test"].astype(float)).as_tuple()
            rows.append(
                {
                    "entry": entry,
                    "budget": int(budget),
                    "n": len(e),
                    "train": float(e["train_value"].mean()),
                    "test": float(e["value"].mean()),
                    "gap": float(e["train_minus_test"].mean()),
                    "ci": (lo, hi),
                }
            )
        out.append({"experiment": experiment, "metric": g["metric"].iloc[0], "rows": rows})
    return out
