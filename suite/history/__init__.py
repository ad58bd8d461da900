"""`rpg-bench history RUN... --out SITE`: a folder of nights made into their history, as
the dashboards people watch nightlies on give it (airspeed velocity, TorchBench, wpt.fyi).

RUNs are output folders, one per night, in any order: ordered by their start time, of one
suite and profile (suite.history.nights). SITE gets a static, self-contained site:

- index.html: every claim's verdict night by night, with a changes-only view and, for
  each change, the night, date and commit range it happened in; every leaderboard row's
  metric, latency and memory night by night with their 95% bands, and each step found
  (suite.history.steps) marked where it happened with its size; the nights, each linked
  to its own report;
- regressions.json (suite/schemas/regressions.json) and regressions.xml (Atom): every change
  found (suite.history.changes);
- nights/<night>/index.html: each night's own report, copied.

Exit 0 when the history was written (a history reports; the night's comparison is what
fails a night), 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from suite import records
from suite.errors import UsageError
from suite.history import changes as changes_
from suite.history import nights as nights_
from suite.history import series, site, steps

__all__ = ["arguments", "build", "main"]


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs", nargs="+", metavar="RUN", help="output folders of one suite and profile, one per night (any order)"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="SITE",
        help="the site's folder: index.html, regressions.json, regressions.xml, nights/",
    )


def build(folders: list[Path], out: Path) -> dict:
    """Write SITE from the nights in ``folders``; returns regressions.json's content."""
    out_at = out.resolve()
    for folder in folders:
        if folder.resolve() == out_at or folder.resolve() in out_at.parents:
            raise UsageError(f"history: --out {out} is (inside) the run {folder}: give the site a folder of its own")
    nights, notes = nights_.load(folders)
    all_series = series.rows(nights)
    noises, found = steps.detect(all_series)
    timeline, never = series.timeline(nights)
    out.mkdir(parents=True, exist_ok=True)
    copied = site.copy_reports(nights, out)
    changes = changes_.collect(found, timeline, nights, copied)
    doc = changes_.document(nights, changes, notes, copied)
    records.write_json(out / "regressions.json", doc)
    records.write_atomic(out / "regressions.xml", changes_.feed(doc))
    site.render(out, doc, nights, all_series, noises, found, timeline, never)
    return doc


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    doc = build([Path(r) for r in args.runs], out)
    for line in doc["left_out"]:
        print(f"history: {line}")
    nights = doc["nights"]
    print(
        f"history: {len(nights)} night{'s' * (len(nights) != 1)} of {doc['suite']} ({doc['profile']}), "
        f"{nights[0]['date']} to {nights[-1]['date']}: {len(doc['changes'])} change{'s' * (len(doc['changes']) != 1)}"
    )
    for change in doc["changes"]:
        print(f"  {change['line']}")
    print(f"history: {out / 'index.html'}")
    return 0
