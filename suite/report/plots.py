"""Inline SVG plots for the report (matplotlib's SVG backend: no display, no network).
matplotlib comes with the ``[report]`` extra; without it suite.report draws no figure and
says so."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from suite import stats  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
# Element ids from the figure's content, not a random salt: the same records draw the same
# page byte for byte, so a committed sample re-rendered changes only where its numbers do.
plt.rcParams["svg.hashsalt"] = "rpg-bench"
# Distinct in grey-scale too: markers and line styles differ, not only colours.
STYLES = [
    ("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", "-"), ("P", "--"), ("X", ":"),
    ("*", "-."), ("h", "--"), ("<", ":"), (">", "-"),
]  # fmt: skip


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def metric_vs_params(
    ok: pd.DataFrame, metric: str, paper: list[dict] | None = None, fit_below: dict[str, float] | None = None
) -> tuple[str, dict]:
    """Metric against backbone parameters (log x), mean and 95% CI per method; the paper's
    points as markers of their method's colour (a legend entry each, no labels to collide);
    for rpg, the power law the claims judge (suite.stats.power_law on every seed's point,
    below ``fit_below[arch]`` parameters when a claim sets a bound). Returns (svg, fits)."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    fits, colours = {}, {}
    for (entry, g), (marker, line) in zip(ok.groupby("entry"), STYLES * 3, strict=False):
        by_budget = g.groupby("budget")["value"].agg(list)
        budgets = np.array(by_budget.index, dtype=float)
        cis = [stats.mean_ci(v) for v in by_budget]
        means = np.array([c.estimate for c in cis])
        err = np.array(
            [
                [c.estimate - c.low if np.isfinite(c.low) else 0 for c in cis],
                [c.high - c.estimate if np.isfinite(c.high) else 0 for c in cis],
            ]
        )
        drawn = ax.errorbar(budgets, means, yerr=err, marker=marker, linestyle=line, capsize=3, label=entry)
        colours[(g["arch"].iloc[0], g["method"].iloc[0])] = drawn[0].get_color()
        if g["method"].iloc[0] == "rpg":
            limit = (fit_below or {}).get(g["arch"].iloc[0], np.inf)
            points = g[g["budget"] < limit]
            fit = stats.power_law(points["budget"], points["value"])
            if fit:
                ci = fit.interval()
                fits[entry] = {"exponent": fit.exponent, "ci": ci.as_tuple(), "r2": fit.r2}
                fits[entry]["below"] = float(limit) if np.isfinite(limit) else None
                xs = np.geomspace(points["budget"].min(), points["budget"].max(), 50)
                ax.plot(
                    xs, fit.at(xs), color="grey", linewidth=0.8, label=f"{entry} power law, exponent {fit.exponent:.3f}"
                )
    shown = set()
    for point in paper or []:
        colour = colours.get((point["arch"], point["method"]), "black")
        label = f"paper: {point['method']}" if (point["arch"], point["method"]) not in shown else None
        shown.add((point["arch"], point["method"]))
        ax.scatter(
            [point["budget"]],
            [point["value"]],
            marker="*",
            s=90,
            color=colour,
            edgecolors="black",
            zorder=5,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("backbone parameters (log scale)")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig), fits


def latency_vs_metric(ok: pd.DataFrame, metric: str) -> str:
    """Deployed latency per image (batch 1) against the metric, one point per cell."""
    fig, ax = plt.subplots(figsize=(6.2, 3.2))
    for (method, g), (marker, _) in zip(ok.groupby("entry"), STYLES * 3, strict=False):
        ax.scatter(g["latency_deployed_batch1_ms"], g["value"], marker=marker, label=method)
    ax.set_xlabel("deployed latency, ms per image at batch 1")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def learning_curves(histories: pd.DataFrame, metric: str) -> str:
    """The validation metric after every epoch, mean over seeds, one panel per budget and one
    line per entry. ``histories``: one row per (cell, epoch) with budget, entry, seed, step
    (the epoch's place in the cell's training, every phase in order: a pruned cell's
    fine-tuning continues its dense training's curve) and val."""
    budgets = sorted(histories["budget"].unique())
    fig, axes = plt.subplots(1, len(budgets), figsize=(max(6.2, 2.4 * len(budgets)), 3.0), sharey=True, squeeze=False)
    for ax, budget in zip(axes[0], budgets, strict=True):
        at = histories[histories["budget"] == budget]
        for (entry, g), (marker, line) in zip(at.groupby("entry"), STYLES * 3, strict=False):
            mean = g.groupby("step")["val"].mean()
            ax.plot(mean.index, mean.to_numpy(), marker=marker, linestyle=line, markersize=3, label=entry)
        ax.set_title(f"{budget:,} backbone parameters", fontsize=8)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel(f"validation {metric}")
    axes[0][-1].legend(fontsize=7, frameon=False)
    return _svg(fig)


def ladder(effects: list[dict], compute: list[float]) -> str:
    """One claim along a compute ladder: each compared effect with its 95% interval at each
    rung (log PFLOP), the paper's gap as a dashed line of the same style, zero as a thin line."""
    fig, ax = plt.subplots(figsize=(5.6, 3.0))
    x = np.array(compute)
    for effect, (marker, line) in zip(effects, STYLES * 3, strict=False):
        present = [(c, e) for c, e in zip(x, effect["at"], strict=True) if e is not None]
        if not present:
            continue
        cs = np.array([c for c, _ in present])
        diffs = np.array([e["diff"] for _, e in present])
        low = np.array([e["diff"] - e["ci"][0] if e["ci"][0] is not None else 0 for _, e in present])
        high = np.array([e["ci"][1] - e["diff"] if e["ci"][1] is not None else 0 for _, e in present])
        drawn = ax.errorbar(cs, diffs, yerr=[low, high], marker=marker, linestyle=line, capsize=3)
        drawn.set_label(effect["label"])
        if effect["paper"] is not None:
            ax.axhline(effect["paper"], linestyle="--", linewidth=0.8, color=drawn[0].get_color())
    ax.axhline(0, color="#999", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("compute of the rung's cells (PFLOP, counted)")
    ax.set_ylabel("effect (left − right)")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return _svg(fig)
