"""Budgets met by many small integer knobs (a rank per conv, channels per pruning group):
one common fraction of every knob's cap first, then single steps where they still fit."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from suite.counting import solver

Knobs = list[tuple[int, ...]]


def at(caps: Sequence[tuple[int, ...]], fraction: float) -> Knobs:
    """Every knob at ``fraction`` of its cap, rounded down, at least 1."""
    return [tuple(max(1, min(c, math.floor(fraction * c))) for c in cap) for cap in caps]


def meet(caps: Sequence[tuple[int, ...]], total: Callable[[Knobs], int], budget: int) -> Knobs:
    """The knobs whose ``total`` comes nearest ``budget`` from below: the largest common
    fraction of the caps that fits, then, while any fits, the largest single step (one knob
    up by one) that does. ``total`` must grow with every knob; the caller has checked that
    ``total(at(caps, 0))`` <= budget <= ``total(caps)``."""
    f = solver.bisect(lambda f: total(at(caps, f)), 0.0, 1.0, budget, integer=False)
    knobs = at(caps, f)
    while total(knobs) > budget and f > 0:  # bisect may return the bound just above
        f = max(0.0, f - 1e-9)
        knobs = at(caps, f)
    left = budget - total(knobs)
    while True:
        best = None
        for i, knob in enumerate(knobs):
            for mode, value in enumerate(knob):
                if value >= caps[i][mode]:
                    continue
                trial = [*knobs[:i], knob[:mode] + (value + 1,) + knob[mode + 1 :], *knobs[i + 1 :]]
                step = total(trial) - (budget - left)
                if step <= left and (best is None or step > best[0]):
                    best = (step, trial)
        if best is None:
            return knobs
        left -= best[0]
        knobs = best[1]
