"""The report: honest ranks, only the run's own cells, escaped text."""

import json
import shutil
from pathlib import Path

import pandas as pd

from suite import cli, report


def test_overlapping_confidence_intervals_share_a_rank():
    rows = [
        {"method": m, "mean": pd.Series(v).mean(), "ci": report.ci95(pd.Series(v))}
        for m, v in {"a": [90.0, 91.0, 90.5], "b": [89.0, 92.0, 90.0], "c": [70.0, 71.0, 70.5]}.items()
    ]
    report.tied_ranks(rows)
    assert [(r["method"], r["rank"], r["tied"]) for r in rows] == [("a", 1, True), ("b", 1, True), ("c", 3, False)]


def test_a_lower_is_better_metric_ranks_the_smallest_first():
    rows = [
        {"method": m, "mean": pd.Series(v).mean(), "ci": report.ci95(pd.Series(v))}
        for m, v in {"a": [30.0, 31.0, 30.5], "b": [20.0, 21.0, 20.5]}.items()
    ]
    report.tied_ranks(rows, higher_is_better=False)
    assert [(r["method"], r["rank"]) for r in rows] == [("b", 1), ("a", 2)]


def test_table_5s_normal_order_reads_the_normal_column_whatever_the_record_metric():
    from suite import claims

    order = {
        "id": "t5",
        "kind": "ordering",
        "order": ["rpg", "reuse-bn", "reuse", "noreuse"],
        "metric": "normal_rmse",
        "direction": "lower",
        "same_budget": False,
        "experiments": ["multitask/table5"],
    }
    normal = {
        "rpg": [39.0, 39.1, 39.2],
        "reuse-bn": [40, 40.1, 40.2],
        "reuse": [41, 41.1, 41.2],
        "noreuse": [42, 42.1, 42.2],
    }
    rows = [
        {"experiment": "table5", "task": "s3dis", "width": 1.0, "arch": "sharpnet", "method": m, "seed": i}
        | {"budget": 9736 if m in ("rpg", "reuse-bn") else 9480, "normal_rmse": v, "value": 50.0 - v}
        for m, vs in normal.items()
        for i, v in enumerate(vs)
    ]
    run = {"suite": "multitask", "profile": "cpu"}
    (verdict,) = claims.judge([order], pd.DataFrame(rows), run)
    # Depth (value) runs the other way: only the normal column can reproduce the order.
    assert verdict.verdict == claims.REPRODUCED, verdict
    assert verdict.details[0]["budget"] is None  # compared across the two budgets


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


def _frame(values: dict[tuple[str, int], list[float]], arch: str = "resnet18-cifar") -> pd.DataFrame:
    rows = [
        {
            "experiment": "digits-resnet18",
            "task": "digits",
            "width": 0.25,
            "arch": arch,
            "method": m.rpartition("/")[2],
            **({"arch": m.rpartition("/")[0]} if "/" in m else {}),
            "budget": b,
            "value": v,
            "seed": i,
        }
        for (m, b), vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


ORDER = {
    "id": "x",
    "kind": "ordering",
    "statement": "rpg > plain",
    "order": ["rpg", "plain"],
    "direction": "higher",
    "experiments": ["digits/digits-resnet18"],
}
RUN = {"suite": "digits", "profile": "full"}


def test_ordering_claims_need_the_ci_of_every_gap_clear_of_zero():
    from suite import claims

    def verdict(rpg, plain):
        return claims.judge([ORDER], _frame({("rpg", 5000): rpg, ("plain", 5000): plain}), RUN)[0].verdict

    assert verdict([90, 91, 92], [80, 81, 82]) == claims.REPRODUCED
    assert verdict([80, 81, 82], [90, 91, 92]) == claims.NOT_REPRODUCED
    assert verdict([80, 90, 85], [84, 86, 85]) == claims.INCONCLUSIVE
    assert verdict([99], [10]) == claims.INCONCLUSIVE  # one seed is never enough
    other = claims.judge([ORDER], _frame({("rpg", 5000): [90, 91]}), {"suite": "cifar", "profile": "full"})[0]
    assert other.verdict == claims.NOT_RUN


def test_a_reversal_at_one_budget_is_not_hidden_by_the_others():
    from suite import claims

    frame = _frame(
        {("rpg", 1): [90, 91, 92], ("plain", 1): [80, 81, 82], ("rpg", 2): [70, 71, 72], ("plain", 2): [80, 81, 82]}
    )
    (v,) = claims.judge([ORDER], frame, RUN)
    assert v.verdict == claims.NOT_REPRODUCED
    assert [d["verdict"] for d in v.details] == [claims.REPRODUCED, claims.NOT_REPRODUCED]


def _plain(arch="resnet18-cifar"):
    from suite import archs, methods

    return methods.plain_backbone(archs.Net(archs.get(arch), 0.25, 1, 10))


HALF = {
    "id": "half",
    "kind": "relation",
    "statement": "rpg at half the size is at most 0.5 below plain",
    "left": "resnet34-cifar/rpg@0.5",
    "right": "resnet34-cifar/plain@1",
    "min_gain": -0.5,
    "direction": "higher",
    "experiments": ["digits/digits-resnet18"],
}


def test_relations_compare_the_rows_at_the_named_fractions_of_the_plain_size():
    from suite import claims

    full, half = _plain(), round(0.5 * _plain())

    def verdict(rpg, plain, rpg_budget=half):
        frame = _frame({("rpg", rpg_budget): rpg, ("plain", full): plain, ("rpg", full // 10): [0, 0, 0]})
        return claims.judge([HALF], frame, RUN)[0]

    ok = verdict([90.0, 90.2, 90.1], [90.3, 90.4, 90.2])
    # resnet34-cifar is absent: the run's one network stands in, and the evidence says so.
    assert ok.verdict == claims.REPRODUCED and "standing in for resnet34-cifar" in ok.details[0]["text"]
    assert verdict([91.0, 91.5, 91.2], [90.3, 90.4, 90.2]).verdict == claims.REPRODUCED  # better is fine
    assert verdict([88.0, 88.2, 88.1], [90.3, 90.4, 90.2]).verdict == claims.NOT_REPRODUCED
    assert verdict([89.0, 90.5, 89.8], [90.3, 90.4, 90.2]).verdict == claims.INCONCLUSIVE
    # No row near half the plain size: nothing to compare.
    assert verdict([90.0, 90.2, 90.1], [90.3, 90.4, 90.2], rpg_budget=full // 4).verdict == claims.NOT_RUN


def test_a_two_sided_gap_and_a_ratio_bound():
    from suite import claims

    gap = {**HALF, "left": "rpg", "right": "plain", "max_gap": 0.5}
    del gap["min_gain"]
    frame = _frame({("rpg", 100): [92.0, 92.1, 92.2], ("plain", 100): [90.3, 90.4, 90.2]})
    assert claims.judge([gap], frame, RUN)[0].verdict == claims.NOT_REPRODUCED  # too far either way
    ratio = {**gap, "min_ratio": 2.0, "metric": "top1"}
    del ratio["max_gap"]
    frame = _frame({("rpg", 100): [40.0, 41.0, 40.5], ("plain", 100): [10.0, 10.2, 10.1]})
    assert claims.judge([ratio], frame, RUN)[0].verdict == claims.REPRODUCED
    frame = _frame({("rpg", 100): [12.0, 12.1, 12.2], ("plain", 100): [10.0, 10.2, 10.1]})
    assert claims.judge([ratio], frame, RUN)[0].verdict == claims.NOT_REPRODUCED


def test_power_laws_compare_fitted_exponents_below_the_fraction():
    from suite import claims

    law = {
        "id": "pl",
        "kind": "powerlaw",
        "statement": "same exponent",
        "methods": ["resnet18-cifar/rpg", "resnet34-cifar/rpg"],
        "below_fraction": 0.5,
        "max_exponent_diff": 0.1,
        "experiments": ["digits/digits-resnet18"],
    }
    budgets = [100, 1000, 10000]

    def frame(k18, k34):
        values = {}
        for b in budgets:
            values[("resnet18-cifar/rpg", b)] = [10 * b**k18 * (1 + e) for e in (-0.001, 0, 0.001)]
            values[("resnet34-cifar/rpg", b)] = [11 * b**k34 * (1 + e) for e in (-0.001, 0, 0.001)]
        return _frame(values)

    same = claims.judge([law], frame(0.10, 0.12), RUN)[0]
    assert same.verdict == claims.REPRODUCED and "exponents" in same.details[0]["text"]
    assert claims.judge([law], frame(0.05, 0.30), RUN)[0].verdict == claims.NOT_REPRODUCED


def test_every_claim_in_the_claims_file_is_well_formed():
    from suite import claims

    loaded = claims.load()
    assert len(loaded) > 50
    kinds = {c["kind"] for c in loaded}
    assert kinds <= {"value", "ordering", "relation", "powerlaw", "qualitative"}
    for c in loaded:
        if c["kind"] == "value":
            assert isinstance(c["value"], int | float) and c["direction"] in ("higher", "lower"), c["id"]
        if c["kind"] == "ordering":
            assert len(c["order"]) >= 2, c["id"]


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
    assert "regression" in html and "Claims reproduced there and not here" in html
    # rpg still leads, but by less than before beyond noise: a regression, no lost claim.
    shutil.rmtree(after)
    make(after, [90.0, 90.5, 91.0], [80.0, 81.0, 80.5])
    capsys.readouterr()
    assert cli.main(["report", str(after), "--compare", str(before)]) == 1
    err = capsys.readouterr().err
    assert "regression: " in err and "rpg@" in err and "claims reproduced" not in err
    # Against itself nothing regresses.
    assert cli.main(["report", str(after), "--compare", str(after)]) == 0


def test_paper_values_are_found_for_the_experiment_that_measures_them():
    found = report.paper_values(
        [
            {
                "id": "t2.x",
                "kind": "value",
                "method": "rpg",
                "budget": "11M",
                "value": 78.9,
                "experiments": ["cifar/table2"],
            },
            {"id": "t2.y", "kind": "ordering", "experiments": ["cifar/table2"]},
        ],
        "cifar",
        "table2",
    )
    assert found == [
        {"method": "rpg", "arch": None, "budget": 11_000_000, "value": 78.9, "id": "t2.x", "label": "rpg 78.9"}
    ]
    assert report.paper_values([], "digits", "digits-resnet18") == []
