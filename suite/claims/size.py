"""The paper's effect size against a measured interval: the second statement beside a
directional verdict.

A verdict says whether the claimed direction holds. It does not say whether the effect
is as large as the paper's: a difference of +0.2 [-0.5, +0.9] is "inconclusive" whether
the paper found +0.3 (inside the interval: this run cannot tell them apart) or +5.4
(above it: the effect here is smaller than the paper's, whatever more seeds would show).
So each compared pair also places the paper's own gap against its 95% interval, and the
seeds a reviewer is told to run are the seeds that would detect the paper's gap *if it
were real*: asked only while the paper's gap is still inside the interval, and never a
count this run already had.
"""

from __future__ import annotations

import math

from suite import stats
from suite.claims.verdicts import NEVER
from suite.stats import Interval

INSIDE, ABOVE, BELOW = "inside", "above", "below"
_MEANING = {
    INSIDE: "this run cannot tell its effect from the paper's",
    ABOVE: "the effect here is smaller than the paper's",
    BELOW: "the effect here is larger than the paper's",
}


def place(paper: float | None, ci: Interval) -> str | None:
    """Where the paper's statistic lies against the interval (None: the paper gives none)."""
    if paper is None or not math.isfinite(paper):
        return None
    if paper > ci.high:
        return ABOVE
    if paper < ci.low:
        return BELOW
    return INSIDE


def words(paper: float | None, where: str | None, ratio: bool = False) -> str:
    """The placement as a sentence: "the paper's +5.4 lies above the interval: ..."."""
    if where is None:
        return ""
    shown = f"{paper:.3g}" if ratio else f"{paper:+.3g}"
    return f"the paper's {shown} lies {where} the interval: {_MEANING[where]}"


def to_detect(
    margins: list[float], spread: float, design: str, seeds_run: int, target: str, verb: str = "detect"
) -> tuple[int | str | None, str]:
    """Seeds per row that would detect ``target`` (the paper's effect, or the observed one
    where the paper gives none; ``margins`` its distance from each bound it must clear) at
    this run's spread, if it were the true effect, and the phrase that says so (``verb``:
    what the seeds would do, "settle the bound at" for a relation). None where one seed
    gives no spread to plan from, or where this run already had that many seeds: it had
    the power, and says so instead."""
    if not math.isfinite(spread):
        return None, ""
    needed = stats.seeds_needed(margins, spread, design)
    if needed is None:
        return NEVER, f"; no seed count up to {stats.MAX_SEEDS} would {verb} {target} at this spread"
    power = f"{stats.POWER:.0%} power"
    if needed <= seeds_run:
        return None, f"; these {seeds_run} seeds per row had {power} to {verb} {target} had it been real"
    return needed, f"; about {needed} seeds per row would {verb} {target}, if it were real ({power})"
