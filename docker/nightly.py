"""The nightly's bookkeeping, for docker/nightly.sh (Python's standard library only: it runs
in the image, on the GitHub-hosted plan and Pages runners, and in the tests).

    nightly.py plan PROFILE SUITES ARGS        the shard matrix, as GitHub step outputs
    nightly.py baselines PROFILE ARGS SUITE... each suite's baseline run (gh api), as an output
    nightly.py shards DIR...                   the shard runs under DIR, at any depth
    nightly.py label OUT                       record $RPG_BENCH_RUN_ID/_URL in OUT/run.json
    nightly.py cells OUT                       every cell of OUT's run has an ok record
    nightly.py outcome OUT                     OUT/compare.json's outcome (none: no file)
    nightly.py summary OUT FILE LINE...        the night in markdown, and GitHub annotations
    nightly.py site DIR SITE [HISTORY]         the Pages site from every report under DIR, with
                                               the history sites under HISTORY (nightly_history.py)
    nightly.py accepted DEST RUN SUITE PROFILE a downloaded report is that run's SUITE at PROFILE

Bad arguments exit 2; a check that fails exits 1, saying why in one line per finding.
"""

from __future__ import annotations

import datetime
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Each profile's suites and shards when a dispatch names none: the nightly runs every GPU
# suite with a nightly profile (imagenet's does not fit a night: README), the weekly the
# paper's full recipe.
DEFAULT_SUITES = {
    "nightly": "cifar:4 pruning:2 pose:1 multitask:1",
    "full": "cifar:8 fashion:2",
    "smoke": "cifar:1 fashion:1",
}
BASELINE = "baseline-{profile}-{suite}"  # the artifact a clean night leaves for the next


def fail(message: str, code: int = 2) -> None:
    print(f"nightly.py: {message}", file=sys.stderr)
    sys.exit(code)


def plan(profile: str, suites: str, args: str) -> None:
    """GitHub step outputs: the profile, the shard matrix, the suites, the shards' extra
    rpg-bench arguments, and whether this run is comparable with a baseline (extra
    arguments change the cells, so a run with them is neither compared nor a baseline)."""
    if profile not in DEFAULT_SUITES:
        fail(f"profile {profile!r}: one of {', '.join(DEFAULT_SUITES)}")
    shards, names = [], []
    for item in (suites.strip() or DEFAULT_SUITES[profile]).split():
        m = re.fullmatch(r"([a-z0-9][a-z0-9_-]*):([1-9][0-9]*)", item)
        if not m:
            fail(f"suites: {item!r} is not SUITE:N (e.g. cifar:8)")
        if m[1] in names:
            fail(f"suites: {m[1]} is given twice")
        names.append(m[1])
        shards += [{"suite": m[1], "shard": k, "of": int(m[2])} for k in range(1, int(m[2]) + 1)]
    print(f"profile={profile}")
    print("args=" + " ".join(["--profile", profile, args.strip()]).strip())
    print(f"comparable={'false' if args.strip() else 'true'}")
    print("shards=" + json.dumps({"include": shards}))
    print("suites=" + json.dumps(names))


def _gh_artifacts(name: str) -> list[dict]:
    """The repository's artifacts called ``name``, newest first (expired ones included)."""
    repo = os.environ.get("GH_REPO") or fail("GH_REPO is not set (owner/name)")
    result = subprocess.run(
        ["gh", "api", f"repos/{repo}/actions/artifacts?name={name}&per_page=100"],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError((result.stderr.strip() or f"gh exited {result.returncode}").splitlines()[-1])
    found = json.loads(result.stdout).get("artifacts", [])
    return sorted(found, key=lambda a: a.get("created_at", ""), reverse=True)


def baselines(profile: str, args: str, suites: list[str]) -> None:
    """The ``baselines`` output: per suite, the run whose baseline artifact is the newest
    unexpired one (``run_id``) and what it means if none can be had (``if_missing``, which
    docker/nightly.sh merge fails the night with): empty only where no baseline is due (a
    first night, or a run with extra arguments)."""
    out = {}
    for suite in suites:
        name = BASELINE.format(profile=profile, suite=suite)
        if args.strip():
            note = f"extra rpg-bench arguments ({args.strip()}): not compared"
            entry = {"run_id": "", "if_missing": "", "note": note}
        else:
            try:
                found = _gh_artifacts(name)
            except (RuntimeError, ValueError, OSError) as e:
                found, error = None, str(e)
            if found is None:
                why = f"the baseline artifacts ({name}) could not be listed: {error}"
                entry = {"run_id": "", "if_missing": why, "note": why}
            elif not found:
                note = f"no run has kept a baseline ({name}) yet: this night will be the first"
                entry = {"run_id": "", "if_missing": "", "note": note}
            else:
                live = [a for a in found if not a.get("expired")]
                if live:
                    run = str(live[0]["workflow_run"]["id"])
                    when = live[0].get("created_at", "?")
                    why = f"the baseline artifact {name} of run {run} ({when}) could not be downloaded"
                    entry = {"run_id": run, "if_missing": why, "note": f"baseline: {name} of run {run} ({when})"}
                else:
                    last, when = found[0], found[0].get("created_at", "?")
                    why = (
                        f"the last baseline, {name} of run {last['workflow_run']['id']} ({when}), "
                        f"expired on {last.get('expires_at', '?')}; the next night whose cells all run becomes the "
                        "baseline, or dispatch the workflow with baseline: RUN_ID"
                    )
                    entry = {"run_id": "", "if_missing": why, "note": why}
        print(f"nightly.py: {suite}: {entry['note']}", file=sys.stderr)
        out[suite] = entry
    print("baselines=" + json.dumps(out))


def _runs_under(folder: Path) -> list[Path]:
    """Folders at any depth under ``folder`` (itself included) that hold a run.json; a run's
    own subfolders are not searched."""
    found = []
    for root, dirs, files in os.walk(folder):
        if "run.json" in files:
            found.append(Path(root))
            dirs.clear()
        else:
            dirs.sort()
    return found


def shards(folders: list[str]) -> None:
    """The shard runs under each folder, one a line, wherever the download put them: an
    artifact per folder (several matched), or one artifact's files straight in the folder
    (download-artifact does that when its pattern matches one). A folder (or a folder's
    subfolder) with no run.json is a shard that died before writing one: said, and left out;
    rpg-bench merge finds a shard that never arrived (every shard lists the run's cells)."""
    incomplete = False
    for folder in map(Path, folders):
        runs = _runs_under(folder)
        parts = [folder] if (folder / "run.json").is_file() else sorted(p for p in folder.iterdir() if p.is_dir())
        for part in parts:
            if not any(r == part or part in r.parents for r in runs):
                print(f"nightly.sh: {part} holds no shard run (no run.json): left out", file=sys.stderr)
                incomplete = True
        for run in runs:
            try:
                json.loads((run / "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                print(f"nightly.sh: {run} holds no readable shard run, left out: {e}", file=sys.stderr)
                incomplete = True
                continue
            print(run)
    sys.exit(1 if incomplete else 0)


def _write_json(path: Path, data: dict) -> None:
    """Atomically, with the mode the umask gives (as rpg-bench writes its files)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def label(out: Path) -> None:
    """Name the CI run that made OUT in its run.json (run_id, run_url), so that a report
    compared with it tomorrow names its baseline by run."""
    run_id, url = os.environ.get("RPG_BENCH_RUN_ID", ""), os.environ.get("RPG_BENCH_RUN_URL", "")
    if not run_id:
        return
    path = out / "run.json"
    run = json.loads(path.read_text(encoding="utf-8"))
    _write_json(path, run | {"run_id": run_id, **({"run_url": url} if url else {})})


def cells(out: Path) -> None:
    """Every cell the merged run lists must have an ok record: rpg-bench merge and report
    exit 0 with failed cells (the report shows them), and a cell whose shard was killed has
    no record at all."""
    keys = json.loads((out / "run.json").read_text(encoding="utf-8")).get("keys", [])
    bad = 0
    for key in keys:
        path = out / "records" / f"{key}.json"
        if not path.is_file():
            print(f"nightly.sh: cell {key}: no record (its shard did not finish it)", file=sys.stderr)
            bad += 1
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("status") != "ok":
            config = record.get("config", {})
            what = " ".join(str(config.get(f, "")) for f in ("experiment", "method", "budget", "seed"))
            status, error = record.get("status"), record.get("error", "")
            print(f"nightly.sh: cell {key} ({what}): {status}: {error}", file=sys.stderr)
            bad += 1
    print(f"nightly.sh: {len(keys) - bad} of {len(keys)} cells ok")
    sys.exit(1 if bad or not keys else 0)


def _comparison(out: Path) -> dict | None:
    try:
        return json.loads((out / "compare.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def outcome(out: Path) -> None:
    data = _comparison(out)
    print(data["outcome"] if data else "none")


def _escape(text: str) -> str:
    """A workflow command's message: GitHub's own escapes for %, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def summary(out: Path, file: Path, lines: list[str]) -> None:
    """The night in markdown (the job's step summary): nightly.sh's own findings (``lines``),
    then compare.json's summary, regressions, verdict changes and skips. With
    GITHUB_ACTIONS=true, each regression and lost claim is an error annotation and each
    skip a warning."""
    data = _comparison(out)
    run = json.loads((out / "run.json").read_text(encoding="utf-8")) if (out / "run.json").is_file() else {}
    md = [f"### {run.get('suite', out.name)} ({run.get('profile', '?')})", ""]
    md += [f"- {line}" for line in lines]
    annotations = []
    if data:
        md += ["", f"**{data['summary']}**", ""]
        for r in data["regressions"]:
            md.append(f"- :x: {r['line']}")
            annotations.append(("error", "regression", r["line"]))
        for c in data["claims_changed"]:
            md.append(f"- {':x:' if c['lost'] else ':grey_question:'} {c['line']}")
            if c["lost"]:
                annotations.append(("error", "claim lost", c["line"]))
        for s in data["skips"]:
            md.append(f"- :warning: {s['line']}")
            annotations.append(("warning", "not compared", s["line"]))
    file.write_text("\n".join(md) + "\n", encoding="utf-8")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        suite = run.get("suite", out.name)
        for level, title, message in annotations:
            print(f"::{level} title={suite}: {title}::{_escape(message)}")


def _reports_under(folder: Path) -> list[Path]:
    return [r for r in _runs_under(folder) if (r / "index.html").is_file()]


def site(folder: Path, dest: Path, history: Path | None = None) -> None:
    """The Pages site: each report under ``folder`` (at any depth: one artifact downloaded
    by a pattern lands straight in it) copied under its suite's name, an index with each
    suite's claims and comparison, and beside them the history sites under ``history``."""
    rows = []
    dest.mkdir(parents=True, exist_ok=True)
    for report in _reports_under(folder) if folder.is_dir() else []:
        run = json.loads((report / "run.json").read_text(encoding="utf-8"))
        suite = str(run.get("suite") or report.name)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", suite) or (dest / suite).exists():
            print(f"nightly.sh: {report}: suite {suite!r} is not a usable folder name or comes twice: left out")
            continue
        shutil.copytree(report, dest / suite, ignore=shutil.ignore_patterns("checkpoints", ".lock"))
        try:
            counts = json.loads((report / "claims.json").read_text(encoding="utf-8"))["summary"]
            claims = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
        except (OSError, ValueError, KeyError):
            claims = "no claims.json"
        data = _comparison(report)
        compared = data["summary"] if data else "not compared with a baseline"
        name = html.escape(suite)
        rows.append(
            f'<li><a href="{name}/index.html">{name}</a>: {html.escape(claims)}<br>{html.escape(compared)}</li>'
        )
    if not rows:
        fail(f"no report under {folder} to publish: the site keeps the last one", 1)
    import nightly_history  # beside this script, whose folder python3 puts on the path

    histories = nightly_history.publish(history, dest) if history is not None else []
    over_time = f"<h2>History</h2><ul>{''.join(histories)}</ul>" if histories else ""
    over_time += _documentation(dest)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    link = os.environ.get("RUN_URL", "")
    run = f', <a href="{html.escape(link)}">run</a>' if link else ""
    (dest / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>rpg-bench nightly</title>"
        f"<h1>rpg-bench nightly</h1><p>{date}{run}</p><ul>{''.join(rows)}</ul>{over_time}\n",
        encoding="utf-8",
    )
    print(f"nightly.sh: site: {len(rows)} reports in {dest}")


def _documentation(dest: Path) -> str:
    """The built documentation ($RPG_BENCH_SITE_DOCS, mkdocs' output) under the site's docs/,
    and the index's link to it; nothing when it was not built (its build failed) or the
    name is taken (a suite named docs keeps its place)."""
    docs = Path(os.environ.get("RPG_BENCH_SITE_DOCS") or "/nonexistent")
    if not (docs / "index.html").is_file():
        return ""
    if (dest / "docs").exists():
        print("nightly.sh: site: docs/ is taken (a suite named docs?): the documentation is not published tonight")
        return ""
    shutil.copytree(docs, dest / "docs")
    return '<p><a href="docs/index.html">Documentation</a>, as of this commit</p>'


def accepted(dest: Path, run: str, suite: str, profile: str) -> None:
    """Run RUN's report of SUITE, downloaded to DEST to become the baseline, is one: of that
    suite and profile (a baseline of another profile would be refused every night)."""
    try:
        meta = json.loads((dest / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"run {run}'s report-{suite} holds no report ({e})", 1)
    if meta.get("suite") != suite or meta.get("profile") != profile:
        fail(
            f"run {run}'s report-{suite} is suite {meta.get('suite')} at profile {meta.get('profile')}, "
            f"not {suite} at {profile}: not accepted",
            1,
        )
    keys = meta.get("keys", [])
    ok = 0
    for key in keys:
        path = dest / "records" / f"{key}.json"
        ok += path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("status") == "ok"
    print(f"nightly.sh: run {run}'s report of {suite} ({profile}, {ok} of {len(keys)} cells ok) is the new baseline")


# The comparisons the paper leads with: a weekly full run whose agreement with the nights
# changes one of these warns, whatever tau says.
HEADLINE = (
    "t1.c10.each-gt-mdeq", "t1.c100.each-gt-mdeq", "t2.rpg-gt-baselines", "t3.in.rpg-gt-plain",
    "fig4.rpg-gt-plain", "fig5.both-best", "t4.rpg-gt-cpm-2x", "t4.rpg-gt-cpm-4x", "t5.depth-rpg-gt-noreuse",
    "t6.order", "t7.on-par",
)  # fmt: skip
MIN_TAU = 0.8  # below it, the nights no longer rank the methods as the full run does


def agreement(out: Path) -> None:
    """The weekly check of the nightly's premise, from OUT/agree.json (rpg-bench agree of the
    week's last good night against the full run): one summary line, in the step summary too,
    and a warning annotation when tau < MIN_TAU or a headline claim changed (the run does not
    fail on it). Without agree.json (no good night to agree with) the warning says so."""
    path = out / "agree.json"
    if not path.is_file():
        line = "agreement: no good night this week to agree with: the nightly's premise was not checked"
        warn = True
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        tau, (low, high) = data["tau"], data["tau_ci"]
        changed = [c["id"] for c in data["claims"] if c["agreement"] == "changed"]
        headline = [c for c in changed if c in HEADLINE]
        shown = "n/a" if tau is None else f"{tau:.3f}"
        line = (
            f"agreement of the week's last good night with this full run: Kendall's tau {shown} "
            f"(95% [{low if low is None else round(low, 3)}, {high if high is None else round(high, 3)}]) over "
            f"{data['rows']} rows; claims changed: {', '.join(changed) or 'none'}"
        )
        warn = tau is None or tau < MIN_TAU or bool(headline)
        if warn:
            line += f" (warning: tau below {MIN_TAU} or a headline claim changed: {', '.join(headline) or 'none'})"
    print(f"nightly.sh: {line}")
    if warn and os.environ.get("GITHUB_ACTIONS"):
        print(f"::warning title=nightly premise::{_escape(line)}")
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as f:
            f.write(f"\n**{'Warning: ' if warn else ''}{line}**\n")


def main(argv: list[str]) -> None:
    if not argv:
        fail("no subcommand")
    command, rest = argv[0], argv[1:]
    need = {"plan": 3, "label": 1, "cells": 1, "outcome": 1, "accepted": 4, "agreement": 1}
    if command in need and len(rest) != need[command]:
        fail(f"{command} takes {need[command]} arguments, got {len(rest)}")
    if command == "plan":
        plan(*rest)
    elif command == "baselines":
        if len(rest) < 3:
            fail("baselines takes PROFILE ARGS SUITE...")
        baselines(rest[0], rest[1], rest[2:])
    elif command == "shards":
        shards(rest)
    elif command == "label":
        label(Path(rest[0]))
    elif command == "cells":
        cells(Path(rest[0]))
    elif command == "outcome":
        outcome(Path(rest[0]))
    elif command == "summary":
        if len(rest) < 2:
            fail("summary takes OUT FILE LINE...")
        summary(Path(rest[0]), Path(rest[1]), rest[2:])
    elif command == "site":
        if len(rest) not in (2, 3):
            fail(f"site takes DIR SITE [HISTORY], got {len(rest)} arguments")
        site(Path(rest[0]), Path(rest[1]), Path(rest[2]) if len(rest) == 3 else None)
    elif command == "accepted":
        accepted(Path(rest[0]), *rest[1:])
    elif command == "agreement":
        agreement(Path(rest[0]))
    else:
        fail(f"unknown subcommand {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
