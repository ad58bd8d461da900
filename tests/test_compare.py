"""report --compare: a nightly that does not cry wolf, and still sees a real regression."""

import numpy as np
import pandas as pd
import pytest

from suite import claims, runner, spec
from suite.report import compare


def cifar_rows() -> list[tuple[str, str, int, str]]:
    """(experiment, entry, budget, task) of every row of the cifar suite: a nightly's size."""
    cells = runner.expand(spec.load("cifar"), "full", seeds=1)
    several = {e for e in {c.experiment for c in cells} if len({c.arch for c in cells if c.experiment == e}) > 1}
    return sorted(
        {
            (c.experiment, f"{c.arch}/{c.method}" if c.experiment in several else c.method, c.budget, c.task)
            for c in cells
        }
    )


ROWS = cifar_rows()
# Realistic seed noise for CIFAR-100 ResNets: 0.2 points of top-1 at the largest budgets to
# 0.6 at the smallest, one spread per row, fixed across nights.
SPREAD = np.random.default_rng(0).uniform(0.2, 0.6, len(ROWS))
LEVEL = np.random.default_rng(1).uniform(50, 80, len(ROWS))


def night(rng: np.random.Generator, lowered: str | None = None, seeds: int = 3) -> pd.DataFrame:
    out = []
    for (experiment, entry, budget, task), level, sd in zip(ROWS, LEVEL, SPREAD, strict=True):
        shift = -1.0 if lowered and entry.rpartition("/")[2] == lowered and "resnet18" not in entry else 0.0
        for seed in range(seeds):
            value = level + shift + rng.normal(0, sd)
            out.append({"experiment": experiment, "entry": entry, "budget": budget, "task": task, "metric": "top1"})
            out[-1] |= {"value": value, "seed": seed}
    return pd.DataFrame(out)


def test_unchanged_nights_rarely_alarm_and_a_one_point_drop_of_one_method_does():
    assert len(ROWS) > 50
    rng = np.random.default_rng(7)
    false = sum(any(c["regression"] for c in compare.changes(night(rng), night(rng))) for _ in range(200))
    assert false <= 10, f"{false} of 200 unchanged nights alarmed"
    rpg_rows = sum(1 for _, e, _, _ in ROWS if e.rpartition("/")[2] == "rpg" and "resnet18" not in e)
    caught, flagged, wrong = 0, 0, 0
    for _ in range(200):
        found = [c for c in compare.changes(night(rng, lowered="rpg"), night(rng)) if c["regression"]]
        caught += bool(found)
        flagged += len(found)
        wrong += sum(c["method"].rpartition("/")[2] != "rpg" or "resnet18" in c["method"] for c in found)
    assert caught >= 180, f"a one-point drop in {rpg_rows} rows of rpg was caught {caught} of 200 nights"
    assert wrong / flagged <= 0.05  # the false discovery rate the procedure holds


def rows(values: dict[str, list[float]], task: str = "digits", metric: str = "top1") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"experiment": "e", "entry": m, "budget": 100, "task": task, "metric": metric, "value": v, "seed": i}
            for m, vs in values.items()
            for i, v in enumerate(vs)
        ]
    )


def test_changes_are_signed_better_positive_and_flagged_only_when_controlled_and_material():
    before = rows({"a": [90.0, 90.2, 90.1], "b": [80.0, 80.1, 80.2], "c": [70.0, 70.1, 70.2], "gone": [1, 2, 3]})
    now = rows({"a": [90.1, 90.0, 90.2], "b": [75.0, 75.1, 75.2], "c": [73.0, 73.1, 73.2], "new": [5, 6, 7]})
    found = {c["method"]: c for c in compare.changes(now, before)}
    assert not found["a"]["regression"] and not found["a"]["improvement"]  # unchanged
    assert found["b"]["regression"] and found["b"]["diff"] == pytest.approx(-5.0)
    assert found["c"]["improvement"] and not found["c"]["regression"]
    assert found["new"]["status"] == "new" and found["gone"]["status"] == "gone"
    assert not found["new"]["regression"] and not found["gone"]["regression"]
    # A significant change below the metric's minimum effect is not a regression.
    tiny = compare.changes(rows({"a": [89.8, 89.81, 89.79]}), rows({"a": [90.0, 90.01, 89.99]}))
    assert tiny[0]["p"] < 0.01 and not tiny[0]["regression"]


def test_a_lower_is_better_metric_regresses_upwards():
    before = rows({"rpg": [20.0, 20.1, 20.2]}, task="s3dis", metric="depth_rmse")
    worse = rows({"rpg": [25.0, 25.1, 25.2]}, task="s3dis", metric="depth_rmse")
    better = rows({"rpg": [15.0, 15.1, 15.2]}, task="s3dis", metric="depth_rmse")
    (up,) = compare.changes(worse, before)
    assert up["regression"] and up["diff"] == pytest.approx(-5.0)
    (down,) = compare.changes(better, before)
    assert down["improvement"] and not down["regression"]


def test_only_a_claim_going_from_reproduced_to_not_reproduced_is_lost():
    def verdict(cid, v):
        return claims.Verdict({"id": cid}, v)

    before = {"a": claims.REPRODUCED, "b": claims.REPRODUCED, "c": claims.INCONCLUSIVE}
    now = [verdict("a", claims.NOT_REPRODUCED), verdict("b", claims.INCONCLUSIVE), verdict("c", claims.NOT_REPRODUCED)]
    assert compare.lost_claims(now, before) == ["a"]
    assert compare.weakened_claims(now, before) == ["b"]
