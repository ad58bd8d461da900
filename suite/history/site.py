"""The history's static site: SITE/index.html (self-contained like the report: inline SVG,
inline style and script, nothing fetched), and each night's own report copied to
SITE/nights/<night>/index.html so that the site links every night to it from disk."""

from __future__ import annotations

import shutil
from pathlib import Path

from markupsafe import Markup

from suite import records
from suite.history import changes as changes_
from suite.history.nights import Night
from suite.history.series import BY_NAME, FLAKY, row_name
from suite.history.steps import Noise, Series, Step
from suite.report.page import template

NO_FIGURES = "matplotlib is not installed: no series is drawn (pip install 'rpg-bench[report]' draws them)"
NIGHTS = "nights"


def copy_reports(nights: list[Night], out: Path) -> set[str]:
    """Each night's report (its folder's index.html: a self-contained page) into
    SITE/nights/<night>/; the nights that had one."""
    copied = set()
    for n in nights:
        page = n.folder / "index.html"
        if page.is_file():
            dest = out / NIGHTS / n.slug / "index.html"
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(".index.html.tmp")
            shutil.copyfile(page, tmp)
            tmp.replace(dest)
            copied.add(n.slug)
    return copied


def _rows(all_series: list[Series], noises: list[Noise], found: list[Step], nights: list[Night]) -> list[dict]:
    """Per leaderboard row: its measures' figure (or None without matplotlib), its steps'
    change ids, and each measure's noise."""
    try:
        from suite.history import plots
    except ImportError:
        plots = None
    by_series: dict[tuple, list[Step]] = {}
    for s in found:
        by_series.setdefault(s.series.key, []).append(s)
    ids = {id(s): changes_.step_id(s, nights) for s in found}
    grouped: dict[tuple, list[tuple[Series, Noise]]] = {}
    for s, n in zip(all_series, noises, strict=True):
        grouped.setdefault(s.key[:3], []).append((s, n))
    out = []
    for (experiment, entry, budget), members in grouped.items():
        name = row_name(experiment, entry, budget)
        steps = [ids[id(st)] for s, _ in members for st in by_series.get(s.key, [])]
        figure = None
        if plots is not None:
            figure = Markup(plots.row_figure([s for s, _ in members], by_series, ids, len(nights)))
        noise = [
            {"measure": s.name if s.key[3] == "metric" else BY_NAME[s.key[3]].label, "night_sd": n.night_sd}
            | {"seed_sd": n.seed_sd, "nights": len(s.present)}
            for s, n in members
        ]
        out.append({"name": name, "id": changes_.slug(f"row {name}"), "figure": figure, "steps": steps, "noise": noise})
    return out


def render(
    out: Path,
    doc: dict,
    nights: list[Night],
    all_series: list[Series],
    noises: list[Noise],
    found: list[Step],
    timeline: list[dict],
    never: int,
) -> Path:
    """SITE/index.html."""
    rows = _rows(all_series, noises, found, nights)
    by_id = {c["id"]: c for c in doc["changes"]}
    claim_changes = {(c["claim"], c["number"]): c for c in doc["changes"] if c["kind"] == "claim"}
    page = template("history.html.j2", "suite.history").render(
        doc=doc,
        nights=doc["nights"],
        rows=rows,
        by_id=by_id,
        anchors={sid: r["id"] for r in rows for sid in r["steps"]},
        timeline=timeline,
        claim_changes=claim_changes,
        never=never,
        missing="" if all(r["figure"] is not None for r in rows) else NO_FIGURES,
        minimum_nights=2 * doc["rule"]["min_nights"],
        flaky=FLAKY,
    )
    path = out / "index.html"
    records.write_atomic(path, page)
    return path
