"""The report: honest ranks, only the run's own cells, escaped text."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from suite import cli, report, stats


def test_overlapping_confidence_intervals_share_a_rank():
    rows = [
        {"method": m, "mean": pd.Series(v).mean(), "ci": stats.mean_ci(v).as_tuple()}
        for m, v in {"a": [90.0, 91.0, 90.5], "b": [89.0, 92.0, 90.0], "c": [70.0, 71.0, 70.5]}.items()
    ]
    report.tied_ranks(rows)
    assert [(r["method"], r["rank"], r["tied"]) for r in rows] == [("a", 1, True), ("b", 1, True), ("c", 3, False)]


def test_overlap_does_not_chain_rows_whose_intervals_are_apart_never_share_a_rank():
    # fashion-cpu's rows: each interval overlaps its neighbour's, the first and last do not overlap.
    intervals = {"rpg-neither": (87.62, 88.59), "wide": (84.5, 88.0), "plain": (84.16, 85.81), "low": (80.0, 81.0)}
    rows = [{"method": m, "mean": sum(ci) / 2, "ci": ci} for m, ci in intervals.items()]
    report.tied_ranks(rows)
    rank = {r["method"]: r["rank"] for r in rows}
    # 1 + the rows entirely above: plain has rpg-neither above it; low has all three.
    assert rank == {"rpg-neither": 1, "wide": 1, "plain": 2, "low": 4}
    for a in rows:
        for b in rows:
            if a["ci"][0] > b["ci"][1]:
                assert a["rank"] < b["rank"]
    assert [r["method"] for r in rows] == ["rpg-neither", "wide", "plain", "low"]
    assert [r["tied"] for r in rows] == [True, True, False, False]


def test_a_lower_is_better_metric_ranks_the_smallest_first():
    rows = [
        {"method": m, "mean": pd.Series(v).mean(), "ci": stats.mean_ci(v).as_tuple()}
        for m, v in {"a": [30.0, 31.0, 30.5], "b": [20.0, 21.0, 20.5]}.items()
    ]
    report.tied_ranks(rows, higher_is_better=False)
    assert [(r["method"], r["rank"]) for r in rows] == [("b", 1), ("a", 2)]


def test_one_seed_is_never_separated():
    lo, hi = stats.mean_ci([97.0]).as_tuple()
    assert lo == float("-inf") and hi == float("inf")


@pytest.mark.slow
def test_the_report_shows_only_the_last_runs_cells(smoke_run, tmp_path):
    source, _ = smoke_run
    out = tmp_path / "out"
    shutil.copytree(source, out)
    # A record from another run in the same folder: a different profile, absurd numbers.
    first = next((out / "records").glob("*.json"))
    other = json.loads(first.read_text())
    other["key"] = "f" * 16
    other["config"]["profile"] = "full"
    other["metrics"]["top1"] = -1000.0
    (out / "records" / f"{other['key']}.json").write_text(json.dumps(other))
    assert cli.main(["report", str(out)]) == 0
    html = (out / "index.html").read_text()
    assert "1 more records from other runs" in html
    assert "-1000" not in html


@pytest.mark.slow
def test_names_with_html_are_shown_as_text(smoke_run, tmp_path):
    source, _ = smoke_run
    out = tmp_path / "out"
    shutil.copytree(source, out)
    run = json.loads((out / "run.json").read_text())
    run["description"] = "<img src=x onerror=alert(1)>"
    (out / "run.json").write_text(json.dumps(run))
    report.render(out)
    html = (out / "index.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x" in html


@pytest.mark.slow
def test_compare_flags_regressions_and_lost_claims(smoke_run, tmp_path, capsys):
    """Two runs of two seeds each: the second loses rpg's lead; the report says so, exit 1."""
    source, _ = smoke_run

    def make(out: Path, rpg: list[float], plain: list[float]) -> None:
        shutil.copytree(source, out)
        run = json.loads((out / "run.json").read_text())
        keys = []
        for path in list((out / "records").glob("*.json")):
            record = json.loads(path.read_text())
            path.unlink()
            for seed, value in enumerate(rpg if record["config"]["method"] == "rpg" else plain):
                record["config"]["seed"] = seed
                record["key"] = f"{record['config']['method']}{record['config']['budget']}s{seed}".ljust(16, "0")
                record["metrics"]["top1"] = value
                keys.append(record["key"])
                (out / "records" / f"{record['key']}.json").write_text(json.dumps(record))
        run["keys"] = keys
        (out / "run.json").write_text(json.dumps(run))

    before, after = tmp_path / "before", tmp_path / "after"
    make(before, [95.0, 96.0, 95.5], [80.0, 81.0, 80.5])
    assert cli.main(["report", str(before)]) == 0
    make(after, [60.0, 61.0, 60.5], [80.0, 81.0, 80.5])
    assert cli.main(["report", str(after), "--compare", str(before)]) == 1
    assert "fig4.rpg-gt-plain" in capsys.readouterr().err
    html = (after / "index.html").read_text()
    assert '<span class="v-not-reproduced">regression</span>' in html
    assert "Claims reproduced there and not reproduced here" in html
    # rpg still leads, but by less than before beyond noise: a regression, no lost claim.
    shutil.rmtree(after)
    make(after, [90.0, 90.5, 91.0], [80.0, 81.0, 80.5])
    capsys.readouterr()
    assert cli.main(["report", str(after), "--compare", str(before)]) == 1
    err = capsys.readouterr().err
    assert "regression: " in err and "rpg@" in err and "claims reproduced" not in err
    # Against itself nothing regresses.
    assert cli.main(["report", str(after), "--compare", str(after)]) == 0
