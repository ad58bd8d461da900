"""The nights of a history: output folders of rpg-bench (one per night, as the nightly keeps
them), read, judged and put in order of their start time.

A history is of one suite at one profile: runs of another than the majority's are left
out, one line each. A run that cannot be placed (no start time) or read (a record that is
truncated, or of a record version this rpg-bench cannot read) is skipped, saying why; one
of an older record version that the report still reads is read, saying so.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from suite import claims, records
from suite.cells import RECORD_VERSION
from suite.errors import UsageError
from suite.report.frame import frame, ok_rows


@dataclass
class Night:
    folder: Path
    run: dict
    started: datetime
    ok: pd.DataFrame  # the finished cells' rows (suite.report.frame)
    verdicts: dict[str, str]  # claim id -> verdict, judged by this rpg-bench
    commits: list[str]
    cells: int  # the run's cells (recorded or not)
    slug: str = ""  # its folder name under SITE/nights/, set once the nights are in order
    number: int = 0  # 1 for the oldest

    @property
    def suite(self) -> str:
        return str(self.run.get("suite", ""))

    @property
    def profile(self) -> str:
        return str(self.run.get("profile", ""))

    @property
    def commit(self) -> str | None:
        """The commit its records were measured at (several, space-separated, for shards
        measured at different commits; None when the records do not say)."""
        return " ".join(self.commits) or None

    @property
    def short(self) -> str:
        return " ".join(c[:7] for c in self.commits) or "commit unknown"

    @property
    def date(self) -> str:
        return self.started.isoformat(timespec="seconds")

    @property
    def run_id(self) -> str | None:
        return None if self.run.get("run_id") is None else str(self.run["run_id"])

    @property
    def run_url(self) -> str | None:
        return self.run.get("run_url")

    def identity(self) -> dict:
        return {
            "night": self.slug,
            "number": self.number,
            "folder": str(self.folder),
            "date": self.date,
            "commit": self.commit,
            "run_id": self.run_id,
            "run_url": self.run_url,
            "cells": self.cells,
            "cells_ok": len(self.ok),
        }


def _started(run: dict) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(run.get("started", "")))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # rpg-bench writes UTC


def _read(folder: Path, claim_list: list[claims.Claim]) -> tuple[Night | None, str | None]:
    """One night, or None and the line that says why it is skipped; a line also when it is
    read from an older record version."""
    if not (folder / records.RECORDS).is_dir() and not (folder / records.RUN).is_file():
        # Not a run at all (a night whose every cell died still has its run.json: read, with no cell).
        raise UsageError(f"history: {folder} holds no rpg-bench run (expected {folder / records.RUN})")
    try:
        run, recs = records.read_run(folder)
    except (UsageError, ValueError, OSError) as e:
        return None, f"{folder}: skipped: {e}"
    started = _started(run)
    if started is None:
        return None, f"{folder}: skipped: its run.json has no start time ({run.get('started')!r}), so it has no place"
    versions = sorted({r["config"].get("record_version", 0) for r in recs})
    try:
        ok = ok_rows(frame(recs))
        verdicts = {v.claim.id: v.verdict for v in claims.judge(claim_list, ok, run)}
    except (KeyError, TypeError, ValueError) as e:
        return None, (
            f"{folder}: skipped: its records (record version {', '.join(map(str, versions))}) cannot be read by "
            f"this rpg-bench, which writes version {RECORD_VERSION} ({type(e).__name__}: {e})"
        )
    note = None
    if versions and versions[0] < RECORD_VERSION:
        note = (
            f"{folder}: read: some records are of an older record version ({versions[0]}; this rpg-bench writes "
            f"{RECORD_VERSION}), read as the report reads them"
        )
    commits = sorted({c for c in ok["git_commit"].dropna()} if len(ok) else set())
    cells = len(run.get("keys", [])) or len(recs)
    return Night(folder, run, started, ok, verdicts, [str(c) for c in commits], cells), note


def _slug(night: Night) -> str:
    name = night.started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    tail = night.run_id or night.folder.name
    return f"{name}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', tail).strip('-.') or 'run'}"


def load(folders: list[Path]) -> tuple[list[Night], list[str]]:
    """The nights in order of their start time, and a line for every run left out, skipped,
    or read from older records. Refused (UsageError) when a folder holds no records, or no
    night is left."""
    claim_list = claims.load()
    seen, nights, notes = set(), [], []
    for folder in folders:
        if folder.resolve() in seen:
            notes.append(f"{folder}: given twice: read once")
            continue
        seen.add(folder.resolve())
        night, note = _read(folder, claim_list)
        notes += [note] if note else []
        if night is not None:
            nights.append(night)
    if not nights:
        raise UsageError("history: no night could be read (above: why each was skipped)")
    counts = collections.Counter((n.suite, n.profile) for n in nights)
    newest = max(nights, key=lambda n: n.started)
    suite, profile = max(counts, key=lambda k: (counts[k], k == (newest.suite, newest.profile)))
    for n in nights:
        if (n.suite, n.profile) != (suite, profile):
            notes.append(
                f"{n.folder}: left out: suite {n.suite or '?'} at profile {n.profile or '?'}, not the majority's "
                f"({suite} at {profile}, {counts[(suite, profile)]} runs)"
            )
    nights = sorted((n for n in nights if (n.suite, n.profile) == (suite, profile)), key=lambda n: n.started)
    slugs = collections.Counter()
    for i, n in enumerate(nights, start=1):
        base = _slug(n)
        slugs[base] += 1
        n.slug, n.number = base if slugs[base] == 1 else f"{base}-{slugs[base]}", i
    return nights, notes
