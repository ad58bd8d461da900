"""rpg-bench history: nights in, their history out (suite/history/).

Seven nights of Table 2 from the paper's own numbers (tests/history_nights.py), given out of
order, in which ResNet-34-RPG at 11M drops 3 points from the fifth night on: the history
names that row's step at the fifth night with its commit range, no other row, the claims
whose verdict changed there, and writes the feed. The step rule's false-alarm rate is
measured on series of 30 unchanged nights drawn from the committed samples' rows.
"""

import json
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from history_nights import DROP, DROP_FROM, NIGHTS, commit, write_nights

from suite import cli
from suite.history import steps

SCHEMA = jsonschema.Draft202012Validator(
    json.loads(resources.files("suite").joinpath("schemas/regressions.json").read_text())
)
ATOM = "{http://www.w3.org/2005/Atom}"
SAMPLES = sorted((Path(__file__).resolve().parent.parent / "reports" / "samples").glob("*/leaderboard.json"))
# The claims Table 2's drop must turn: its value, and the two orderings RPG leads.
TURNED = {"t2.r34-rpg-global", "t2.rpg-gt-baselines", "t2.global-gt-block"}


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    return write_nights(tmp_path_factory.mktemp("nights"))


@pytest.fixture(scope="module")
def history(nights, tmp_path_factory):
    site = tmp_path_factory.mktemp("site") / "site"
    assert cli.main(["history", *map(str, nights), "--out", str(site)]) == 0
    doc = json.loads((site / "regressions.json").read_text())
    SCHEMA.validate(doc)
    return site, doc


def test_the_drop_is_one_step_at_the_fifth_night_with_its_commit_range_and_no_other_row_moves(history):
    _, doc = history
    assert [n["number"] for n in doc["nights"]] == list(range(1, NIGHTS + 1))
    assert [n["commit"] for n in doc["nights"]] == [commit(i) for i in range(1, NIGHTS + 1)]
    rows = [c for c in doc["changes"] if c["kind"] == "row"]
    assert len(rows) == 1, [c["line"] for c in rows]
    (step,) = rows
    assert step["name"] == "table2 resnet34-cifar/rpg@11M" and step["measure"] == "metric"
    assert step["number"] == DROP_FROM and step["previous_number"] == DROP_FROM - 1
    assert step["commit"] == commit(DROP_FROM) and step["previous_commit"] == commit(DROP_FROM - 1)
    assert step["date"].startswith(f"2026-05-{DROP_FROM:02d}") and step["direction"] == "worse"
    assert step["size"] == pytest.approx(-DROP, abs=0.15) and step["before"] == pytest.approx(78.9, abs=0.15)
    assert step["noise"]["nights_before"] == DROP_FROM - 1 and step["noise"]["nights_after"] == NIGHTS - DROP_FROM + 1
    assert 0 < step["noise"]["night_sd"] < 0.2 and step["noise"]["min_effect"] == 0.5
    assert step["report"] == f"nights/{step['night']}/index.html"


def test_the_claims_that_turned_changed_at_that_night_and_no_claim_changed_elsewhere(history):
    _, doc = history
    turned = [c for c in doc["changes"] if c["kind"] == "claim"]
    assert {c["claim"] for c in turned} >= TURNED
    assert all(c["number"] == DROP_FROM for c in turned), [c["line"] for c in turned]
    lost = {c["claim"] for c in turned if c["lost"]}
    assert lost >= TURNED and all(c["before"] == "reproduced" for c in turned if c["claim"] in TURNED)


def test_the_feed_is_atom_newest_first_with_one_entry_per_change(history):
    site, doc = history
    root = ET.parse(site / "regressions.xml").getroot()
    assert root.tag == f"{ATOM}feed"
    for tag in ("title", "id", "updated", "author"):
        assert root.find(f"{ATOM}{tag}") is not None, tag
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == len(doc["changes"]) and entries
    for entry in entries:
        assert entry.find(f"{ATOM}id").text.startswith("urn:uuid:")
        datetime.strptime(entry.find(f"{ATOM}updated").text, "%Y-%m-%dT%H:%M:%SZ")
        assert entry.find(f"{ATOM}link").get("href")
    titles = [e.find(f"{ATOM}title").text for e in entries]
    assert any("table2 resnet34-cifar/rpg@11M top1" in t and t.startswith("worse") for t in titles)
    assert len({e.find(f"{ATOM}id").text for e in entries}) == len(entries)


def test_every_night_links_to_its_own_report_and_the_page_marks_the_step(history, nights):
    site, doc = history
    for n in doc["nights"]:
        copy = site / n["report"]
        assert copy.read_text() == (Path(n["folder"]) / "index.html").read_text()
    page = (site / "index.html").read_text()
    (step,) = [c for c in doc["changes"] if c["kind"] == "row"]
    assert f'id="step-{step["id"]}"' in page and f'id="{step["id"]}"' in page
    # Nothing fetched: no script, style or image from the network (links to the CI runs are links).
    assert not re.search(r'(src|href)="https?://(?!ci\.example/runs/)', page) and "url(http" not in page


def test_a_rebuild_gives_the_same_changes_with_the_same_ids(history, nights, tmp_path):
    _, doc = history
    assert cli.main(["history", *map(str, reversed(nights)), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "regressions.json").read_text())
    assert [c["id"] for c in again["changes"]] == [c["id"] for c in doc["changes"]]


def test_other_profiles_are_left_out_and_older_or_broken_records_say_what_became_of_them(nights, tmp_path, capsys):
    runs = []
    for folder in nights[:5]:
        runs.append(tmp_path / folder.name)
        shutil.copytree(folder, runs[-1])
    other = runs[0]  # labelled another profile: left out
    run = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps(run | {"profile": "smoke"}))
    older = runs[1]  # a record version the report still reads: read, saying so
    for path in (older / "records").glob("*.json"):
        record = json.loads(path.read_text())
        record["config"]["record_version"] = 2
        record["memory"]["inference"]["peak_mb"] = "n/a"  # how version 2 wrote a number not measured
        path.write_text(json.dumps(record))
    unreadable = runs[2]  # a record with no latency: this rpg-bench cannot read it
    first = sorted((unreadable / "records").glob("*.json"))[0]
    record = json.loads(first.read_text())
    del record["latency"]
    record["config"]["record_version"] = 1
    first.write_text(json.dumps(record))
    timeless = runs[3]
    run = json.loads((timeless / "run.json").read_text())
    (timeless / "run.json").write_text(json.dumps(run | {"started": "oracle"}))
    assert cli.main(["history", *map(str, runs), "--out", str(tmp_path / "site")]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((tmp_path / "site" / "regressions.json").read_text())
    assert [Path(n["folder"]) for n in doc["nights"]] == [older, runs[4]]
    notes = "\n".join(doc["left_out"])
    assert f"{other}: left out: suite cifar at profile smoke, not the majority's (cifar at full" in notes
    assert f"{older}: read: some records are of an older record version (2;" in notes
    assert f"{unreadable}: skipped: its records (record version 1, 3) cannot be read" in notes
    assert f"{timeless}: skipped: its run.json has no start time" in notes
    assert all(line in printed for line in doc["left_out"])


@pytest.mark.parametrize("where", ["no-such-folder", "inside"])
def test_bad_input_is_one_line_and_exit_2(nights, tmp_path, capsys, where):
    out = tmp_path / "site" if where != "inside" else nights[0] / "site"
    runs = [str(tmp_path / "no-such-folder")] if where == "no-such-folder" else [str(n) for n in nights]
    assert cli.main(["history", *runs, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("rpg-bench: error: history:")
    assert not out.exists()


def series(values_per_night: list[list[float]], name: str = "top1") -> steps.Series:
    return steps.Series(("e", "m", 1, "metric"), name, True, [np.array(v, float) for v in values_per_night])


def seeds(level: float, rng, n: int = 3, sd: float = 0.3) -> list[float]:
    return list(rng.normal(level, sd, n))


def test_a_one_night_dip_that_recovers_is_not_a_step_and_a_step_needs_a_second_night():
    rng = np.random.default_rng(3)
    dip = series([seeds(80 - (5 if i == 6 else 0), rng) for i in range(14)])
    _, found = steps.detect([dip])
    assert found == []
    newest = series([seeds(80 - (5 if i == 13 else 0), rng) for i in range(14)])
    assert steps.detect([newest])[1] == []  # one night at the new level: not yet a step
    confirmed = series([seeds(80 - (5 if i >= 12 else 0), rng) for i in range(14)])
    (step,) = steps.detect([confirmed])[1]
    assert step.night == 12 and step.previous == 11 and step.worse and step.size == pytest.approx(-5, abs=0.6)


def test_a_step_below_its_minimum_effect_is_not_reported_however_clear():
    rng = np.random.default_rng(5)
    tight = series([seeds(80 + (0.3 if i >= 10 else 0), rng, sd=0.01) for i in range(20)])
    assert steps.detect([tight])[1] == []
    slower = [np.array([2.0, 2.0, 2.0]) * (1.1 if i >= 10 else 1) for i in range(20)]
    latency = steps.Series(("e", "m", 1, "latency"), "latency_ms", False, slower)
    (step,) = steps.detect([latency])[1]  # 10% slower, with no spread at all: a step, and worse
    assert step.night == 10 and step.worse and step.size == pytest.approx(0.2)


def unchanged_nights(rng, nights: int = 30) -> list[steps.Series]:
    """Every committed sample row with two or more seeds, as ``nights`` unchanged nights:
    each night its seeds drawn from the row's mean and sd (leaderboard.json)."""
    out = []
    for path in SAMPLES:
        for r in json.loads(path.read_text())["rows"]:
            if r["n"] >= 2 and r["sd"] is not None:
                key = (f"{path.parent.name}/{r['experiment']}", r["entry"], r["budget"], "metric")
                values = [rng.normal(r["mean"], r["sd"], r["n"]) for _ in range(nights)]
                out.append(steps.Series(key, r["metric"], r["higher_is_better"], values))
    return out


@pytest.mark.slow
def test_the_false_alarm_rate_on_30_unchanged_nights_is_under_5_percent_of_rows():
    """docs/comparing/history.md states the rate measured here: 10 draws of every sample row's 30 nights."""
    rng = np.random.default_rng(41)
    rows = alarmed = 0
    for _ in range(10):
        drawn = unchanged_nights(rng)
        rows += len(drawn)
        alarmed += len({s.series.key for s in steps.detect(drawn)[1]})
    rate = alarmed / rows
    print(f"false alarms: {alarmed} of {rows} rows of 30 unchanged nights ({100 * rate:.2f}%)")
    assert rows > 500 and rate <= 0.05


def test_the_same_rows_show_a_real_step_of_a_point_and_a_half():
    """The rule is not quiet because it is deaf: each sample row given a step down of
    1.5 points after night 15 of 30 is found at night 16 in most rows."""
    rng = np.random.default_rng(42)
    drawn = unchanged_nights(rng)
    for s in drawn:
        s.values = [v - (1.5 if i >= 15 else 0.0) * (1 if s.higher else -1) for i, v in enumerate(s.values)]
    found = steps.detect(drawn)[1]
    at = {s.series.key for s in found if s.night == 15 and s.worse}
    assert len(at) / len(drawn) > 0.5


def test_without_matplotlib_the_site_says_why_it_draws_no_series_and_is_otherwise_whole(nights, tmp_path, monkeypatch):
    import sys

    from suite import history, report
    from suite.history import site

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in ("suite.history.plots", "suite.report.plots"):  # as in a fresh process without it
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delattr(report, "plots", raising=False)
    monkeypatch.delattr(history, "plots", raising=False)
    assert cli.main(["history", *map(str, nights), "--out", str(tmp_path / "site")]) == 0
    page = (tmp_path / "site" / "index.html").read_text()
    assert site.NO_FIGURES.replace("'", "&#39;") in page and "<svg" not in page
    assert 'id="timeline"' in page and (tmp_path / "site" / "regressions.xml").is_file()


def test_a_night_whose_every_cell_died_is_a_night_with_nothing_run(nights, tmp_path):
    """Its run.json and no record: every claim not run that night, each a change there and back."""
    runs = [tmp_path / f.name for f in nights]
    for folder, copy in zip(nights, runs, strict=True):
        shutil.copytree(folder, copy)
    dead = next(r for r in runs if json.loads((r / "run.json").read_text())["run_id"] == "7002")
    shutil.rmtree(dead / "records")
    assert cli.main(["history", *map(str, runs), "--out", str(tmp_path / "site")]) == 0
    doc = json.loads((tmp_path / "site" / "regressions.json").read_text())
    assert doc["nights"][1]["cells_ok"] == 0 and doc["nights"][1]["commit"] is None
    block = [c for c in doc["changes"] if c["claim"] == "t2.block-gt-plain"]
    assert [(c["number"], c["after"]) for c in block] == [(2, "not run"), (3, "reproduced")]
    page = (tmp_path / "site" / "index.html").read_text()
    flaky = re.findall(r'data-claim="([^"]+)"><td class="l"><code[^>]*>[^<]*</code> <b[^>]*>flaky</b>', page)
    assert "t2.rpg-gt-baselines" in flaky and "t2.block-gt-plain" not in flaky  # 3 changes and 2
    (step,) = [c for c in doc["changes"] if c["kind"] == "row"]  # the row's series skips the night
    assert step["number"] == DROP_FROM
