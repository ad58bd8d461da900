"""The shared budget solver: find the size-knob setting whose backbone hits a budget."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

TOLERANCE = 0.005  # budgets are met within 0.5%, or the deviation is recorded and shown


def bisect(f: Callable[[float], int], lo: float, hi: float, target: int, *, integer: bool) -> float:
    """The knob in [lo, hi] whose f is closest to target, for f non-decreasing.

    The caller has checked f(lo) <= target <= f(hi).
    """
    if integer:
        lo, hi = int(lo), int(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if f(mid) <= target else (lo, mid)
    else:
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) <= target else (lo, mid)
    return min((lo, hi), key=lambda k: abs(f(k) - target))


def deviation(reached: int, budget: int) -> float:
    return reached / budget - 1.0


def refine(
    knobs: Sequence[int],
    f: Callable[[tuple[int, ...]], int],
    target: int,
    steps: Sequence[int],
    valid: Callable[[tuple[int, ...]], bool] = lambda k: True,
) -> tuple[int, ...]:
    """Set a coarse knob per part (stage widths, say) to bring f closer to target.

    Coordinate descent over each part's offsets in ``steps``, repeated while it helps;
    if that stops outside TOLERANCE, every combination of offsets within +-2 of the result.
    Knobs stay positive, and only settings that ``valid`` accepts are tried.
    """

    def miss(k: tuple[int, ...]) -> int:
        return abs(f(k) - target)

    best = tuple(knobs)
    for _ in range(5):
        start = best
        for part in reversed(range(len(best))):
            trials = [best[:part] + (max(1, best[part] + d),) + best[part + 1 :] for d in steps]
            best = min([t for t in trials if valid(t)] + [best], key=miss)
        if best == start:
            break
    if miss(best) > TOLERANCE * target:
        trials = (
            tuple(max(1, k + d) for k, d in zip(best, ds, strict=True))
            for ds in itertools.product(range(-2, 3), repeat=len(best))
        )
        best = min([t for t in trials if valid(t)] + [best], key=miss)
    return best
