"""The machine-readable leaderboard (OUT/leaderboard.csv and .json): rendered from records
that carry the paper's own ImageNet numbers, its rows aggregate results.csv's per-seed
rows, carry the paper's values, and name the verdicts they feed."""

import json
from importlib import resources

import jsonschema
import pandas as pd
import pytest
from paper_oracle import synthesize, write

from suite import claims, cli


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("leaderboard") / "imagenet"
    write(out, *synthesize("imagenet", claims.load()))
    assert cli.main(["report", str(out)]) == 0
    return out


def test_the_json_follows_its_schema_and_the_csv_holds_the_same_rows(rendered):
    board = json.loads((rendered / "leaderboard.json").read_text())
    schema = json.loads(resources.files("suite").joinpath("schemas/leaderboard.json").read_text())
    jsonschema.validate(board, schema)
    csv = pd.read_csv(rendered / "leaderboard.csv")
    assert len(csv) == len(board["rows"]) > 10
    assert list(csv["entry"]) == [r["entry"] for r in board["rows"]]
    assert csv["mean"].tolist() == pytest.approx([r["mean"] for r in board["rows"]])


def test_each_row_aggregates_its_seeds_from_results_csv(rendered):
    rows = json.loads((rendered / "leaderboard.json").read_text())["rows"]
    per_seed = pd.read_csv(rendered / "results.csv")
    for row in rows:
        seeds = per_seed[
            (per_seed["experiment"] == row["experiment"])
            & (per_seed["budget"] == row["budget"])
            & (per_seed["entry"] == row["entry"])
        ]["value"]
        assert row["n"] == len(seeds) == len(row["seeds"])
        assert row["mean"] == pytest.approx(seeds.mean())
        assert row["sd"] == pytest.approx(seeds.std(ddof=1))
        assert row["ci_low"] < row["mean"] < row["ci_high"]


def test_a_row_the_paper_reports_carries_its_value_and_the_verdict_it_feeds(rendered):
    rows = json.loads((rendered / "leaderboard.json").read_text())["rows"]
    with_paper = [r for r in rows if r["paper_claims"]]
    assert with_paper, "the paper states values for ImageNet rows"
    for row in with_paper:
        fed = {v["id"]: v["verdict"] for v in row["verdicts"]}
        # The oracle's seeds scatter ±0.1 around the paper's number: each value claim holds.
        assert abs(row["mean"] - row["paper_value"]) < 0.2, row
        assert row["paper_claims"][0] in fed and fed[row["paper_claims"][0]] == "reproduced", row
    unclaimed = [r for r in rows if not r["verdicts"]]
    assert all(not r["paper_claims"] for r in unclaimed)


def test_one_seed_rows_are_valid_json_with_no_interval(tmp_path):
    run, recs = synthesize("imagenet", claims.load())
    out = tmp_path / "one-seed"
    write(out, run, [r for r in recs if r["config"]["seed"] == 0])
    assert cli.main(["report", str(out)]) == 0

    def refuse(constant):  # Python's json would otherwise read -Infinity and NaN
        raise ValueError(f"not JSON: {constant}")

    board = json.loads((out / "leaderboard.json").read_text(), parse_constant=refuse)
    schema = json.loads(resources.files("suite").joinpath("schemas/leaderboard.json").read_text())
    jsonschema.validate(board, schema)
    assert board["rows"] and all(r["n"] == 1 and r["ci_low"] is None and r["sd"] is None for r in board["rows"])
