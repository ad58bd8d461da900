"""The report: records -> pandas -> one self-contained HTML page (jinja2) + results.csv."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pandas as pd

from suite import records
from suite.ledger import format_count

RUN = "run.json"


def frame(recs: list[dict]) -> pd.DataFrame:
    """One row per cell: configuration, status, metric, ledger, run-time measurements."""
    rows = []
    for r in recs:
        c = r["config"]
        row = {k: c[k] for k in ("experiment", "task", "arch", "width", "method", "budget", "seed", "profile")}
        row.update(key=r["key"], status=r["status"], error=r.get("error", ""), seconds=r.get("seconds"))
        if r["status"] == "ok":
            row.update(metric=r["metric"], value=r["metrics"][r["metric"]], val=r["metrics"][f"val_{r['metric']}"])
            row.update({k: r["ledger"][k] for k in ("learned", "backbone", "dense", "stored_bytes")})
            row.update(deviation_pct=100 * r["deviation"], best_epoch=r["training"]["best_epoch"])
            for form in ("deployed", "training"):
                for b in ("batch1", "batchN"):
                    row[f"latency_{form}_{b}_ms"] = r["latency"][form][b]["median_ms"]
                    row[f"latency_{form}_{b}_p90_ms"] = r["latency"][form][b]["p90_ms"]
            row["memory_kind"] = r["memory"]["kind"]
            row["memory_peak_mb"] = r["memory"]["peak_mb"]
            env = r["env"]
            row.update(device=env["device_name"], torch=env["torch"], git_commit=env.get("git_commit"))
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_std(values: pd.Series) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def _leaderboards(ok: pd.DataFrame) -> list[dict]:
    boards = []
    for (experiment, budget), group in ok.groupby(["experiment", "budget"], sort=True):
        rows = []
        for method, g in group.groupby("method"):
            rows.append(
                {
                    "method": method,
                    "n": len(g),
                    "mean": g["value"].mean(),
                    "value": _mean_std(g["value"]),
                    "backbone": int(g["backbone"].iloc[0]),
                    "deviation_pct": g["deviation_pct"].abs().max(),
                    "dense": int(g["dense"].iloc[0]),
                    "stored_kb": g["stored_bytes"].iloc[0] / 1024,
                    "deployed_ms": g["latency_deployed_batch1_ms"].median(),
                    "training_ms": g["latency_training_batch1_ms"].median(),
                    "deployed_n_ms": g["latency_deployed_batchN_ms"].median(),
                    "memory": g["memory_peak_mb"].iloc[0],
                    "keys": ", ".join(g["key"]),
                }
            )
        rows.sort(key=lambda r: -r["mean"])
        for rank, r in enumerate(rows, 1):
            r["rank"] = rank
        boards.append(
            {
                "experiment": experiment,
                "budget": int(budget),
                "budget_label": format_count(budget),
                "metric": group["metric"].iloc[0],
                "rows": rows,
            }
        )
    return boards


def _overview(ok: pd.DataFrame) -> list[dict]:
    out = []
    for experiment, g in ok.groupby("experiment", sort=True):
        budgets = sorted(g["budget"].unique())
        table = []
        for method, m in g.groupby("method"):
            cells = [_mean_std(m[m["budget"] == b]["value"]) if (m["budget"] == b).any() else "" for b in budgets]
            table.append({"method": method, "cells": cells})
        out.append(
            {
                "experiment": experiment,
                "budgets": [format_count(b) for b in budgets],
                "metric": g["metric"].iloc[0],
                "rows": table,
            }
        )
    return out


def render(out: Path) -> Path:
    """Write OUT/index.html and OUT/results.csv from OUT/records; return the HTML's path."""
    recs = records.read_all(out)
    run_path = out / RUN
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.exists() else {}
    df = frame(recs)
    records.write_atomic(out / "results.csv", df.to_csv(index=False) if len(df) else "")
    ok = df[df["status"] == "ok"] if len(df) else df
    failed = df[df["status"] != "ok"] if len(df) else df
    env = next((r["env"] for r in recs if r["status"] == "ok"), {})
    template = jinja2.Environment(
        loader=jinja2.PackageLoader("suite.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    ).get_template("index.html.j2")
    html = template.render(
        run=run,
        env=env,
        n_cells=len(df),
        n_ok=len(ok),
        failed=failed.to_dict("records"),
        overview=_overview(ok) if len(ok) else [],
        boards=_leaderboards(ok) if len(ok) else [],
        fmt=format_count,
    )
    path = out / "index.html"
    records.write_atomic(path, html)
    return path
