"""report --compare: a nightly that does not cry wolf, still sees a real regression, and
says what it compared (compare.json, the terminal, the page)."""

import json
import shutil
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

import suite.report
from suite import claims, cli, records
from suite.claims.schema import Claim
from suite.report import compare
from suite.run import runner
from suite.suites import spec


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


@pytest.mark.slow
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
        wrong += sum(c["entry"].rpartition("/")[2] != "rpg" or "resnet18" in c["entry"] for c in found)
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
    found = {c["entry"]: c for c in compare.changes(now, before)}
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


def test_only_a_claim_going_from_reproduced_to_not_reproduced_is_lost_and_every_change_is_listed():
    def verdict(cid, v):
        return claims.Verdict(Claim(id=cid, kind="qualitative", statement=cid), v)

    before = {"a": claims.REPRODUCED, "b": claims.REPRODUCED, "c": claims.INCONCLUSIVE}
    now = [verdict("a", claims.NOT_REPRODUCED), verdict("b", claims.INCONCLUSIVE), verdict("c", claims.NOT_REPRODUCED)]
    changed = {c["id"]: c for c in compare.verdict_changes(now, before)}
    assert [i for i, c in changed.items() if c["lost"]] == ["a"]
    assert [i for i, c in changed.items() if c["weakened"]] == ["b"]
    assert changed["c"] == {
        "id": "c",
        "before": claims.INCONCLUSIVE,
        "now": claims.NOT_REPRODUCED,
        "lost": False,
        "weakened": False,
    }


# --- rpg-bench report OUT --compare PREV, on synthesised runs -------------------------------
# The digits suite's smoke cells at two seeds, with records written here instead of trained:
# what is under test is the comparison, not training.

COMPARE_SCHEMA = jsonschema.Draft202012Validator(
    json.loads(resources.files("suite").joinpath("schemas/compare.json").read_text())
)


def synthesise(out: Path, value=lambda cell: 90.0, seeds: int = 2, sets: dict | None = None, drop=()) -> list[str]:
    """A results folder as `rpg-bench --profile smoke --seeds 2` would leave it, each cell's
    top-1 given by ``value(cell)`` plus a seed's noise; the cells ``drop`` names (by
    (method, budget, seed)) have no record. Returns the run's keys."""
    cells = runner.expand(spec.load("digits"), "smoke", seeds=seeds, sets=sets)
    for cell in cells:
        if (cell.method, cell.budget, cell.seed) in drop:
            continue
        top1 = value(cell) + (0.2 if cell.seed % 2 else -0.2) * (1 + cell.seed // 2)
        timing = {"median_ms": 1.0, "p90_ms": 1.01, "stable": True, "batch": 64}
        ledger = {
            "learned": cell.budget,
            "backbone": cell.budget,
            "dense": cell.budget,
            "stored_bytes": 4 * cell.budget,
        }
        record = {
            "key": cell.key(),
            "config": cell.config(),
            "status": "ok",
            "seconds": 1.0,
            "metric": "top1",
            "metrics": {"top1": top1, "val_top1": top1},
            "ledger": ledger,
            "deviation": 0.0,
            "budget_met": True,
            "training": {"best_epoch": 1, "history": [{"val": top1 - 1}, {"val": top1}]},
            "latency": {f: {"batch1": timing | {"batch": 1}, "batchN": timing} for f in ("deployed", "training")},
            "flops": {"forward_flops": 2e6},
            "memory": {
                w: {"kind": "not measured", "peak_mb": None, "reason": "synthesised"}
                for w in ("inference", "train_step")
            },
            "onnx": {"status": "skipped"},
            "env": {"device_name": "cpu", "device": "cpu", "torch": "synthesised", "git_commit": "0123456789abcdef"},
            "data": {"source": "scikit-learn's digits", "fingerprint": "synthesised", "sizes": {}},
        }
        records.write_json(out / records.RECORDS / f"{record['key']}.json", record)
    keys = [c.key() for c in cells]
    run = {"suite": "digits", "profile": "smoke", "command": "synthesised", "started": "2031-01-01T03:00:00+00:00"}
    (out / records.RUN).write_text(json.dumps(run | {"keys": keys, "cells": len(keys)}))
    return keys


def report(*args) -> tuple[int, str, str]:
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(["report", *map(str, args)])
    return code, stdout.getvalue(), stderr.getvalue()


def compared(out: Path) -> dict:
    data = json.loads((out / "compare.json").read_text())
    COMPARE_SCHEMA.validate(data)
    return data


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline") / "night1"
    synthesise(out)
    assert report(out)[0] == 0
    return out


def test_a_run_against_itself_changes_nothing_and_says_so(baseline, tmp_path):
    out = tmp_path / "night2"
    shutil.copytree(baseline, out)
    code, stdout, stderr = report(out, "--compare", baseline)
    assert code == 0, stderr
    data = compared(out)
    assert data["outcome"] == "clean" and data["exit_code"] == 0
    assert data["rows_compared"] == 8 and not data["regressions"] and not data["skips"]
    assert all(r["diff"] == 0 for r in data["rows"])
    assert data["baseline"]["folder"] == str(baseline) and data["baseline"]["commits"] == ["0123456789abcdef"]
    summary = [line for line in stdout.splitlines() if line.startswith("compare against")]
    assert summary == [data["summary"]]
    assert "8 rows compared, 0 regressions, 0 improvements, 0 claims changed verdict" in summary[0]
    assert "exit 0:" in summary[0] and not stderr


def test_a_regression_exits_1_naming_the_row(baseline, tmp_path):
    out = tmp_path / "night2"
    synthesise(out, value=lambda c: 80.0 if (c.method, c.budget) == ("rpg", 5000) else 90.0)
    code, stdout, stderr = report(out, "--compare", baseline)
    assert code == 1
    data = compared(out)
    assert data["outcome"] == "regressed"
    assert [(r["entry"], r["budget"]) for r in data["regressions"]] == [("rpg", 5000)]
    assert data["regressions"][0]["diff"] == pytest.approx(-10.0)
    assert "regression: digits-resnet18 rpg@5000: top1 90.00 -> 80.00" in stderr
    assert "1 regression," in stdout and "exit 1: 1 row regressed" in stdout
    html = (out / "index.html").read_text()
    assert '<span class="v-not-reproduced">regression</span>' in html and data["summary"] in html


@pytest.mark.parametrize("case", ["fewer seeds", "missing shard", "a row gone"])
def test_an_incomplete_comparison_is_never_no_regression(baseline, tmp_path, case):
    out = tmp_path / "night2"
    if case == "fewer seeds":  # one seed of one row failed to record
        synthesise(out, drop={("plain", 2500, 1)})
    elif case == "missing shard":  # as rpg-bench merge --partial leaves it: every row lost a seed
        keys = synthesise(out, drop={(m, b, 1) for m in ("rpg", "plain") for b in (2500, 5000, 20000, 80000)})
        run = json.loads((out / "run.json").read_text())
        (out / "run.json").write_text(json.dumps(run | {"missing_shards": ["2/2"], "keys": keys}))
    else:  # a row with no cell at all here
        synthesise(out, drop={("plain", 20000, 0), ("plain", 20000, 1)})
    code, stdout, stderr = report(out, "--compare", baseline)
    data = compared(out)
    assert code == 1 and data["outcome"] == "incomplete" and data["exit_code"] == 1
    text = stdout + stderr + (out / "compare.json").read_text()
    assert "no regression" not in text.lower()
    kinds = {s["kind"] for s in data["skips"]}
    if case == "fewer seeds":
        assert [s.get("row") for s in data["skips"]] == [None, "digits-resnet18 plain@2500"]
        assert "1 of this run's cells have no record" in stderr
        assert "digits-resnet18 plain@2500: 1 of the baseline's 2 seeds here" in stderr
    elif case == "missing shard":
        assert {"shard", "cells", "seeds"} <= kinds and sum(s["kind"] == "seeds" for s in data["skips"]) == 8
        assert "shards 2/2 were not merged" in stderr
    else:
        assert kinds == {"cells", "row"} and data["rows_compared"] == 7
        assert [r["reason"] for r in data["not_compared"]] == ["no finished cell here (the baseline had 2 seeds)"]
    assert "incomplete" in stdout


def test_runs_of_different_recipes_are_refused_in_one_line(baseline, tmp_path):
    out = tmp_path / "long"
    synthesise(out, sets={"epochs": 10})
    code, stdout, stderr = report(out, "--compare", baseline)
    assert code == 2 and not stdout
    assert stderr.splitlines() == [stderr.strip()] and "the recipes differ in epochs (10 here, 2 there)" in stderr
    assert not (out / "compare.json").exists() and not (out / "index.html").exists()  # nothing written


def test_compare_json_survives_a_re_render_and_goes_stale_with_the_records(baseline, tmp_path):
    out = tmp_path / "night2"
    synthesise(out, value=lambda c: 80.0 if c.method == "rpg" else 90.0)
    assert report(out, "--compare", baseline)[0] == 1
    before = (out / "compare.json").read_text()
    code, stdout, _ = report(out)
    assert code == 0 and "compare.json kept" in stdout
    assert (out / "compare.json").read_text() == before
    html = (out / "index.html").read_text()
    assert "Changes against" in html and json.loads(before)["summary"] in html
    # A new run into the folder changes its records: the comparison no longer describes them.
    synthesise(out, value=lambda c: 85.0)
    report(out)
    html = (out / "index.html").read_text()
    assert "they have changed since, so it is not shown" in html and json.loads(before)["summary"] not in html


def test_no_baseline_says_why_nothing_was_compared(baseline, tmp_path):
    out = tmp_path / "night2"
    shutil.copytree(baseline, out)
    code, stdout, _ = report(out, "--no-baseline", "the baseline artifact of run 42 expired")
    data = compared(out)
    assert code == 1 and data["outcome"] == "not compared" and data["baseline"] is None
    assert data["skips"] == [{"kind": "baseline", "line": "not compared: the baseline artifact of run 42 expired"}]
    assert "no regression" not in stdout.lower() and "the baseline artifact of run 42 expired" in stdout
    assert report(out, "--no-baseline", "x", "--compare", baseline)[0] == 2


def test_a_render_without_matplotlib_keeps_the_figures_it_cannot_redraw(baseline, tmp_path, monkeypatch):
    out = tmp_path / "night2"
    shutil.copytree(baseline, out)
    drawn = (out / "index.html").read_text()
    assert drawn.count("<svg") >= 2
    # As without matplotlib: importing the module that draws raises ImportError.
    monkeypatch.setitem(sys.modules, "suite.report.plots", None)
    monkeypatch.delattr(suite.report, "plots", raising=False)
    code, _, stderr = report(out, "--compare", baseline)
    assert code == 0 and "figures: kept" in stderr
    html = (out / "index.html").read_text()
    assert html.count("<svg") == drawn.count("<svg") and "Changes against" in html
    # Other records: their figures are not this page's, and are moved aside, never deleted.
    synthesise(out, value=lambda c: 70.0)
    code, _, stderr = report(out)
    assert code == 0 and "index.previous.html" in stderr
    assert (out / "index.previous.html").read_text().count("<svg") == drawn.count("<svg")
    assert "<svg" not in (out / "index.html").read_text()
