"""The report: records -> pandas -> one self-contained HTML page (jinja2) + results.csv."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup
from scipy import stats

from suite import claims, methods, records, tasks
from suite.ledger import format_count, parse_count
from suite.report import compare, plots


def frame(recs: list[dict]) -> pd.DataFrame:
    """One row per cell: configuration, status, metric, ledger, run-time measurements."""
    rows = []
    for r in recs:
        c = r["config"]
        row = {k: c[k] for k in ("experiment", "task", "arch", "width", "method", "budget", "seed", "profile")}
        row.update(key=r["key"], status=r["status"], error=r.get("error", ""), seconds=r.get("seconds"))
        if r["status"] == "ok":
            row.update(metric=r["metric"], value=r["metrics"][r["metric"]], val=r["metrics"][f"val_{r['metric']}"])
            metrics = r["metrics"]
            # Metrics recorded beside the record's own (Table 5's normal RMSE), by name.
            row.update({m: metrics[m] for m in tasks.get(c["task"]).extra_metrics if m in metrics})
            if "train_minus_test" in metrics:  # Table 8's generalisation gap
                row.update(train_value=metrics[f"train_{r['metric']}"], train_minus_test=metrics["train_minus_test"])
            if "stages" in r:  # pruned or quantised: the model before, and the drop
                ((stage, before),) = r["stages"].items()
                row.update(value_before=metrics[f"{r['metric']}_before"], drop=metrics[f"{r['metric']}_drop"])
                row.update(stage=stage, backbone_before=before["ledger"]["backbone"])
                row.update(stored_bytes_before=before["ledger"]["stored_bytes"])
            row.update({k: r["ledger"][k] for k in ("learned", "backbone", "dense", "stored_bytes")})
            row.update(deviation_pct=100 * r["deviation"], best_epoch=r["training"]["best_epoch"])
            for form in ("deployed", "training"):
                for b in ("batch1", "batchN"):
                    lat = r["latency"][form][b]
                    row[f"latency_{form}_{b}_ms"] = lat["median_ms"]
                    row[f"latency_{form}_{b}_p90_ms"] = lat["p90_ms"]
                    row[f"latency_{form}_{b}_stable"] = lat.get("stable", True)
            onnx = r.get("onnx", {})
            row["onnx_status"] = onnx.get("status", "n/a")
            row["onnx_provider"] = onnx.get("provider", "")
            row["onnx_batch1_ms"] = onnx["batch1"]["median_ms"] if onnx.get("status") == "ok" else None
            row["onnx_matches"] = onnx.get("matches")
            row["forward_flops"] = r.get("flops", {}).get("forward_flops")
            row["forward_macs"] = row["forward_flops"] / 2 if row["forward_flops"] is not None else None
            for workload in ("inference", "train_step"):
                mem = r["memory"].get(workload, {})
                row[f"memory_{workload}_kind"] = mem.get("kind", "n/a")
                row[f"memory_{workload}_mb"] = mem.get("peak_mb", "n/a")
            solver = r.get("solver")
            if solver:  # an equilibrium model: its solver's caps and how its test solves went
                inference = solver.get("inference", {})
                row.update(
                    solver_f_max_iter=solver.get("f_max_iter"),
                    solver_b_max_iter=solver.get("b_max_iter"),
                    solver_iterations=inference.get("iterations"),
                    solver_rel_residual=inference.get("rel_residual"),
                )
            env = r["env"]
            row.update(device=env["device_name"], torch=env["torch"], git_commit=env.get("git_commit"))
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        # Within an experiment that runs several architectures a row is "arch/method".
        several = df.groupby("experiment")["arch"].transform("nunique") > 1
        df["entry"] = df["method"].where(~several, df["arch"] + "/" + df["method"])
    return df


def _number(value) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return "n/a"


def ci95(values: pd.Series) -> tuple[float, float]:
    """Student-t 95% confidence interval of the mean over seeds; infinite with one seed."""
    n, mean = len(values), float(values.mean())
    if n < 2:
        return -float("inf"), float("inf")
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / n**0.5)
    return mean - half, mean + half


def tied_ranks(rows: list[dict], higher_is_better: bool = True) -> None:
    """Rank rows by mean; a row whose CI overlaps the CI of the row ranked above it shares
    that row's rank: a difference inside the noise is a tie, not an ordering."""
    rows.sort(key=lambda r: -r["mean"] if higher_is_better else r["mean"])
    for i, r in enumerate(rows):
        above = rows[i - 1] if i else None
        overlap = above is not None and r["ci"][1] >= above["ci"][0] and above["ci"][1] >= r["ci"][0]
        r["rank"] = above["rank"] if overlap else i + 1
        r["tied"] = overlap or (i + 1 < len(rows) and _overlaps(r, rows[i + 1]))


def _overlaps(a: dict, b: dict) -> bool:
    return a["ci"][1] >= b["ci"][0] and b["ci"][1] >= a["ci"][0]


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The cells that finished (an empty frame has no status column)."""
    return df[df["status"] == "ok"] if len(df) else df


def _mean_std(values: pd.Series) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def paper_values(claim_list: list[dict], suite: str, experiment: str, metric: str | None = None) -> list[dict]:
    """The paper's value claims measured by this experiment: (method, budget, value, id);
    with ``metric``, only those of that metric (Table 8b's gaps are not PCKh values)."""
    out = []
    for c in claim_list:
        if metric is not None and c.get("metric", "top1") != metric:
            continue
        if c["kind"] == "value" and f"{suite}/{experiment}" in c.get("experiments", []) and c.get("budget"):
            out.append(
                {
                    "method": c["method"],
                    "arch": c.get("arch"),
                    "budget": parse_count(c["budget"]),
                    "value": c["value"],
                    "id": c["id"],
                    "label": f"{c['method']} {c['value']}",
                }
            )
    return out


def _extra(group: pd.DataFrame) -> list[str]:
    """The metrics recorded beside the group's own (Table 5's normal RMSE)."""
    return [m for m in tasks.get(group["task"].iloc[0]).extra_metrics if m in group and group[m].notna().all()]


def _leaderboards(ok: pd.DataFrame, claim_list: list[dict], suite: str) -> list[dict]:
    boards = []
    for (experiment, budget), group in ok.groupby(["experiment", "budget"], sort=True):
        extra = _extra(group)
        rows = []
        for entry, g in group.groupby("entry"):
            arch, method = g["arch"].iloc[0], g["method"].iloc[0]
            rows.append(
                {
                    "method": entry,
                    "n": len(g),
                    "mean": g["value"].mean(),
                    "ci": ci95(g["value"]),
                    "value": _mean_std(g["value"]),
                    "extra": [_mean_std(g[m]) for m in extra],
                    "backbone": int(g["backbone"].iloc[0]),
                    "deviation_pct": g["deviation_pct"].abs().max(),
                    "dense": int(g["dense"].iloc[0]),
                    "stored_kb": g["stored_bytes"].iloc[0] / 1024,
                    "deployed_ms": g["latency_deployed_batch1_ms"].median(),
                    "training_ms": g["latency_training_batch1_ms"].median(),
                    "deployed_n_ms": g["latency_deployed_batchN_ms"].median(),
                    "unstable": not bool(
                        g["latency_deployed_batch1_stable"].all() and g["latency_training_batch1_stable"].all()
                    ),
                    "onnx_ms": g["onnx_batch1_ms"].median(),
                    "onnx_provider": ", ".join(sorted({p for p in g["onnx_provider"] if p})),
                    "onnx_ok": bool((g["onnx_status"] == "ok").all() and g["onnx_matches"].all()),
                    "mflops": g["forward_flops"].iloc[0] / 1e6 if g["forward_flops"].notna().all() else None,
                    "memory": _number(g["memory_inference_mb"].iloc[0]),
                    "memory_train": _number(g["memory_train_step_mb"].iloc[0]),
                    "record_keys": list(g["key"]),
                    "seeds": sorted(int(x) for x in g["seed"]),
                    "commits": sorted({str(c)[:12] for c in g["git_commit"] if c}),
                    "paper": [
                        p
                        for p in paper_values(claim_list, suite, experiment, g["metric"].iloc[0])
                        if p["method"] == method and p["arch"] in (None, arch) and p["budget"] == budget
                    ],
                }
            )
        tied_ranks(rows, tasks.get(group["task"].iloc[0]).higher_is_better)
        boards.append(
            {
                "experiment": experiment,
                "budget": int(budget),
                "budget_label": format_count(budget),
                "metric": group["metric"].iloc[0],
                "extra": extra,
                "rows": rows,
            }
        )
    return boards


def _overview(ok: pd.DataFrame) -> list[dict]:
    out = []
    for experiment, g in ok.groupby("experiment", sort=True):
        budgets = sorted(g["budget"].unique())
        tables = {}
        for column in ["value", *_extra(g)]:
            table = []
            for method, m in g.groupby("entry"):
                cells = [_mean_std(m[m["budget"] == b][column]) if (m["budget"] == b).any() else "" for b in budgets]
                table.append({"method": method, "cells": cells})
            tables[g["metric"].iloc[0] if column == "value" else column] = table
        metric = g["metric"].iloc[0]
        out.append(
            {
                "experiment": experiment,
                "budgets": [format_count(b) for b in budgets],
                "metric": metric,
                "rows": tables.pop(metric),
                "extra": tables,
            }
        )
    return out


def _methods(ok: pd.DataFrame) -> list[dict]:
    """Every method in the run: what it is, and how its parameters are counted."""
    out = []
    for name in sorted(set(ok["method"]) & set(methods.METHODS)):  # records may outlive a method
        method = methods.METHODS[name]
        out.append({"name": name, "description": method.description, "counting": method.counting, "knob": method.knob})
    return out


def _solves(ok: pd.DataFrame) -> list[dict]:
    """Per experiment with an equilibrium model: each entry's solver iterations (where it
    solves) and deployed latency per image, and the solver's latency over each other entry's."""
    out = []
    if "solver_iterations" not in ok:
        return out
    for experiment, g in ok.groupby("experiment", sort=True):
        if g["solver_iterations"].isna().all():
            continue
        rows = []
        for entry, e in g.groupby("entry", sort=True):
            solves = e["solver_iterations"].notna().all()
            rows.append(
                {
                    "entry": entry,
                    "n": len(e),
                    "latency_ms": float(e["latency_deployed_batch1_ms"].mean()),
                    "solves": solves,
                    "caps": f"{int(e['solver_f_max_iter'].iloc[0])} / {int(e['solver_b_max_iter'].iloc[0])}"
                    if solves
                    else "",
                    "iterations": float(e["solver_iterations"].mean()) if solves else None,
                    "rel_residual": float(e["solver_rel_residual"].mean()) if solves else None,
                }
            )
        solvers = [r for r in rows if r["solves"]]
        ratios = [
            {"left": s["entry"], "right": r["entry"], "ratio": s["latency_ms"] / r["latency_ms"]}
            for s in solvers
            for r in rows
            if not r["solves"]
        ]
        out.append({"experiment": experiment, "rows": rows, "ratios": ratios})
    return out


def _compressed(ok: pd.DataFrame) -> list[dict]:
    """Per experiment with pruned or quantised models: each entry's metric before and after
    (mean and sd over seeds), the drop, and its backbone parameters and bytes before and after."""
    out = []
    if "drop" not in ok:
        return out
    for experiment, g in ok[ok["drop"].notna()].groupby("experiment", sort=True):
        rows = [
            {
                "entry": entry,
                "stage": e["stage"].iloc[0].removeprefix("before-"),
                "n": len(e),
                "before": float(e["value_before"].mean()),
                "before_sd": float(e["value_before"].std(ddof=1)) if len(e) > 1 else 0.0,
                "after": float(e["value"].mean()),
                "after_sd": float(e["value"].std(ddof=1)) if len(e) > 1 else 0.0,
                "drop": float(e["drop"].mean()),
                "backbone_before": int(e["backbone_before"].iloc[0]),
                "backbone": int(e["backbone"].iloc[0]),
                "bytes_before": int(e["stored_bytes_before"].iloc[0]),
                "bytes": int(e["stored_bytes"].iloc[0]),
            }
            for (entry, _), e in g.groupby(["entry", "budget"], sort=True)
        ]
        out.append({"experiment": experiment, "metric": g["metric"].iloc[0], "rows": rows})
    return out


def _gaps(ok: pd.DataFrame) -> list[dict]:
    """Per experiment that records it (Table 8): each entry's metric on the training split,
    on test, and the gap (train minus test) with its 95% CI over seeds."""
    out = []
    if "train_minus_test" not in ok:
        return out
    for experiment, g in ok[ok["train_minus_test"].notna()].groupby("experiment", sort=True):
        rows = []
        for (entry, budget), e in g.groupby(["entry", "budget"], sort=True):
            lo, hi = ci95(e["train_minus_test"].astype(float))
            rows.append(
                {
                    "entry": entry,
                    "budget": int(budget),
                    "n": len(e),
                    "train": float(e["train_value"].mean()),
                    "test": float(e["value"].mean()),
                    "gap": float(e["train_minus_test"].mean()),
                    "ci": (lo, hi),
                }
            )
        out.append({"experiment": experiment, "metric": g["metric"].iloc[0], "rows": rows})
    return out


def _plots(ok: pd.DataFrame, claim_list: list[dict], suite: str) -> dict[str, dict]:
    out = {}
    for experiment, g in ok.groupby("experiment", sort=True):
        metric = g["metric"].iloc[0]
        svg, fits = plots.metric_vs_params(g, metric, paper_values(claim_list, suite, experiment, metric))
        out[experiment] = {
            "metric_vs_params": Markup(svg),  # generated here from numbers; matplotlib escapes text
            "latency_vs_metric": Markup(plots.latency_vs_metric(g, metric)),
            "fits": fits,
        }
    return out


def render(out: Path, compare_to: Path | None = None) -> tuple[Path, list[str], list[dict]]:
    """Write OUT/index.html, OUT/results.csv and OUT/claims.json from OUT/records.

    Returns the HTML's path and, with ``compare_to``, the ids of claims that run
    reproduced and this one does not, and the rows whose metric regressed beyond noise.
    """
    run, recs = records.read_run(out)
    df = frame(recs)
    records.write_atomic(out / "results.csv", df.to_csv(index=False) if len(df) else "")
    ok = ok_rows(df)
    failed = df[df["status"] != "ok"] if len(df) else df
    env = next((r["env"] for r in recs if r["status"] == "ok"), {})
    claim_list = claims.load()
    verdicts = claims.judge(claim_list, ok, run)
    records.write_json(
        out / "claims.json",
        {
            "summary": claims.summary(verdicts),
            "claims": [
                {"id": v.claim["id"], "verdict": v.verdict, "reason": v.reason, "details": v.details} for v in verdicts
            ],
        },
    )
    suite = run.get("suite", "")
    plots = _plots(ok, claim_list, suite) if len(ok) else {}
    changes, lost = [], []
    if compare_to is not None:
        before, before_verdicts = compare.previous(compare_to)
        changes = compare.changes(ok, before)
        lost = compare.lost_claims(verdicts, before_verdicts)
    template = jinja2.Environment(
        loader=jinja2.PackageLoader("suite.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    ).get_template("index.html.j2")
    html = template.render(
        run=run,
        env=env,
        n_cells=len(df) + run.get("unrecorded", 0),
        n_ok=len(ok),
        failed=failed.to_dict("records"),
        overview=_overview(ok) if len(ok) else [],
        methods=_methods(ok) if len(ok) else [],
        solves=_solves(ok) if len(ok) else [],
        compressed=_compressed(ok) if len(ok) else [],
        gaps=_gaps(ok) if len(ok) else [],
        boards=_leaderboards(ok, claim_list, suite) if len(ok) else [],
        plots=plots,
        verdicts=sorted(verdicts, key=lambda v: v.verdict == claims.NOT_RUN),
        summary=claims.summary(verdicts),
        compare_to=str(compare_to) if compare_to else None,
        changes=changes,
        lost=lost,
        fmt=format_count,
    )
    path = out / "index.html"
    records.write_atomic(path, html)
    return path, lost, [c for c in changes if c["regression"]]
