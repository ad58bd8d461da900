"""The report: records -> pandas -> one self-contained HTML page (jinja2), results.csv,
leaderboard.csv, leaderboard.json, claims.json and, against a baseline, compare.json."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from suite import claims, records, tasks
from suite.claims.setting import gap_text
from suite.counting.ledger import format_count
from suite.report import comparison, cost, kept, leaderboard, rung, tables
from suite.report.frame import frame, ok_rows
from suite.report.page import template
from suite.report.tables import tied_ranks

__all__ = ["frame", "ok_rows", "render", "tied_ranks"]


NO_FIGURES = "matplotlib is not installed: no figure is drawn (pip install 'rpg-bench[report]' draws them)"


def _histories(recs: list[dict], ok: pd.DataFrame) -> pd.DataFrame:
    """One row per (ok cell, epoch): the validation metric each epoch of its training gave."""
    where = ok.set_index("key")[["experiment", "entry", "budget", "seed"]]
    rows = [
        {**where.loc[r["key"]].to_dict(), "step": step, "val": epoch["val"]}
        for r in recs
        if r["key"] in where.index
        for step, epoch in enumerate(r.get("training", {}).get("history", []), start=1)
        if epoch.get("val") is not None
    ]
    return pd.DataFrame(rows, columns=["experiment", "entry", "budget", "seed", "step", "val"])


def _plots(ok, recs: list[dict], claim_list: list[claims.Claim], views: dict, suite: str) -> dict[str, dict] | str:
    """Per experiment, its figures as inline SVG and the power-law fits drawn; or, without
    matplotlib, the line that says why there are none."""
    try:
        from suite.report import plots
    except ImportError:
        return NO_FIGURES
    out = {}
    histories = _histories(recs, ok)
    for experiment, g in ok.groupby("experiment", sort=True):
        metric, view = g["metric"].iloc[0], views[experiment]
        paper = [p for p in claims.paper_points(claim_list, view, suite, metric) if p["budget"] is not None]
        # The fit the power-law claims judge: below their fraction of each network's plain size.
        fractions = [
            c.below_fraction for c in claim_list if c.kind == "powerlaw" and f"{suite}/{experiment}" in c.experiments
        ]
        below = {a: min(fractions) * view.plain(a) for a in view.archs if fractions and view.plain(a)}
        svg, fits = plots.metric_vs_params(g, metric, paper, below)
        curves = histories[histories["experiment"] == experiment]
        out[experiment] = {
            "metric_vs_params": Markup(svg),  # generated here from numbers; matplotlib escapes text
            "latency_vs_metric": Markup(plots.latency_vs_metric(g, metric)),
            "learning_curves": Markup(plots.learning_curves(curves, metric)) if len(curves) else None,
            "fits": fits,
        }
    return out


def render(
    out: Path, compare_to: Path | None = None, no_baseline: str | None = None
) -> tuple[Path, dict | None, list[str]]:
    """Write OUT/index.html, OUT/results.csv, OUT/leaderboard.{csv,json} and OUT/claims.json
    from OUT/records; with ``compare_to`` (a baseline run) or ``no_baseline`` (why there is
    none), OUT/compare.json too. Without either, the page shows OUT/compare.json as a
    previous render left it (or says that the records have changed since).

    Returns the HTML's path, the comparison made (compare.json's content, or None), and
    lines for the user (figures kept from the previous page, or the page moved aside).
    A baseline that cannot be compared with is refused (UsageError) before anything is written.
    """
    run, recs = records.read_run(out)
    baseline = comparison.load(compare_to, run, recs) if compare_to is not None else None
    df = frame(recs)
    records.write_atomic(out / "results.csv", df.to_csv(index=False) if len(df) else "")
    ok = ok_rows(df)
    claim_list = claims.load()
    views = claims.views(ok, run)
    verdicts = claims.judge(claim_list, ok, run)
    records_digest = kept.digest(recs)
    ladder = rung.read(out, records_digest)  # what a compute ladder with this run as a rung said
    boards = _judgements(out, ok, run, claim_list, views, verdicts, ladder)
    made = None
    if compare_to is not None or no_baseline is not None:
        made = comparison.build(out, run, recs, ok, verdicts, baseline, no_baseline)
        comparison.write(out, made)
    shown, stale = (made, False) if made else comparison.read(out, records_digest)
    plots, notes, move_aside = _figures(out, ok, recs, claim_list, views, run.get("suite", ""), records_digest)
    html = _page(run, recs, df, ok, boards, plots, verdicts, shown, stale, records_digest, ladder)
    path = out / "index.html"
    if move_aside:
        os.replace(path, path.with_name(kept.PREVIOUS))
    records.write_atomic(path, html)
    return path, made, notes


def _judgements(out: Path, ok, run: dict, claim_list, views, verdicts, ladder: dict | None) -> list:
    """Write OUT/claims.json and the leaderboard (OUT/leaderboard.{csv,json}); return the
    leaderboard's boards. A claim a ladder judged carries ``ladder``: how it fared along it."""
    records.write_json(
        out / "claims.json",
        {
            "summary": claims.summary(verdicts),
            "by_scale": claims.by_scale(verdicts),
            "data": _data(ok),
            "claims": [_with_ladder(v.as_json(), rung.along(ladder, v.claim.id)) for v in verdicts],
        },
    )
    suite = run.get("suite", "")
    boards = tables.leaderboards(ok, claim_list, views, suite) if len(ok) else []
    table = leaderboard.rows(boards, verdicts)
    records.write_atomic(out / "leaderboard.csv", leaderboard.csv(table))
    records.write_json(out / "leaderboard.json", {"suite": suite, "profile": run.get("profile"), "rows": table})
    return boards


def _with_ladder(claim: dict, along: dict | None) -> dict:
    return claim if along is None else claim | {"ladder": along}


def _figures(
    out: Path, ok, recs, claim_list, views, suite: str, records_digest: str
) -> tuple[dict | str, list[str], bool]:
    """The page's figures (or, without matplotlib and no figures to keep, the line that says
    why there are none), lines for the user, and whether the previous page must be moved
    aside. Without matplotlib a render never deletes figures a render with it drew
    (suite.report.kept)."""
    plots = _plots(ok, recs, claim_list, views, suite) if len(ok) else {}
    notes, move_aside = [], False
    if isinstance(plots, str):  # no matplotlib
        experiments = sorted(ok["experiment"].unique()) if len(ok) else []
        figures, note, move_aside = kept.figures(out / "index.html", records_digest, experiments)
        plots = figures or plots
        notes += [note] if note else []
    return plots, notes, move_aside


def _page(
    run: dict, recs, df, ok, boards, plots, verdicts, shown, stale: bool, records_digest: str, ladder: dict | None
) -> str:
    """The HTML of OUT/index.html. ``shown``: the comparison shown (or None); ``stale``:
    whether the records have changed since it was made; ``ladder``: OUT/rung.json's content."""
    failed = df[df["status"] != "ok"] if len(df) else df
    env = next((r["env"] for r in recs if r["status"] == "ok"), {})
    order = {v: i for i, v in enumerate(claims.VERDICTS)}
    return template("index.html.j2").render(
        run=run,
        env=env,
        n_cells=len(df) + run.get("unrecorded", 0),
        n_ok=len(ok),
        failed=failed.to_dict("records"),
        data=_data(ok),
        overview=tables.overview(ok) if len(ok) else [],
        methods=tables.described_methods(ok) if len(ok) else [],
        solves=tables.solves(ok) if len(ok) else [],
        compressed=tables.compressed(ok) if len(ok) else [],
        gaps=tables.gaps(ok) if len(ok) else [],
        boards=boards,
        costs=cost.tables(ok, boards) if len(ok) else [],
        plots=plots,
        # A run of some claims (--claims) shows their verdicts first.
        verdicts=sorted(verdicts, key=lambda v: (not _asked(v.claim.id, run), order[v.verdict])),
        summary=claims.summary(verdicts),
        by_scale=claims.by_scale(verdicts),
        comparison=shown,
        comparison_stale=stale,
        label=comparison.label,
        records_meta=kept.meta(records_digest),
        figures_begin=kept.begin,
        figures_end=kept.end,
        fmt=format_count,
        scale_text=gap_text,
        along={v.claim.id: rung.along(ladder, v.claim.id) for v in verdicts},
    )


def _asked(claim_id: str, run: dict) -> bool:
    return any(fnmatch.fnmatchcase(claim_id, p) for p in run.get("claims", []))


def _data(ok) -> dict[str, dict]:
    """Per experiment, what its rows ran on: the data (and whether the code generated it)
    and each network's width, which a smaller profile shrinks from the suite's."""
    out = {}
    for experiment, g in ok.groupby("experiment", sort=True) if len(ok) else []:
        task = tasks.get(g["task"].iloc[0])
        out[experiment] = {
            "task": task.name,
            "dataset": task.dataset,
            "source": str(g["data_source"].iloc[0]) if "data_source" in g else "",
            "generated": g["profile"].iloc[0] in task.generated_profiles,
            "widths": {a: float(w) for a, w in g.groupby("arch")["width"].first().items()},
        }
    return out
