"""Every statistic rpg-bench reports, defined once (on scipy): the report's intervals, the
claims' verdicts, `rpg-bench speed` and `report --compare` all call these.

- ``mean_ci``: Student-t interval of a mean over seeds.
- ``welch``: difference of two means, Welch's interval (independent seeds).
- ``paired``: mean of per-seed differences, paired-t interval (the same seed's networks:
  an int8 model and the float model it quantises, a pruned model and itself before).
- ``ratio``: ratio of two means, from the log-ratio's Welch interval (delta method).
- ``power_law``: log(metric) = a + k log(parameters), fitted on every seed's point;
  ``exponent_difference`` compares two fits.
- ``seeds_needed``: how many seeds per row would settle a comparison at a given spread
  (80% power at the 5% level), for the verdicts that stay inconclusive.
- ``moderated_worse_p`` and ``discoveries``: one-sided p-values of many rows at once (a
  moderated t) and the Benjamini-Hochberg procedure, for nightly comparisons.
- ``median_ratio``: ratio of medians of paired timings, with a paired-bootstrap interval.

An interval from one seed is infinite: one run is never separated from another.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # every interval in verdicts and leaderboards
ALPHA = 1 - LEVEL
POWER = 0.8  # the power a "seeds needed" figure is computed for
MAX_SEEDS = 1000  # beyond this, "seeds needed" says "more than 1000"

INF = math.inf


@dataclass(frozen=True)
class Interval:
    """An estimate and its confidence interval."""

    estimate: float
    low: float
    high: float

    def flipped(self) -> Interval:
        """The same interval for the negated statistic (a lower-is-better metric)."""
        return Interval(-self.estimate, -self.high, -self.low)

    def as_tuple(self) -> tuple[float, float]:
        return self.low, self.high


def _values(x: Sequence[float]) -> np.ndarray:
    return np.asarray(x, dtype=float)


def mean_ci(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The mean and its Student-t interval over seeds (infinite with one seed)."""
    x = _values(values)
    mean = float(x.mean())
    if len(x) < 2:
        return Interval(mean, -INF, INF)
    sd = float(x.std(ddof=1))
    if sd == 0:
        return Interval(mean, mean, mean)
    low, high = stats.t.interval(level, len(x) - 1, loc=mean, scale=sd / math.sqrt(len(x)))
    return Interval(mean, float(low), float(high))


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """mean(a) - mean(b) and Welch's interval (Welch-Satterthwaite degrees of freedom: the
    interval scipy.stats.ttest_ind(equal_var=False) gives); infinite where either side has
    one seed."""
    a, b = _values(a), _values(b)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Interval(diff, -INF, INF)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return Interval(diff, diff, diff)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof) * math.sqrt(va + vb))
    return Interval(diff, diff - half, diff + half)


def paired(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """The mean of a_i - b_i over paired seeds and its paired-t interval."""
    return mean_ci(_values(a) - _values(b), level)


def ratio(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """mean(a) / mean(b), with an interval from Welch's on the log of the ratio (delta method)."""
    a, b = _values(a), _values(b)
    point = float(a.mean() / b.mean())
    if len(a) < 2 or len(b) < 2:
        return Interval(point, 0.0, INF)
    va = a.var(ddof=1) / len(a) / a.mean() ** 2
    vb = b.var(ddof=1) / len(b) / b.mean() ** 2
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(point, point, point)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return Interval(point, point * math.exp(-half), point * math.exp(half))


@dataclass(frozen=True)
class PowerLaw:
    """metric = exp(intercept) * parameters ** exponent, fitted on ``points`` (seed, budget) pairs."""

    exponent: float
    stderr: float
    intercept: float
    r2: float
    points: int
    budgets: int

    @property
    def dof(self) -> int:
        return self.points - 2

    def at(self, parameters: np.ndarray) -> np.ndarray:
        return np.exp(self.intercept) * np.asarray(parameters, dtype=float) ** self.exponent

    def interval(self, level: float = LEVEL) -> Interval:
        if self.dof < 1 or not math.isfinite(self.stderr):
            return Interval(self.exponent, -INF, INF)
        half = float(stats.t.ppf(0.5 + level / 2, self.dof) * self.stderr)
        return Interval(self.exponent, self.exponent - half, self.exponent + half)


def power_law(budgets: Sequence[float], values: Sequence[float]) -> PowerLaw | None:
    """Least squares of log(value) on log(budget) over every point given (one per seed and
    budget, so the seeds' spread is in the exponent's error). None with fewer than two
    distinct budgets or three points, or a value that is not positive."""
    x, y = _values(budgets), _values(values)
    if len(x) < 3 or len(set(x.tolist())) < 2 or (y <= 0).any() or (x <= 0).any():
        return None
    fit = stats.linregress(np.log(x), np.log(y))
    stderr = float(fit.stderr) if len(x) > 2 else INF
    return PowerLaw(float(fit.slope), stderr, float(fit.intercept), float(fit.rvalue**2), len(x), len(set(x.tolist())))


def exponent_difference(first: PowerLaw, second: PowerLaw, level: float = LEVEL) -> Interval:
    """first.exponent - second.exponent, with Welch-Satterthwaite degrees of freedom."""
    diff = first.exponent - second.exponent
    if first.dof < 1 or second.dof < 1:
        return Interval(diff, -INF, INF)
    v1, v2 = first.stderr**2, second.stderr**2
    if v1 + v2 == 0:
        return Interval(diff, diff, diff)
    dof = (v1 + v2) ** 2 / (v1**2 / first.dof + v2**2 / second.dof)
    half = float(stats.t.ppf(0.5 + level / 2, dof) * math.sqrt(v1 + v2))
    return Interval(diff, diff - half, diff + half)


def _power(margin: float, sd: float, n: int, design: str) -> float:
    """The chance that a two-sided interval at ALPHA lands beyond a bound ``margin`` away
    from the true value, with ``n`` seeds per row (noncentral t)."""
    if design == "two-sample":
        dof, se = 2 * n - 2, sd * math.sqrt(2 / n)
    else:  # paired differences, or one row against a fixed number
        dof, se = n - 1, sd / math.sqrt(n)
    critical = stats.t.ppf(1 - ALPHA / 2, dof)
    return float(stats.nct.sf(critical, dof, margin / se))


def seeds_needed(
    margins: float | Sequence[float], sd: float, design: str = "two-sample", power: float = POWER
) -> int | None:
    """Seeds per row for the interval to clear every bound at ``margins`` (the true
    statistic's distance from each bound it must clear: one for "a beats b", two for
    "|a - b| <= 0.5") with the given power, at spread ``sd`` (one seed's standard
    deviation; of the differences, for a paired design). None when no count up to
    MAX_SEEDS would do: a margin of zero or less (the paper's own gap does not clear the
    bound) never resolves."""
    margins = [margins] if isinstance(margins, int | float) else list(margins)
    if not margins or min(margins) <= 0 or not math.isfinite(sd):
        return None
    if sd == 0:
        return 2  # any two seeds separate it; one never does
    for n in range(2, MAX_SEEDS + 1):
        # Several bounds: their failures may add up (a union bound, slightly conservative).
        miss = sum(1 - _power(m, sd, n, design) for m in margins)
        if 1 - miss >= power:
            return n
    return None


def pooled_sd(*groups: Sequence[float]) -> float:
    """The pooled standard deviation of several groups (their seeds' spread), NaN if no
    group has two values."""
    dof = sum(len(g) - 1 for g in groups if len(g) > 1)
    if dof == 0:
        return math.nan
    ss = sum(float(_values(g).var(ddof=1)) * (len(g) - 1) for g in groups if len(g) > 1)
    return math.sqrt(ss / dof)


PRIOR_DOF = 4.0  # how many degrees of freedom the pooled spread counts for in a moderated t


def moderated_worse_p(
    now: Sequence[Sequence[float]], before: Sequence[Sequence[float]], higher_is_better: bool = True
) -> np.ndarray:
    """For many rows of one metric at once, each row's one-sided p-value that ``now`` is
    worse than ``before``: a moderated t (after limma), each row's pooled variance shrunk
    toward the median across rows with PRIOR_DOF degrees of freedom. With three seeds a
    row's own variance has four degrees of freedom and is often far too small by chance;
    borrowing the other rows' spread steadies it without assuming every row equally noisy.
    A row with one seed on either side gets p = 1."""
    n_now = np.array([len(x) for x in now], dtype=float)
    n_before = np.array([len(x) for x in before], dtype=float)
    diff = np.array([np.mean(x) for x in now]) - np.array([np.mean(x) for x in before])
    if not higher_is_better:
        diff = -diff
    usable = (n_now > 1) & (n_before > 1)
    p = np.ones(len(diff))
    if not usable.any():
        return p
    dof = n_now + n_before - 2
    pooled = np.array(
        [
            ((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) if len(a) > 1 and len(b) > 1 else 0.0
            for a, b in zip(now, before, strict=True)
        ]
    ) / np.maximum(dof, 1)
    prior = float(np.median(pooled[usable]))
    moderated = (PRIOR_DOF * prior + dof * pooled) / (PRIOR_DOF + dof)
    se = np.sqrt(moderated * (1 / n_now + 1 / n_before))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, diff / se, np.where(diff < 0, -np.inf, np.inf))
    p[usable] = stats.t.cdf(t[usable], (PRIOR_DOF + dof)[usable])
    return p


def discoveries(pvalues: Sequence[float], rate: float = ALPHA) -> list[bool]:
    """Which p-values the Benjamini-Hochberg procedure rejects at false discovery rate ``rate``."""
    if not len(pvalues):
        return []
    adjusted = stats.false_discovery_control(np.asarray(pvalues, dtype=float), method="bh")
    return [bool(p <= rate) for p in adjusted]


def median_ratio(
    first: Sequence[float], second: Sequence[float], level: float = 0.9, resamples: int = 2000
) -> Interval:
    """median(first) / median(second) over paired timings, with a percentile interval
    from resampling the pairs (a fixed seed: the same timings give the same interval)."""
    point = statistics.median(first) / statistics.median(second)
    if len(first) < 2:
        return Interval(point, 0.0, INF)
    result = stats.bootstrap(
        (_values(first), _values(second)),
        lambda a, b, axis: np.median(a, axis=axis) / np.median(b, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    return Interval(point, float(result.confidence_interval.low), float(result.confidence_interval.high))
