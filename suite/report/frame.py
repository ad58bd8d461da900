"""Records as one table: a row per cell, with its configuration, status, metrics, ledger
and run-time measurements (what results.csv holds, and what the report and claims read)."""

from __future__ import annotations

import pandas as pd

from suite import tasks


def frame(recs: list[dict]) -> pd.DataFrame:
    """One row per cell: configuration, status, metric, ledger, run-time measurements."""
    df = pd.DataFrame([_row(r) for r in recs])
    if len(df):
        # Within an experiment that runs several architectures a row is "arch/method".
        several = df.groupby("experiment")["arch"].transform("nunique") > 1
        df["entry"] = df["method"].where(~several, df["arch"] + "/" + df["method"])
    return df


def _row(r: dict) -> dict:
    """A record's row (its columns in results.csv's order): the cell and its status, and for
    a finished cell its metrics, measurements, solver and environment."""
    c = r["config"]
    row = {k: c[k] for k in ("experiment", "task", "arch", "width", "method", "budget", "seed", "profile")}
    row.update(key=r["key"], status=r["status"], error=r.get("error", ""), seconds=r.get("seconds"))
    row["precision"] = c.get("recipe", {}).get("precision", "fp32")  # records before it: fp32
    row["epochs"] = c.get("recipe", {}).get("epochs")  # how far from the paper's schedule a verdict is
    if r["status"] == "ok":
        row.update(_metrics(r))
        row.update(_measurements(r))
        row.update(_solver_and_env(r))
    return row


def _metrics(r: dict) -> dict:
    """The metric (test and validation), the metrics recorded beside it, what the checkpoint
    holds, and for a pruned or quantised model the model before and the drop."""
    row = {"metric": r["metric"], "value": r["metrics"][r["metric"]], "val": r["metrics"][f"val_{r['metric']}"]}
    metrics = r["metrics"]
    # Metrics recorded beside the record's own (Table 5's normal RMSE), by name.
    row.update({m: metrics[m] for m in tasks.get(r["config"]["task"]).extra_metrics if m in metrics})
    if "train_minus_test" in metrics:  # Table 8's generalisation gap
        row.update(train_value=metrics[f"train_{r['metric']}"], train_minus_test=metrics["train_minus_test"])
    wrong = f"wrong_seeds_{r['metric']}"
    if wrong in metrics:  # Section 5.6: the same ring and BN with other index and sign seeds
        row[wrong] = metrics[wrong]
    for part, size in r.get("storage", {}).items():  # what its checkpoint holds, by kind
        row[f"storage_{part}"] = size
    if "stages" in r:  # pruned or quantised: the model before, and the drop
        ((stage, before),) = r["stages"].items()
        row.update(value_before=metrics[f"{r['metric']}_before"], drop=metrics[f"{r['metric']}_drop"])
        row.update(stage=stage, backbone_before=before["ledger"]["backbone"])
        row.update(stored_bytes_before=before["ledger"]["stored_bytes"])
    return row


def _measurements(r: dict) -> dict:
    """The ledger, the budget's deviation, the selected epoch, latencies, ONNX, FLOPs and memory."""
    row = {k: r["ledger"][k] for k in ("learned", "backbone", "dense", "stored_bytes")}
    row.update(deviation_pct=100 * r["deviation"], best_epoch=r["training"]["best_epoch"])
    for form in ("deployed", "training"):
        for b in ("batch1", "batchN"):
            lat = r["latency"][form][b]
            row[f"latency_{form}_{b}_ms"] = lat["median_ms"]
            row[f"latency_{form}_{b}_p90_ms"] = lat["p90_ms"]
            row[f"latency_{form}_{b}_stable"] = lat.get("stable", True)
    row["step_ms"] = r.get("step", {}).get("median_ms")  # per image; records before it: none
    onnx = r.get("onnx", {})
    row["onnx_status"] = onnx.get("status", "n/a")
    row["onnx_provider"] = onnx.get("provider", "")
    row["onnx_batch1_ms"] = onnx["batch1"]["median_ms"] if onnx.get("status") == "ok" else None
    row["onnx_matches"] = onnx.get("matches")
    row["forward_flops"] = r.get("flops", {}).get("forward_flops")
    row["forward_macs"] = row["forward_flops"] / 2 if row["forward_flops"] is not None else None
    for workload in ("inference", "train_step"):
        mem = r["memory"].get(workload, {})
        row[f"memory_{workload}_kind"] = mem.get("kind", "not measured")
        row[f"memory_{workload}_mb"] = _number(mem.get("peak_mb"))  # records before version 3 wrote "n/a"
    return row


def _solver_and_env(r: dict) -> dict:
    """An equilibrium model's solver caps and how its test solves went; where the cell ran."""
    row = {}
    solver = r.get("solver")
    if solver:
        inference = solver.get("inference", {})
        row.update(
            solver_f_max_iter=solver.get("f_max_iter"),
            solver_b_max_iter=solver.get("b_max_iter"),
            solver_iterations=inference.get("iterations"),
            solver_rel_residual=inference.get("rel_residual"),
        )
    env = r["env"]
    row.update(device=env["device_name"], torch=env["torch"], git_commit=env.get("git_commit"))
    row.update(device_type=env["device"], eval_batch=r["latency"]["deployed"]["batchN"]["batch"])
    row["data_source"] = r.get("data", {}).get("source", "")
    return row


def _number(value) -> float | None:
    """A number, or None for a measurement that was not made (null, or an older record's "n/a")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The cells that finished (an empty frame has no status column)."""
    return df[df["status"] == "ok"] if len(df) else df
