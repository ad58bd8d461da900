"""`rpg-bench agree A B`: two runs of one suite, their ranks and their verdicts, on runs
synthesised from the paper's own numbers (tests/paper_oracle.py)."""

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from paper_oracle import _record, synthesize, write

from suite import claims, cli
from suite.run import runner
from suite.suites import spec

CLAIMS = claims.load()
RAISED = 2.0  # rpg-perm-only at 75.8 + 2: above RPG's 76.5 in Figure 5


def agree(a, b, capsys) -> dict:
    assert cli.main(["agree", str(a), str(b), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    schema = json.loads(resources.files("suite").joinpath("schemas/agree.json").read_text())
    jsonschema.validate(result, schema)
    return result


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """The cifar suite from the paper's numbers, and the same with rpg-perm-only raised above RPG."""
    root = tmp_path_factory.mktemp("agree")
    write(root / "paper", *synthesize("cifar", CLAIMS))
    write(root / "raised", *synthesize("cifar", CLAIMS, lambda c: RAISED if c.method == "rpg-perm-only" else 0.0))
    return root / "paper", root / "raised"


def _reads_perm_only(claim: claims.Claim) -> bool:
    names = [claim.method or "", *(claim.better or []), *(claim.worse or []), *(claim.order or [])]
    return any(n.split("@")[0].rpartition("/")[2] == "rpg-perm-only" for n in names)


def test_a_run_agrees_with_itself(oracle, capsys):
    paper, _ = oracle
    result = agree(paper, paper, capsys)
    assert result["tau"] == 1.0 and result["tau_ci"][1] == 1.0  # resampled seeds may reorder close rows
    assert result["claims"] and all(c["agreement"] == "stable" for c in result["claims"])
    assert not any(p["flipped"] for p in result["pairs"])
    assert all(p["a_budget"] == p["b_budget"] for p in result["pairing"])


@pytest.mark.slow
def test_raising_an_ablation_above_rpg_changes_figure_5_and_leaves_table_2_stable(oracle, capsys):
    result = agree(*oracle, capsys)
    assert result["tau"] < 1
    fig5 = {c["id"]: c for c in result["claims"] if c["id"].startswith("fig5.")}
    reading = [i for i in fig5 if _reads_perm_only(next(c for c in CLAIMS if c.id == i))]
    assert reading and all(fig5[i]["agreement"] == "changed" for i in reading), fig5
    assert fig5["fig5.both-best"]["a"] == "reproduced" and fig5["fig5.both-best"]["b"] == "not reproduced"
    flipped = [p for p in result["pairs"] if p["flipped"]]
    assert flipped and all(p["claim"] == "fig5.both-best" and p["right"] == "rpg-perm-only" for p in flipped)
    t2 = [c for c in result["claims"] if c["id"].startswith("t2.")]
    assert t2 and all(c["agreement"] == "stable" for c in t2), t2
    # The person's table: the pairing, tau, and each claim's verdicts.
    assert cli.main(["agree", *map(str, oracle)]) == 0
    text = capsys.readouterr().out
    assert "Kendall's tau" in text and "fig5.both-best" in text and "changed" in text


def test_rows_pair_by_budget_position_across_profiles_whose_counts_differ(tmp_path, capsys):
    """Figure 5's cells at full and at smoke (the network shrunk: other counts), the same
    order of methods: every row pairs, at the suite's "2M", and the ranks agree."""
    suite = spec.load("cifar")
    paper = {"rpg": 76.5, "rpg-perm-only": 75.8, "rpg-sign-only": 71.1, "rpg-neither": 70.7}
    for profile in ("full", "smoke"):
        cells = [c for c in runner.expand(suite, profile, seeds=3) if c.experiment == "fig5"]
        recs = [_record(c, {"value": paper[c.method]}, c.seed, 0.0) for c in cells]
        run = {"suite": "cifar", "profile": profile, "keys": [c.key() for c in cells], "started": profile}
        write(tmp_path / profile, run, recs)
    result = agree(tmp_path / "full", tmp_path / "smoke", capsys)
    (pairing,) = result["pairing"]
    assert pairing["position"] == "2M" and pairing["a_budget"] != pairing["b_budget"]
    assert result["rows"] == 4 and result["tau"] == 1.0


def test_runs_of_other_suites_or_with_no_shared_row_are_refused(oracle, tmp_path, capsys):
    paper, _ = oracle
    write(tmp_path / "pruning", *synthesize("pruning", CLAIMS))
    assert cli.main(["agree", str(paper), str(tmp_path / "pruning")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'cifar'" in err and "'pruning'" in err and "one suite" in err
    run, recs = synthesize("cifar", CLAIMS)
    write(tmp_path / "table1", run, [r for r in recs if r["config"]["experiment"] == "table1-c10"])
    write(tmp_path / "table2", run, [r for r in recs if r["config"]["experiment"] == "table2"])
    assert cli.main(["agree", str(tmp_path / "table1"), str(tmp_path / "table2")]) == 2
    assert "share no row" in capsys.readouterr().err
    assert cli.main(["agree", str(paper), str(tmp_path / "nothing")]) == 2
    assert "holds no rpg-bench records" in capsys.readouterr().err


def _rung(out, epochs: int, shift) -> None:
    """The cifar suite's Table 2 and Figure 5 from the paper's numbers, labelled as trained
    ``epochs`` epochs (their counted compute scales with it)."""
    run, recs = synthesize("cifar", CLAIMS, shift)
    recs = [r for r in recs if r["config"]["experiment"] in ("table2", "fig5")]
    for r in recs:
        r["config"]["recipe"]["epochs"] = epochs
        r["config"]["recipe_overrides"] = {"epochs": epochs}
    write(out, run | {"keys": [r["key"] for r in recs]}, recs)


@pytest.mark.slow
def test_a_ladder_orders_its_rungs_by_compute_and_follows_each_claim_along_it(tmp_path, capsys):
    raised = lambda c: RAISED if c.method == "rpg-perm-only" else 0.0  # noqa: E731
    _rung(tmp_path / "e10", 10, raised)
    _rung(tmp_path / "e50", 50, lambda c: 0.0)
    _rung(tmp_path / "e200", 200, lambda c: 0.0)
    given = [tmp_path / "e200", tmp_path / "e10", tmp_path / "e50"]
    assert cli.main(["ladder", *map(str, given), "--out", str(tmp_path / "site")]) == 0
    printed = capsys.readouterr().out
    ladder = json.loads((tmp_path / "site" / "ladder.json").read_text())
    assert [r["epochs"] for r in ladder["rungs"]] == [[10], [50], [200]]
    pflop = [r["pflop"] for r in ladder["rungs"]]
    assert pflop[0] < pflop[1] < pflop[2] and pflop[2] == pytest.approx(4 * pflop[1], rel=0.05)
    # Consecutive rungs, then the lowest against the highest.
    pairs = [(Path(a["a"]).name, Path(a["b"]).name) for a in ladder["agreements"]]
    assert pairs == [("e10", "e50"), ("e50", "e200"), ("e10", "e200")]
    assert "fig5.both-best" in ladder["agreements"][0]["changed"] and not ladder["agreements"][1]["changed"]
    along = {c["id"]: c for c in ladder["claims"]}
    assert along["fig5.both-best"]["along"] == "changed"
    assert along["fig5.both-best"]["verdicts"] == ["not reproduced", "reproduced", "reproduced"]
    assert along["t2.rpg-gt-baselines"]["along"] == "stable"
    perm = next(e for e in along["fig5.both-best"]["effects"] if "rpg-perm-only" in e["label"])
    assert perm["paper"] == pytest.approx(0.7) and perm["at"][0]["diff"] < 0 < perm["at"][2]["diff"]
    html = (tmp_path / "site" / "ladder.html").read_text()
    assert html.count("<svg") == len([c for c in ladder["claims"] if c["effects"]]) and "fig5.both-best" in html
    assert "claims changed: fig5.both-best" in printed
    # Each agreement is kept whole, as `agree --json` prints it, and the page links it and the rungs.
    first = ladder["agreements"][0]
    assert first["file"] == "agree-e10--e50.json" and f'href="{first["file"]}"' in html
    assert json.loads((tmp_path / "site" / first["file"]).read_text()) == agree(first["a"], first["b"], capsys)
    assert all((tmp_path / "site" / a["file"]).is_file() for a in ladder["agreements"])
    assert 'href="../e10/index.html"' in html
    # Each rung's own claims.json and page say how its verdicts fared along the ladder.
    for rung in given:
        judged = {c["id"]: c for c in json.loads((rung / "claims.json").read_text())["claims"]}
        assert judged["fig5.both-best"]["ladder"]["along"] == "changed"
        rungs = ["10 epochs", "50 epochs", "200 epochs"]
        expected = {"along": "stable", "rungs": rungs, "this": 0, "page": "../site/ladder.html"}
        assert judged["t2.rpg-gt-baselines"]["ladder"] | {"this": 0} == expected
        assert "along the ladder</a> (10 epochs → 50 epochs → 200 epochs): stable" in (rung / "index.html").read_text()
    assert [json.loads((r / "rung.json").read_text())["this"] for r in given] == [2, 0, 1]
    # Records that change after the ladder make it stale, not silently still true.
    next((tmp_path / "e50" / "records").iterdir()).unlink()
    assert cli.main(["report", str(tmp_path / "e50")]) == 0
    judged = json.loads((tmp_path / "e50" / "claims.json").read_text())["claims"]
    assert all(c["ladder"].get("stale") and "along" not in c["ladder"] for c in judged if "ladder" in c)
    page = (tmp_path / "e50" / "index.html").read_text()
    assert "compute ladder</a> judged it on this run's records as they were: stale" in page
