"""A row's series as inline SVG (matplotlib, as the report draws: suite.report.plots): one
panel per measure, each night's mean with its 95% band, and every step found marked at
the night it happened with its size. matplotlib comes with the ``[report]`` extra."""

from __future__ import annotations

import io
import math

from suite.history.series import BY_NAME, band
from suite.history.steps import Series, Step
from suite.report.plots import plt  # the report's backend and style

MAX_TICKS = 15  # night numbers labelled on the x axis; more nights label every k-th


def row_figure(series: list[Series], found: dict[tuple, list[Step]], ids: dict[int, str], nights: int) -> str:
    """One row's measures, stacked, over nights 1..``nights``. ``found``: each series'
    steps; ``ids``: each step's change id (by id(step)), the marker's SVG id."""
    fig, axes = plt.subplots(len(series), 1, figsize=(6.2, 1.55 * len(series) + 0.5), sharex=True, squeeze=False)
    every = max(1, math.ceil(nights / MAX_TICKS))
    for ax, s in zip(axes[:, 0], series, strict=True):
        points = [(i + 1, band(s.values[i])) for i in s.present]
        xs = [x for x, _ in points]
        means = [b[0] for _, b in points]
        ax.plot(xs, means, marker="o", markersize=3, linewidth=1, color="#1f4e79")
        finite = [(x, b) for x, b in points if math.isfinite(b[1]) and math.isfinite(b[2])]
        if finite:
            at, lows, highs = zip(*[(x, b[1], b[2]) for x, b in finite], strict=True)
            ax.fill_between(at, lows, highs, color="#1f4e79", alpha=0.15, linewidth=0)
        for step in found.get(s.key, []):
            colour = "#b00000" if step.worse else "#006400"
            x = step.night + 1
            ax.axvline(x, color=colour, linestyle="--", linewidth=1.2, gid=f"step-{ids[id(step)]}")
            ax.plot([step.previous + 1, x], [step.before, step.after], color=colour, linewidth=0, marker="_")
            ax.annotate(
                f"{step.size:+.3g}", (x, step.after), xytext=(4, -10 if step.worse == s.higher else 4),
                textcoords="offset points", color=colour, fontsize=8, fontweight="bold",
            )  # fmt: skip
        measure = s.key[3]
        ax.set_ylabel(s.name if measure == "metric" else BY_NAME[measure].axis, fontsize=8)
    bottom = axes[-1, 0]
    bottom.set_xlim(0.5, nights + 0.5)
    bottom.set_xticks(list(range(1, nights + 1, every)))
    bottom.set_xlabel("night (the Nights table gives each one's date and commit)")
    return _svg(fig)


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # no XML prolog: the SVG is inlined in HTML
