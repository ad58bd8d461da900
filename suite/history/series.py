"""What a history follows over the nights: each leaderboard row's measures (its metric,
deployed latency and inference memory, per seed) and each claim's verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from suite import claims, stats, tasks
from suite.counting.ledger import format_count
from suite.history.nights import Night
from suite.history.steps import Series
from suite.report.compare import KEYS


@dataclass(frozen=True)
class Measure:
    name: str  # "metric", "latency", "memory"
    column: str  # in the report's frame (suite.report.frame)
    label: str  # what it is: "" for the metric (the row's own metric names it)
    axis: str  # the axis label: "" for the metric
    unit_name: str | None  # what suite.report.compare's minimum effect knows it by (None: the row's metric)


MEASURES = (
    Measure("metric", "value", "", "", None),
    Measure(
        "latency", "latency_deployed_batch1_ms", "deployed latency, ms per image (batch 1)", "latency, ms", "latency_ms"
    ),
    Measure("memory", "memory_inference_mb", "peak memory at inference, MB", "memory, MB", "memory_mb"),
)
BY_NAME = {m.name: m for m in MEASURES}
FLAKY = 3  # changes of one claim's verdict over the nights shown that make it flaky (wpt.fyi's word)


def row_name(experiment: str, entry: str, budget: int) -> str:
    return f"{experiment} {entry}@{format_count(int(budget))}"


def rows(nights: list[Night]) -> list[Series]:
    """Every row's series, per measure it has a value for on some night; rows in order of
    experiment, entry and budget, measures in MEASURES' order."""
    frames = [n.ok.assign(night=i) for i, n in enumerate(nights) if len(n.ok)]
    if not frames:
        return []
    df = pd.concat(frames, ignore_index=True)
    out = []
    for (experiment, entry, budget), g in df.groupby(KEYS, sort=True):
        task = tasks.get(str(g["task"].iloc[0]))
        metric = str(g["metric"].iloc[0])
        for m in MEASURES:
            if m.column not in g:
                continue
            values = pd.to_numeric(g[m.column], errors="coerce")
            if values.notna().sum() == 0:
                continue
            per_night = [None] * len(nights)
            for night, v in values.groupby(g["night"]):
                v = v.dropna().to_numpy(float)
                per_night[int(night)] = v if len(v) else None
            higher = task.higher_is_better if m.name == "metric" else False
            name = m.unit_name or metric
            key = (str(experiment), str(entry), int(budget), m.name)
            out.append(Series(key, name, higher, per_night, moderated=m.name == "metric"))
    return out


def band(values: np.ndarray | None) -> tuple[float, float, float] | None:
    """A night's mean and its 95% interval (suite.stats.mean_ci; infinite with one seed)."""
    if values is None or not len(values):
        return None
    ci = stats.mean_ci(values)
    return ci.estimate, ci.low, ci.high


def relevant_claims(suite: str) -> list[dict]:
    """The claims the suite says it measures (an experiment of it in the claim's list)."""
    return [c for c in claims.load() if any(e.split("/", 1)[0] == suite for e in c.experiments)]


def timeline(nights: list[Night]) -> tuple[list[dict], int]:
    """Per claim the suite measures and some night ran: its verdict each night, each change
    (the night it changed at, from what to what) and whether it is flaky (FLAKY changes or
    more); and how many more claims the suite lists that no night ran."""
    out, never = [], 0
    for claim in relevant_claims(nights[0].suite):
        verdicts = [n.verdicts.get(claim.id, claims.NOT_RUN) for n in nights]
        if all(v == claims.NOT_RUN for v in verdicts):
            never += 1
            continue
        changes = [
            {"index": i, "before": verdicts[i - 1], "after": verdicts[i]}
            for i in range(1, len(verdicts))
            if verdicts[i] != verdicts[i - 1]
        ]
        out.append(
            {"id": claim.id, "statement": claim.statement, "verdicts": verdicts, "changes": changes}
            | {"flaky": len(changes) >= FLAKY}
        )
    return out, never
