"""What every kind of claim shares: the column a metric is read from, the paper's own
number for a row, missing rows named, and one comparison's record."""

from __future__ import annotations

import pandas as pd

from suite import tasks
from suite.claims.rows import Entry, View, claim_arch
from suite.claims.schema import Claim
from suite.claims.verdicts import NOT_RUN, seeds_text

# A claim's metric, where the record keeps it under another name. The paper's FLOPs are
# multiply-adds (ResNet-18: 1.82e9); torch's flop counter counts two per multiply-add. Its
# latencies are per image of batched inference (module suite.claims.setting).
COLUMNS = {"latency_ms": "latency_deployed_batchN_ms", "accuracy_drop": "drop", "flops": "forward_macs"}


def column(fields: Claim, view: View) -> str:
    """The frame column a claim's metric is read from in this experiment."""
    metric = fields.metric
    if fields.stage.startswith("before-"):
        return "value_before"
    if metric in COLUMNS:
        return COLUMNS[metric]
    return "value" if metric == tasks.get(view.task).metric else metric


def values_of(rows: pd.DataFrame, name: str) -> pd.Series | None:
    """The column's values as floats, or None if a row lacks it (a record that predates it)."""
    if name not in rows or rows[name].isna().any():
        return None
    return rows[name].astype(float)


def paper_number(fields: Claim, entry: Entry, by_id: dict[str, Claim]) -> float | None:
    """The paper's value for ``entry`` among the claim's ``values``, of the claim's metric."""
    named = entry.arch or claim_arch(fields)
    for vid in fields.values:
        v = by_id.get(vid)
        if v is None or v.kind != "value" or v.method != entry.method or v.metric != fields.metric:
            continue
        if named and claim_arch(v) and claim_arch(v) != named:
            continue
        return float(v.value)
    return None


def missing(view: View, arch: str, method: str, budget: str | None, why: str = "no rows") -> dict:
    """A detail saying which rows the claim needed and this experiment does not have."""
    return {
        "experiment": view.name,
        "budget": None,
        "verdict": NOT_RUN,
        "text": f"{why} for {view.describe(arch, method, budget)}",
    }


def detail(
    view: View,
    budget: int | None,
    verdict: str,
    text: str,
    setting: dict,
    seeds: int | str | None = None,
    said: bool = False,
    **extra,
) -> dict:
    """One comparison's record; ``said``: the text already says what more seeds would do."""
    return {
        "experiment": view.name,
        "budget": budget,
        "verdict": verdict,
        "text": text + ("" if said else seeds_text(seeds)),
        "scale": setting["scale"],
        "judged_on": setting["text"],
        "scale_gap": setting.get("gap"),
        "seeds_needed": seeds,
        **extra,
    }
