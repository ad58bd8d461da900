"""Regressions as steps, not blips: where a row's nightly series shifts beyond its noise and
stays there.

A series is one row (experiment × entry × budget) and one measure (its metric, latency or
memory), each night holding the values of the row's seeds. The finding is ruptures' PELT
(Killick, Fearnhead & Eckley 2012: the exact segmentation minimising the sum of segment
costs plus a penalty per step) on the nights' means, with the L1 cost (each segment's
absolute deviations from its median, the cost airspeed velocity's step detection uses):

- **Noise.** Each night's mean is measured in units of its noise: the row's seed spread,
  pooled over the nights and moderated toward the median of the other rows of the same
  measure (as ``report --compare`` moderates a three-seed row's spread: suite.stats'
  PRIOR_DOF), over the square root of the row's seeds; never less than the spread
  between consecutive nights (the median absolute difference, scaled to a standard
  deviation: robust to the step itself), which catches noise the seeds do not show, a
  latency measured on another machine each night, say.
- **Steps stay.** Every level lasts at least ``MIN_NIGHTS`` nights, so one night can never
  make a level of its own; and with the L1 cost a single night off its level costs the
  same whether or not a step is put around it, so a one-night dip that recovers is never
  a step. A change in the newest night is a step once a second night confirms it.
- **Steps matter.** A step smaller than its measure's minimum effect (``report
  --compare``'s: half a point of accuracy, PCKh or RMSE; 5% of anything else) is dropped,
  and its neighbours' levels are merged before the others are sized again.
- **Penalty.** ``PENALTY × log(nights)`` per step, in units of a night's noise (a BIC-like
  rule). On series of 30 unchanged nights drawn from the committed samples' rows it
  alarms on under 5% of rows (tests/test_history.py measures it; docs/comparing/history.md states it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from suite import stats
from suite.report import compare

MIN_NIGHTS = 2  # the shortest level: one night alone is never a level
PENALTY = 2.0  # per step, times log(nights), in units of a night's noise
MAD_SD = 1.4826  # a normal's standard deviation per median absolute deviation
FLOOR = 1e-4  # the least noise, relative to the series' level: a measure with no spread at all (memory)


@dataclass
class Series:
    """One row's measure over the nights: per night its seeds' values (None: not measured)."""

    key: tuple  # (experiment, entry, budget, measure)
    name: str  # what it measures ("top1", "latency_ms", "memory_mb"): its minimum effect and noise pool
    higher: bool  # higher is better
    values: list[np.ndarray | None]
    moderated: bool = True  # pool its spread with the other rows' (a metric; not a timing, whose scale varies)

    @property
    def present(self) -> list[int]:
        return [i for i, v in enumerate(self.values) if v is not None and len(v)]

    def means(self) -> np.ndarray:
        return np.array([float(np.mean(self.values[i])) for i in self.present])


@dataclass(frozen=True)
class Noise:
    seed_sd: float | None  # one seed's spread, moderated (None: no night had two seeds, nor any row)
    night_sd: float  # what a night's mean is measured against
    between_sd: float | None  # the spread between consecutive nights (None: under three nights)


@dataclass
class Step:
    series: Series
    night: int  # the first night at the new level
    previous: int  # the last night at the old level (the row may be missing between them)
    before: float
    after: float
    nights_before: int
    nights_after: int
    noise: Noise
    min_effect: float
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> float:
        return self.after - self.before

    @property
    def worse(self) -> bool:
        return self.size < 0 if self.series.higher else self.size > 0


def _pooled(series: Series) -> tuple[float, int]:
    """The seeds' variance within nights, pooled over the nights, and its degrees of freedom."""
    squares, dof = 0.0, 0
    for v in series.values:
        if v is not None and len(v) > 1:
            squares += float(np.var(v, ddof=1)) * (len(v) - 1)
            dof += len(v) - 1
    return (squares / dof if dof else math.nan), dof


def noises(all_series: list[Series]) -> list[Noise]:
    """Each series' noise; the seed spreads of the series of one measure moderated together."""
    pooled = [_pooled(s) for s in all_series]
    prior = {}
    for name in {s.name for s in all_series}:
        own = [v for (v, d), s in zip(pooled, all_series, strict=True) if s.name == name and d > 0 and s.moderated]
        prior[name] = float(np.median(own)) if own else math.nan
    out = []
    for s, (variance, dof) in zip(all_series, pooled, strict=True):
        p = prior[s.name] if s.moderated else math.nan
        if math.isfinite(p):
            variance = (stats.PRIOR_DOF * p + dof * (variance if dof else 0.0)) / (stats.PRIOR_DOF + dof)
        seed_sd = math.sqrt(variance) if math.isfinite(variance) else None
        present = s.present
        seeds = float(np.median([len(s.values[i]) for i in present])) if present else 1.0
        means = s.means()
        between = MAD_SD * float(np.median(np.abs(np.diff(means)))) / math.sqrt(2) if len(means) >= 3 else None
        floor = FLOOR * abs(float(np.median(means))) if len(means) else 0.0
        night = max((seed_sd or 0.0) / math.sqrt(seeds), between or 0.0, floor, 1e-12)
        out.append(Noise(seed_sd, night, between))
    return out


def _min_effect(series: Series, before: float) -> float:
    return max(compare.min_effect(series.name, before), 1e-12)


def _levels(series: Series, bounds: list[int]) -> list[float]:
    """The mean of every seed's value in each level (between consecutive bounds, over the
    present nights)."""
    present = series.present
    return [
        float(np.mean(np.concatenate([series.values[present[i]] for i in range(a, b)])))
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]


def find(series: Series, noise: Noise) -> list[Step]:
    """The steps of one series, oldest first."""
    present = series.present
    if len(present) < 2 * MIN_NIGHTS:
        return []
    import ruptures  # here, not at the top: every rpg-bench command imports this module

    means = series.means()
    z = (means - np.median(means)) / noise.night_sd
    ends = ruptures.Pelt(model="l1", min_size=MIN_NIGHTS, jump=1).fit(z).predict(pen=PENALTY * math.log(len(z)))
    bounds = [0, *ends]
    while True:  # drop the least material step below its minimum effect, then size the rest again
        levels = _levels(series, bounds)
        ratios = [
            abs(after - before) / _min_effect(series, before) for before, after in zip(levels, levels[1:], strict=False)
        ]
        if not ratios or min(ratios) >= 1:
            break
        del bounds[1 + int(np.argmin(ratios))]
    out = []
    for k in range(1, len(bounds) - 1):
        before, after = levels[k - 1], levels[k]
        out.append(
            Step(
                series,
                night=present[bounds[k]],
                previous=present[bounds[k] - 1],
                before=before,
                after=after,
                nights_before=bounds[k] - bounds[k - 1],
                nights_after=bounds[k + 1] - bounds[k],
                noise=noise,
                min_effect=_min_effect(series, before),
            )
        )
    return out


def detect(all_series: list[Series]) -> tuple[list[Noise], list[Step]]:
    """Every series' noise, and every step found, by series then night."""
    found = noises(all_series)
    return found, [step for s, n in zip(all_series, found, strict=True) for step in find(s, n)]
