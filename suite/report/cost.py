"""Cost beside accuracy, for the experiments that rank methods against the field (issue #40):
per budget, each method's metric and honest rank (the leaderboard's), its training step and
deployed latency as ratios to the plain network at its natural size (the reference network
every sharing method generates), its peak training memory and what its checkpoint stores.
Every number is read from the run's records; a ratio needs the plain row of the same run."""

from __future__ import annotations

import math

import pandas as pd

EXPERIMENTS = ("field",)  # the experiments the report gives this table


def _median(g: pd.DataFrame, column: str) -> float | None:
    if column not in g or g[column].isna().all():
        return None
    return float(g[column].median())


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference or not math.isfinite(value):
        return None
    return value / reference


def tables(ok: pd.DataFrame, boards: list[dict]) -> list[dict]:
    """One table per (field experiment, budget): its leaderboard's rows in rank order, with
    the ratios to the experiment's plain network at its natural size (None without it)."""
    out = []
    for board in boards:
        experiment = board["experiment"]
        if experiment not in EXPERIMENTS:
            continue
        g = ok[ok["experiment"] == experiment]
        plain = g[(g["method"] == "plain") & (g["budget"] == g[g["method"] == "plain"]["budget"].max())]
        reference = {c: _median(plain, c) for c in ("step_ms", "latency_deployed_batch1_ms")} if len(plain) else {}
        rows = []
        for r in board["rows"]:
            e = g[(g["entry"] == r["method"]) & (g["budget"] == board["budget"])]
            step, deployed = _median(e, "step_ms"), _median(e, "latency_deployed_batch1_ms")
            rows.append(
                {
                    "rank": r["rank"],
                    "tied": r["tied"],
                    "method": r["method"],
                    "value": r["value"],
                    "n": r["n"],
                    "backbone": r["backbone"],
                    "step_ms": step,
                    "step_ratio": _ratio(step, reference.get("step_ms")),
                    "deployed_ms": deployed,
                    "deployed_ratio": _ratio(deployed, reference.get("latency_deployed_batch1_ms")),
                    "memory_train_mb": _median(e, "memory_train_step_mb"),
                    "stored_kb": float(e["stored_bytes"].iloc[0]) / 1024,
                }
            )
        out.append(
            {
                "experiment": experiment,
                "budget_label": board["budget_label"],
                "metric": board["metric"],
                "plain": int(plain["backbone"].iloc[0]) if len(plain) else None,
                "rows": rows,
            }
        )
    return out
