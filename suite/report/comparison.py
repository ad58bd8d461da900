"""compare.json: a run set against a baseline, as data. The terminal's summary, the
report's "Changes against" section and CI (docker/nightly.sh) all read this one dict.

A comparison has one outcome and the exit code that goes with it:

- ``refused`` (exit 2, nothing written): the runs differ in profile or in a recorded
  recipe field of a row they share (10 epochs against 2): their difference is not a
  regression. Raised by ``load`` as a UsageError naming the fields.
- ``regressed`` (1): a row worse beyond noise (suite.report.compare), or a claim the
  baseline reproduced that this run does not.
- ``incomplete`` (1): nothing regressed among the rows compared, but something could not be
  compared in full: a row with fewer seeds than in the baseline (one seed cannot show a
  regression), a row only the baseline has, a shard not merged, a cell without a record or
  failed. Each is a ``skip``, said in one line; an incomplete comparison is never a pass.
- ``not compared`` (1): there was no baseline to compare with, for a reason CI gives
  (``rpg-bench report OUT --no-baseline REASON``: the baseline artifact expired, say).
- ``clean`` (0): every row compared on all its seeds, none regressed, no claim lost.

The file names both runs (folder, CI run id and URL where the nightly set them, start
date, the commits their records were measured at) and the digest of the records the
comparison was drawn from, so a re-render keeps showing it only while the records are
the same.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd

from suite import records
from suite.errors import UsageError
from suite.report import compare, kept
from suite.report.frame import frame, ok_rows

FILE = "compare.json"
VERSION = 1
CLEAN, REGRESSED, INCOMPLETE, NOT_COMPARED = "clean", "regressed", "incomplete", "not compared"


@dataclasses.dataclass
class Baseline:
    folder: Path
    run: dict
    recs: list[dict]
    verdicts: dict[str, str]  # claim id -> verdict, as the baseline's claims.json has them


def load(prev: Path, run: dict, recs: list[dict]) -> Baseline:
    """The baseline at ``prev``, refused (UsageError) when it holds no records, ran another
    profile, or a row both runs share was trained with another recipe."""
    flag = f"--compare {prev}"
    if not (prev / records.RECORDS).is_dir():
        raise UsageError(f"{flag}: it holds no rpg-bench records (expected {prev / records.RECORDS}/)")
    then, then_recs = records.read_run(prev)
    profile, their = run.get("profile"), then.get("profile")
    if profile and their and profile != their:
        raise UsageError(f"{flag}: it ran profile {their}, this run {profile}; compare runs of one profile")
    differ = recipe_differences(recs, then_recs)
    if differ:
        raise UsageError(
            f"{flag}: the recipes differ in {differ}; a change of recipe is not a regression: "
            "compare runs of one recipe"
        )
    verdicts = {}
    path = prev / "claims.json"
    if path.exists():
        try:
            verdicts = {c["id"]: c["verdict"] for c in json.loads(path.read_text(encoding="utf-8"))["claims"]}
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(f"{flag}: {path} is unreadable ({type(e).__name__}: {e})") from None
    return Baseline(prev, then, then_recs, verdicts)


def _settings(recs: list[dict]) -> dict[tuple, dict[str, set[str]]]:
    """Per row (experiment, arch, method, budget): each recorded recipe field's values, and the width."""
    out: dict[tuple, dict[str, set[str]]] = {}
    for r in recs:
        c = r["config"]
        fields = {**c.get("recipe", {}), "width": c.get("width")}
        row = out.setdefault((c["experiment"], c["arch"], c["method"], c["budget"]), {})
        for name, value in fields.items():
            row.setdefault(name, set()).add(json.dumps(value, sort_keys=True))
    return out


def recipe_differences(now: list[dict], before: list[dict]) -> str:
    """The recipe fields in which rows both runs hold differ, with an example each ("" if
    none). A field only one side records (a format older than the field) is not compared."""
    a, b = _settings(now), _settings(before)
    differ: dict[str, tuple[set[str], set[str]]] = {}
    for row in sorted(a.keys() & b.keys(), key=str):
        for name in sorted(a[row].keys() & b[row].keys()):
            if a[row][name] != b[row][name]:
                differ.setdefault(name, (a[row][name], b[row][name]))
    return ", ".join(f"{n} ({'/'.join(sorted(x))} here, {'/'.join(sorted(y))} there)" for n, (x, y) in differ.items())


def identity(folder: Path, run: dict, recs: list[dict]) -> dict:
    """Which run this is: its folder, the CI run that made it (nightly.sh records one),
    when it started, and the commits its records were measured at."""
    commits = {r.get("env", {}).get("git_commit") for r in recs if r["status"] == "ok"}
    return {
        "folder": str(folder),
        "suite": run.get("suite"),
        "profile": run.get("profile"),
        "id": None if run.get("run_id") is None else str(run["run_id"]),
        "url": run.get("run_url"),
        "date": run.get("started"),
        "commits": sorted(c for c in commits if c),
    }


def label(who: dict) -> str:
    """A run in a few words: "run 123 (started 2025-01-02T03:00:00, commit 1a2b3c4)"."""
    name = f"run {who['id']}" if who.get("id") else who["folder"]
    commits = [c[:7] for c in who["commits"]]
    commit = f"commit {commits[0]}" if len(commits) == 1 else f"commits {', '.join(commits)}" if commits else None
    return f"{name} (started {who.get('date') or 'unknown'}, {commit or 'commit unknown'})"


def _row_name(r: dict) -> str:
    return f"{r['experiment']} {r['entry']}@{r['budget']}"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no infinity: an unbounded side is null


def _row(r: dict) -> dict:
    """A row compared, as compare.json holds it."""
    flag = "regression" if r["regression"] else "improvement" if r["improvement"] else "within noise"
    low, high = r["ci"]
    row = {k: r[k] for k in ("experiment", "entry", "budget", "metric", "before", "now", "n_before", "n_now")}
    row |= {"diff": r["diff"], "ci_low": _finite(low), "ci_high": _finite(high), "p": r["p"]}
    row |= {"min_effect": r["min_effect"], "flag": flag}
    interval = f"[{low:+.2f}, {high:+.2f}]"
    row["line"] = (
        f"{flag}: {_row_name(r)}: {r['metric']} {r['before']:.2f} -> {r['now']:.2f} "
        f"({r['diff']:+.2f}, better +; 95% CI {interval}; p {r['p']:.2g}, minimum effect {r['min_effect']:.2g})"
    )
    return row


def _cells(run: dict, recs: list[dict]) -> list[dict]:
    """This run's cells that cannot be in the comparison: shards not merged, cells with no
    record, cells that failed."""
    out = []
    missing = run.get("missing_shards", [])
    if missing:
        line = f"shards {', '.join(missing)} were not merged: their cells have no record"
        out.append({"kind": "shard", "line": line})
    if run.get("unrecorded"):
        why = "in the shards not merged" if missing else "not run, or interrupted"
        out.append({"kind": "cells", "line": f"{run['unrecorded']} of this run's cells have no record ({why})"})
    failed = [r for r in recs if r["status"] != "ok"]
    if failed:
        out.append({"kind": "cells", "line": f"{len(failed)} of this run's cells failed (the report lists them)"})
    return out


def build(out: Path, run: dict, recs: list[dict], ok: pd.DataFrame, verdicts: list, baseline: Baseline | None,
          missing: str | None = None) -> dict:  # fmt: skip
    """compare.json's content: this run against ``baseline``, or, with none, why (``missing``)."""
    data = {
        "compare_version": VERSION,
        "run": identity(out, run, recs) | {"records_digest": kept.digest(recs)},
        "baseline": None,
        "criteria": {
            "false_discovery_rate": compare.FALSE_DISCOVERY_RATE,
            "min_effect": compare.MIN_EFFECT,
            "min_relative": compare.MIN_RELATIVE,
        },
        "rows_compared": 0,
        "regressions": [],
        "improvements": [],
        "rows": [],
        "not_compared": [],
        "claims_changed": [],
        "skips": [],
    }
    if baseline is None:
        data["skips"].append({"kind": "baseline", "line": f"not compared: {missing or 'no baseline was given'}"})
        return _conclude(data)
    data["baseline"] = identity(baseline.folder, baseline.run, baseline.recs)
    data["skips"] += _cells(run, recs)
    for r in compare.changes(ok, ok_rows(frame(baseline.recs))):
        if r["status"] == "both":
            row = _row(r)
            data["rows"].append(row)
            if r["n_now"] < r["n_before"]:
                data["skips"].append(
                    {"kind": "seeds", "row": _row_name(r), "line": f"{_row_name(r)}: {r['n_now']} of the baseline's "
                     f"{r['n_before']} seeds here: compared, but a regression there may not show"}
                )  # fmt: skip
        elif r["status"] == "new":
            data["not_compared"].append(_where(r) | {"reason": "not in the baseline"})
        else:
            reason = f"no finished cell here (the baseline had {r['n_before']} seeds)"
            data["not_compared"].append(_where(r) | {"reason": reason})
            data["skips"].append({"kind": "row", "row": _row_name(r), "line": f"{_row_name(r)}: {reason}"})
    data["rows_compared"] = len(data["rows"])
    data["regressions"] = [r for r in data["rows"] if r["flag"] == "regression"]
    data["improvements"] = [r for r in data["rows"] if r["flag"] == "improvement"]
    for c in compare.verdict_changes(verdicts, baseline.verdicts):
        what = " (lost: a failure)" if c["lost"] else " (not a failure)" if c["weakened"] else ""
        data["claims_changed"].append(c | {"line": f"claim {c['id']}: {c['before']} -> {c['now']}{what}"})
    return _conclude(data)


def _where(r: dict) -> dict:
    return {k: r[k] for k in ("experiment", "entry", "budget", "metric")}


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _conclude(data: dict) -> dict:
    """The outcome, its exit code and why, and the one summary line."""
    lost = [c for c in data["claims_changed"] if c["lost"]]
    skips = data["skips"]
    if data["baseline"] is None:
        outcome, code = NOT_COMPARED, 1
        why = f"nothing was compared ({skips[0]['line'].removeprefix('not compared: ')}), which is not a pass"
    elif data["regressions"] or lost:
        outcome, code = REGRESSED, 1
        parts = [_plural(len(data["regressions"]), "row") + " regressed"] if data["regressions"] else []
        parts += [_plural(len(lost), "claim") + " the baseline reproduced not reproduced here"] if lost else []
        why = " and ".join(parts)
    elif skips:
        outcome, code = INCOMPLETE, 1
        why = (
            f"incomplete: {_plural(len(skips), 'thing')} could not be compared in full (listed), "
            "and a comparison that could not be made is not a pass"
        )
    else:
        outcome, code = CLEAN, 0
        why = "no regression and no claim lost, every row compared on all its seeds"
    data.update(outcome=outcome, exit_code=code, exit_reason=why)
    if data["baseline"] is None:
        data["summary"] = f"compare: not compared; exit {code}: {why}"
        return data
    changed = len(data["claims_changed"])
    data["summary"] = (
        f"compare against {label(data['baseline'])}: {_plural(data['rows_compared'], 'row')} compared, "
        f"{_plural(len(data['regressions']), 'regression')}, {_plural(len(data['improvements']), 'improvement')}, "
        f"{_plural(changed, 'claim')} changed verdict, {_plural(len(data['not_compared']), 'row')} not compared; "
        f"exit {code}: {why}"
    )
    return data


def problems(data: dict) -> list[str]:
    """The lines a terminal (or CI) must show beside the summary: regressions, claims
    whose verdict changed, and everything skipped."""
    return (
        [r["line"] for r in data["regressions"]]
        + [c["line"] for c in data["claims_changed"]]
        + [s["line"] for s in data["skips"]]
    )


def write(out: Path, data: dict) -> Path:
    path = out / FILE
    records.write_json(path, data)
    return path


def read(out: Path, records_digest: str) -> tuple[dict | None, bool]:
    """OUT's compare.json as a render without --compare keeps it, and whether it is stale
    (drawn from other records than OUT's now)."""
    path = out / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None, False
    return data, data.get("run", {}).get("records_digest") != records_digest
