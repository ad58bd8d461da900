"""The report: honest ranks, only the run's own cells, escaped text."""

import json
import shutil

import pandas as pd

from suite import cli, report


def test_overlapping_confidence_intervals_share_a_rank():
    rows = [
        {"method": m, "mean": pd.Series(v).mean(), "ci": report.ci95(pd.Series(v))}
        for m, v in {"a": [90.0, 91.0, 90.5], "b": [89.0, 92.0, 90.0], "c": [70.0, 71.0, 70.5]}.items()
    ]
    report.tied_ranks(rows)
    assert [(r["method"], r["rank"], r["tied"]) for r in rows] == [("a", 1, True), ("b", 1, True), ("c", 3, False)]


def test_one_seed_is_never_separated():
    lo, hi = report.ci95(pd.Series([97.0]))
    assert lo == float("-inf") and hi == float("inf")


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
