"""Knapsack pruning (Aflalo et al. 2020): keep the channels whose importance is largest for
what they cost, under a FLOPs budget. This module is the selection: a 0/1 knapsack over
channel groups (value: Taylor importance; weight: the MACs the group costs), solved
exactly by dynamic programming or greedily by value per MAC.

The exact solver works on integer costs. MAC counts are large, so ``select`` rounds every
cost *up* to a grid of ``resolution`` steps of the capacity: a selection that fits the
rounded costs fits the real ones, and it is optimal for the rounded instance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def dp(values: Sequence[float], costs: Sequence[int], capacity: int) -> list[int]:
    """Indices of an optimal 0/1 selection: the largest total value with total cost at most
    ``capacity`` (integer costs and capacity; O(items x capacity) time, and one bit per
    item and capacity for the backtrack)."""
    if any(c < 0 for c in costs) or capacity < 0:
        raise ValueError("costs and capacity must be non-negative")
    best = np.zeros(capacity + 1)
    took = np.zeros((len(values), capacity + 1), dtype=bool)
    for i, (v, c) in enumerate(zip(values, costs, strict=True)):
        if c > capacity:
            continue
        candidate = np.full(capacity + 1, -np.inf)
        candidate[c:] = best[: capacity + 1 - c] + v
        took[i] = candidate > best
        best = np.maximum(best, candidate)
    chosen, room = [], capacity
    for i in range(len(values) - 1, -1, -1):
        if took[i, room]:
            chosen.append(i)
            room -= costs[i]
    return sorted(chosen)


def greedy(values: Sequence[float], costs: Sequence[int], capacity: int) -> list[int]:
    """Indices taken by value per unit cost, best first, while they fit (free items first)."""
    order = sorted(range(len(values)), key=lambda i: -values[i] / costs[i] if costs[i] else -math.inf)
    chosen, used = [], 0
    for i in order:
        if used + costs[i] <= capacity:
            chosen.append(i)
            used += costs[i]
    return sorted(chosen)


def select(
    values: Sequence[float], costs: Sequence[int], capacity: int, *, exact: bool = True, resolution: int = 20_000
) -> list[int]:
    """The channel groups to keep under ``capacity`` MACs: exact DP on costs rounded up to
    a grid of ``resolution`` steps of the capacity (or greedy on the real costs)."""
    if not exact:
        return greedy(values, costs, capacity)
    step = max(1, capacity // resolution)
    return dp(values, [-(-c // step) for c in costs], capacity // step)
