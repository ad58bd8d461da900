"""What a verdict was judged on: the paper's setting, or a stand-in, and which.

A comparison is at paper scale when it ran on the claim's own data set, on the networks
the claim names at their full width, under the paper's recipe (the ``full`` profile) and,
for a claim about speed, on a GPU. Anything else is a stand-in, and every difference is
named: a verdict on a stand-in is about the stand-in. (Data the code generates judges
nothing: suite.claims.judge never asks for its setting.)
"""

from __future__ import annotations

import pandas as pd

from suite import tasks
from suite.claims.rows import View
from suite.claims.schema import Claim

PAPER = "paper"
STAND_IN = "stand-in"
SCALE_FREE = "scale-free"  # a claim about RPG itself, with no paper setting to stand in for


def _dataset(task: str) -> str:
    try:
        return tasks.get(task).dataset
    except Exception:  # noqa: BLE001 - a claim's task the benchmark has no reader for
        return task


def _paper_epochs(task_name: str, profile: str) -> int | None:
    """The epochs of the paper's recipe for a task: its ``full`` profile (``mdeq-full`` for a
    run of the MDEQ recipe)."""
    try:
        profiles = tasks.get(task_name).profiles
    except Exception:  # noqa: BLE001 - a claim's task the benchmark has no reader for
        return None
    prefix = profile.rpartition("-")[0]
    full = profiles.get(f"{prefix}-full" if prefix else "full") or profiles.get("full")
    return full.epochs if full else None


def scale_gap(fields: Claim, view: View, networks: list[tuple[str, str]], rows: pd.DataFrame) -> dict | None:
    """How far one comparison's setting is from the paper's, in numbers: the data that stood
    in, the networks' width as a fraction of the paper's, and the epochs trained against the
    paper's (None for a claim about RPG itself, which has no paper setting)."""
    if not fields.task:
        return None
    claim_task = fields.task
    data = None if claim_task == view.task else f"{tasks.get(view.task).dataset} for {_dataset(claim_task)}"
    epochs = int(rows["epochs"].max()) if "epochs" in rows and rows["epochs"].notna().all() and len(rows) else None
    paper = _paper_epochs(claim_task, view.profile)
    return {
        "data": data,
        "width": min(view.width(actual) for _, actual in networks),
        "epochs": epochs,
        "paper_epochs": paper,
        "epochs_fraction": epochs / paper if epochs and paper else None,
    }


def gap_text(gap: dict | None) -> str:
    """The scale gap in words: 'Fashion-MNIST for CIFAR-100; width 0.125; 2 of the paper's 200 epochs (1%)'."""
    if not gap:
        return ""
    parts = [gap["data"]] if gap["data"] else []
    if gap["width"] != 1:
        parts.append(f"width {gap['width']:g} of the paper's")
    if gap["epochs_fraction"] is not None and gap["epochs_fraction"] != 1:
        parts.append(f"{gap['epochs']} of the paper's {gap['paper_epochs']} epochs ({gap['epochs_fraction']:.1%})")
    return "; ".join(parts)


def judged_on(fields: Claim, view: View, networks: list[tuple[str, str]], rows: pd.DataFrame) -> dict:
    """The setting of one comparison: ``networks`` pairs each network the claim names with
    the one that ran; ``rows`` are the rows compared."""
    differs = []
    task = tasks.get(view.task)
    if fields.task and fields.task != view.task:
        differs.append(f"data: {task.dataset} standing in for {_dataset(fields.task)}")
    for named, actual in dict.fromkeys(networks):
        width = view.width(actual)
        shown = f"{actual} at width {width:g}" if width != 1 else actual
        if named and named != actual:
            differs.append(f"network: {shown} standing in for {named}")
        elif width != 1:
            differs.append(f"network: {shown}")
    if not view.profile.endswith("full"):
        differs.append(f"recipe: profile {view.profile}, not the paper's (full)")
    precisions = sorted(set(rows["precision"])) if "precision" in rows and len(rows) else []
    precision = f"precision: {', '.join(precisions)} training (autocast), not the paper's fp32"
    if any(p != "fp32" for p in precisions):
        differs.append(precision)
    out = {"scale": PAPER if not differs else STAND_IN, "differs": differs}
    out["gap"] = scale_gap(fields, view, networks, rows)
    if not fields.task:
        networks_text = ", ".join(f"{a} at width {view.width(a):g}" for _, a in dict.fromkeys(networks))
        text = f"scale-free claim: judged on {task.dataset}, {networks_text}, profile {view.profile}"
        text += f"; {precision}" if precision in differs else ""
        return {"scale": SCALE_FREE, "differs": [], "text": text}
    if fields.hardware:
        # A claim about speed: which device timed it, at which batch (the paper's per-image
        # times are batched inference: its 0.12 ms per image is below one GPU kernel launch).
        device = str(rows["device"].iloc[0]) if len(rows) else "?"
        kind = str(rows["device_type"].iloc[0]) if "device_type" in rows and len(rows) else "cpu"
        batch = int(rows["eval_batch"].iloc[0]) if "eval_batch" in rows and len(rows) else 0
        out["device"] = f"{device} ({kind}), per image at batch {batch}"
        if not kind.startswith("cuda"):
            differs.append(f"device: {device} ({kind}) standing in for the paper's {fields.hardware}")
        out["scale"] = PAPER if not differs else STAND_IN
    out["text"] = "paper scale" if not differs else "stand-in: " + "; ".join(differs)
    return out
