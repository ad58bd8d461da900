"""Inline SVG plots for the report (matplotlib's SVG backend: no display, no network)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
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


def power_law(budgets: np.ndarray, values: np.ndarray) -> tuple[float, float, float] | None:
    """Fit value = c * budget**k in log-log space: (k, c, R^2), or None below 3 points."""
    if len(budgets) < 3 or (values <= 0).any():
        return None
    x, y = np.log(budgets), np.log(values)
    k, log_c = np.polyfit(x, y, 1)
    fitted = k * x + log_c
    r2 = 1 - ((y - fitted) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12)
    return float(k), float(np.exp(log_c)), float(r2)


def metric_vs_params(ok: pd.DataFrame, metric: str, paper: list[dict] | None = None) -> tuple[str, dict]:
    """Metric against backbone parameters (log x), mean and 95% CI per method; the paper's
    points overlaid; a power-law fit for rpg. Returns (svg, fits by method)."""
    from suite.report import ci95

    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    fits = {}
    for (method, g), (marker, line) in zip(ok.groupby("entry"), STYLES * 3, strict=False):
        stats = g.groupby("budget")["value"].agg(list)
        budgets = np.array(stats.index, dtype=float)
        means = np.array([np.mean(v) for v in stats])
        cis = [ci95(pd.Series(v)) for v in stats]
        err = np.array(
            [
                [m - lo if np.isfinite(lo) else 0 for m, (lo, _) in zip(means, cis, strict=True)],
                [hi - m if np.isfinite(hi) else 0 for m, (_, hi) in zip(means, cis, strict=True)],
            ]
        )
        ax.errorbar(budgets, means, yerr=err, marker=marker, linestyle=line, capsize=3, label=method)
        if method.rpartition("/")[2] == "rpg":
            fit = power_law(budgets, means)
            if fit:
                fits[method] = {"exponent": fit[0], "r2": fit[2]}
                xs = np.geomspace(budgets.min(), budgets.max(), 50)
                ax.plot(
                    xs,
                    fit[1] * xs ** fit[0],
                    color="grey",
                    linewidth=0.8,
                    label=f"{method} power-law fit, exponent {fit[0]:.3f} (R² {fit[2]:.2f})",
                )
    for point in paper or []:
        ax.scatter([point["budget"]], [point["value"]], marker="*", s=80, color="black", zorder=5)
        ax.annotate(
            f"paper: {point['label']}",
            (point["budget"], point["value"]),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
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
