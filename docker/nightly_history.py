"""The nightly's history, for docker/nightly.sh history and site (Python's standard library
only, like nightly.py: it runs in the image and on the Pages runner).

    nightly_history.py keep DIR STORE      each run under DIR kept as STORE/PROFILE/SUITE/NIGHT
    nightly_history.py nights STORE N      per suite and profile in STORE, its newest N nights

STORE is the work tree of the `history` branch in CI (docker/README.md: why a branch and not
artifacts). A NIGHT's folder name is its start time in UTC, then its CI run id, so names
sort by time. Bad arguments exit 2 with one line.
"""

from __future__ import annotations

import datetime
import html
import json
import re
import shutil
import sys
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a suite, profile or night, as a folder name
SKIP = ("checkpoints", "logs", ".lock", "*.tmp")  # what a kept night leaves out: large, and no result


def _runs_under(folder: Path) -> list[Path]:
    """Folders at any depth under ``folder`` (itself included) that hold a run.json."""
    found = []
    for run in sorted(folder.rglob("run.json")):
        if not any(p in found for p in run.parents):
            found.append(run.parent)
    return found


def _night(run: dict) -> tuple[str, str] | None:
    """A kept night's folder name and its CI run part; None without a start time."""
    try:
        started = datetime.datetime.fromisoformat(str(run.get("started", "")))
    except ValueError:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=datetime.UTC)  # rpg-bench writes UTC
    tail = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(run.get("run_id") or "local")).strip("-.") or "local"
    return f"{started.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}-{tail}", tail


def keep(folder: Path, store: Path) -> None:
    """Each run under ``folder`` (tonight's reports) kept as STORE/PROFILE/SUITE/NIGHT: its
    records, run.json and report files, no checkpoints or logs. A night of the same CI run
    kept before (an earlier attempt of a re-run workflow) is replaced."""
    runs = _runs_under(folder) if folder.is_dir() else []
    if not runs:
        print(f"nightly.sh: no report under {folder}: nothing kept tonight")
    for report in runs:
        try:
            run = json.loads((report / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"nightly.sh: {report}: no readable run.json, not kept: {e}", file=sys.stderr)
            continue
        suite, profile, night = str(run.get("suite", "")), str(run.get("profile", "")), _night(run)
        if not (NAME.fullmatch(suite) and NAME.fullmatch(profile)) or night is None:
            print(f"nightly.sh: {report}: no usable suite, profile or start time: not kept", file=sys.stderr)
            continue
        name, tail = night
        where = store / profile / suite
        where.mkdir(parents=True, exist_ok=True)
        tmp = where / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(report, tmp, ignore=shutil.ignore_patterns(*SKIP))
        if run.get("run_id"):
            for old in where.glob(f"*-{tail}"):
                shutil.rmtree(old)
        tmp.rename(where / name)
        print(f"nightly.sh: kept {suite} ({profile}) as {where / name}")


def nights(store: Path, count: int) -> None:
    """Per suite and profile kept in ``store``, one line: SUITE-PROFILE, then its newest
    ``count`` nights' folders (relative to STORE, oldest first), tab-separated."""
    for profile in sorted(p for p in store.iterdir() if p.is_dir() and NAME.fullmatch(p.name)):
        for suite in sorted(p for p in profile.iterdir() if p.is_dir() and NAME.fullmatch(p.name)):
            kept = sorted(n for n in suite.iterdir() if NAME.fullmatch(n.name) and (n / "run.json").is_file())
            if kept:
                print("\t".join([f"{suite.name}-{profile.name}", *(str(n.relative_to(store)) for n in kept[-count:])]))


def publish(history: Path, dest: Path) -> list[str]:
    """Each history site under ``history`` (nightly.sh history's SITE, a folder per suite and
    profile) copied to DEST/history/; the Pages index's lines for them."""
    if not history.is_dir():
        print(f"nightly.sh: no history tonight ({history} does not exist): the site has the reports only")
        return ["<li>No history tonight: the history job did not run or failed (its log says why).</li>"]
    rows = []
    for site in sorted(p for p in history.iterdir() if p.is_dir() and (p / "index.html").is_file()):
        shutil.copytree(site, dest / "history" / site.name)
        try:
            doc = json.loads((site / "regressions.json").read_text(encoding="utf-8"))
            said = (
                f"{doc['suite']} ({doc['profile']}): {len(doc['nights'])} nights from "
                f"{doc['nights'][0]['date'][:10]}, {len(doc['changes'])} changes"
            )
        except (OSError, ValueError, KeyError, IndexError):
            said = f"{site.name}: no regressions.json"
        name = html.escape(site.name)
        rows.append(
            f'<li><a href="history/{name}/index.html">{html.escape(said)}</a> '
            f'(<a href="history/{name}/regressions.xml">Atom feed</a>)</li>'
        )
    print(f"nightly.sh: site: {len(rows)} histories")
    return rows or ["<li>No history yet: no night has been kept.</li>"]


def main(argv: list[str]) -> None:
    def fail(message: str) -> None:
        print(f"nightly_history.py: {message}", file=sys.stderr)
        sys.exit(2)

    if len(argv) != 3 or argv[0] not in ("keep", "nights"):
        fail("usage: nightly_history.py keep DIR STORE | nights STORE N")
    if argv[0] == "keep":
        keep(Path(argv[1]), Path(argv[2]))
    elif not argv[2].isdigit() or int(argv[2]) < 1:
        fail(f"nights: N must be a whole number of nights, not {argv[2]!r}")
    else:
        nights(Path(argv[1]), int(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
