"""Claims as the unit a reviewer runs: --claims selects exactly the cells a claim's verdict
reads (enough: every selected claim is judged on them; nothing more: drop any one group of
them and some selected claim loses a comparison), `plan --claims` costs them, `rpg-bench
claims` lists every claim, and an unknown pattern is one line naming the closest ids."""

import json

import pandas as pd
import pytest

from suite import claims, cli
from suite.claims import select
from suite.run import runner
from suite.suites import spec


def _finished(cells) -> pd.DataFrame:
    """The rows a run of ``cells`` would give: every seed a distinct number per method."""
    names = sorted({c.method for c in cells})
    rows = [
        {
            "key": c.key(), "experiment": c.experiment, "task": c.task, "arch": c.arch, "width": c.width,
            "method": c.method, "budget": c.budget, "backbone": c.budget, "seed": c.seed, "profile": c.profile,
            "value": 50.0 + names.index(c.method) + 0.3 * c.seed,
        }
        for c in cells
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _judged(chosen: list[dict], cells, suite: spec.Suite) -> dict[str, int]:
    """Per claim, how many of its comparisons the judge could make on ``cells``."""
    run = {"suite": suite.name, "profile": "full"}
    verdicts = claims.judge(chosen, _finished(cells), run)
    return {v.claim.id: sum(d["verdict"] != claims.NOT_RUN for d in v.details)
            for v in verdicts}  # fmt: skip


@pytest.mark.parametrize("patterns", [["t2.*"], ["fig5.*"], ["t3.c100.r34-rpg-11m", "fig4.rpg-gt-plain"]])
def test_the_selected_cells_are_enough_and_nothing_more(patterns):
    suite = spec.load("cifar")
    cells = runner.expand(suite, "full")
    chosen = select.match(patterns, claims.load())
    picked = select.cells_for(patterns, claims.load(), cells, suite)
    assert 0 < len(picked) < len(cells)
    judged = _judged(chosen, picked, suite)
    assert judged == _judged(chosen, cells, suite)  # the whole suite judges them no further
    assert all(n > 0 for n in judged.values()), judged
    groups = {(c.experiment, c.method, c.budget) for c in picked}
    for group in groups:
        fewer = [c for c in picked if (c.experiment, c.method, c.budget) != group]
        lost = _judged(chosen, fewer, suite)
        assert any(lost[i] < judged[i] for i in judged), f"{group} is selected but no claim reads it"


def test_an_unknown_pattern_is_one_line_naming_the_closest_ids(capsys):
    assert cli.main(["plan", "--suite", "cifar", "--claims", "t2.r34-rpg-globl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no claim id matches" in err and "t2.r34-rpg-global" in err


@pytest.mark.parametrize(
    ("pattern", "meant"),
    [
        ("table2", "did you mean t2.*?"),  # the paper's name for the experiment
        ("Table 8", "did you mean t8a.*,t8b.*,t8c.*?"),
        ("figure-5", "did you mean fig5.*?"),
        ("fig5", "did you mean fig5.*?"),  # a bare prefix: every claim under it, not the nearest id
        ("t3.in", "did you mean t3.in.*?"),
    ],
)
def test_an_unknown_pattern_suggests_what_it_meant(pattern, meant, capsys):
    assert cli.main(["plan", "--suite", "cifar", "--claims", pattern]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and meant in err
    suggested = meant.removeprefix("did you mean ").removesuffix("?")
    assert select.match(select.parse(suggested), claims.load())  # the suggestion is a working --claims


def test_patterns_match_without_regard_to_case():
    every = claims.load()
    assert all(c.id == c.id.lower() for c in every)  # ids are lower case: patterns are read so
    assert select.match(select.parse("T2.*"), every) == select.match(["t2.*"], every)
    assert select.parse("T2.*, FIG5.Both-Best") == ["t2.*", "fig5.both-best"]


def test_plan_costs_only_the_claims_cells(capsys):
    assert cli.main(["plan", "--suite", "cifar", "--claims", "fig5.*"]) == 0
    out = capsys.readouterr().out
    assert "claims fig5.*" in out and "fig5" in out and "table2" not in out
    total = next(line for line in out.splitlines() if line.strip().startswith("total"))
    assert int(total.split()[1]) == len(select.cells_for(["fig5.*"], claims.load(), runner.expand(
        spec.load("cifar"), "full"), spec.load("cifar")))  # fmt: skip


def test_the_claims_command_lists_every_claim_and_a_suites_costs(capsys):
    assert cli.main(["claims"]) == 0
    out = capsys.readouterr().out
    assert all(c.id in out and c.statement in out for c in claims.load())
    assert cli.main(["claims", "--suite", "digits"]) == 0
    out = capsys.readouterr().out
    mine = [c for c in claims.load() if any(e.startswith("digits/") for e in c.experiments)]
    assert mine and all(c.id in out for c in mine)
    assert (
        "full" in out and "smoke" in out and "CPU core-hours" in out and "GPU-hours" not in out
    )  # digits: a CPU suite


@pytest.mark.slow
def test_the_claims_command_says_what_each_profile_reads_and_judges_nothing_on_generated_data(capsys):
    assert cli.main(["claims", "--suite", "fashion"]) == 0
    out = capsys.readouterr().out
    assert "profile cpu: reads Fashion-MNIST (real) (judges claims)" in out
    assert "profile smoke: reads data the code generates in Fashion-MNIST's layout (judges nothing)" in out
    smoke = [line.split(None, 1)[1] for line in out.splitlines() if line.strip().startswith("smoke ")]
    assert smoke and all("not judged: generated data" in line or "no cell" in line for line in smoke)
    assert any("  judged" in line for line in out.splitlines() if line.strip().startswith("cpu "))
    # Each claim's note, and what stands in on other data, are shown with it.
    fig5 = next(c for c in claims.load() if c.id == "fig5.both-best")
    assert f"note: {fig5.note}" in out and "on a stand-in suite's data: budget 15%" in out


@pytest.mark.slow
def test_a_run_of_one_claim_runs_its_cells_and_shows_its_verdict_first(tmp_path):
    out = tmp_path / "out"
    argv = [
        *("--profile", "smoke", "--seeds", "1", "--out", str(out)),
        *("--no-progress", "--no-open", "--no-onnx", "--jobs", "1"),
    ]
    assert cli.main([*argv, "--claims", "qual.storage"]) == 0
    run = json.loads((out / "run.json").read_text())
    ran = {json.loads(p.read_text())["config"]["method"] for p in (out / "records").glob("*.json")}
    assert run["claims"] == ["qual.storage"] and ran == {"rpg"} and run["cells"] == 4  # rpg at its 4 budgets
    html = (out / "index.html").read_text()
    table = html[html.index('<th class="l">claim</th>') :]
    assert table.index("qual.storage") < min(table.index(c) for c in ("fig4.rpg-gt-plain", "t3.in.rpg-gt-plain"))
