"""suite.stats against scipy's own definitions, and the power calculation against simulation."""

import numpy as np
import pytest
from scipy import stats as sp

from suite import stats

A, B = [90.1, 91.4, 90.7, 92.0], [89.0, 89.9, 88.2]


def test_the_mean_interval_is_student_t():
    ci = stats.mean_ci(A)
    expected = sp.ttest_1samp(A, 0).confidence_interval(0.95)
    assert (ci.low, ci.high) == pytest.approx((expected.low, expected.high))
    assert stats.mean_ci([3.0]).as_tuple() == (-np.inf, np.inf)


def test_welch_matches_scipy_and_paired_matches_the_paired_t():
    ci = stats.welch(A, B)
    expected = sp.ttest_ind(A, B, equal_var=False).confidence_interval(0.95)
    assert ci.estimate == pytest.approx(np.mean(A) - np.mean(B))
    assert (ci.low, ci.high) == pytest.approx((expected.low, expected.high))
    x, y = [80.0, 85.9, 90.0], [80.1, 86.0, 90.05]
    paired = stats.paired(x, y)
    expected = sp.ttest_rel(x, y).confidence_interval(0.95)
    assert (paired.low, paired.high) == pytest.approx((expected.low, expected.high))
    # Pairing removes the seeds' spread: far narrower than Welch's on the same numbers.
    assert paired.high - paired.low < (stats.welch(x, y).high - stats.welch(x, y).low) / 50
    assert stats.welch([1.0], B).as_tuple() == (-np.inf, np.inf)


def test_a_power_law_is_fitted_on_every_seed_and_its_interval_is_the_regressions():
    budgets = [1e3] * 3 + [1e4] * 3 + [1e5] * 3
    rng = np.random.default_rng(0)
    values = [20 * b**0.15 * np.exp(rng.normal(0, 0.01)) for b in budgets]
    fit = stats.power_law(budgets, values)
    reference = sp.linregress(np.log(budgets), np.log(values))
    half = sp.t.ppf(0.975, len(budgets) - 2) * reference.stderr
    assert fit.exponent == pytest.approx(reference.slope) and fit.points == 9 and fit.budgets == 3
    assert fit.interval().as_tuple() == pytest.approx((reference.slope - half, reference.slope + half))
    assert fit.at(np.array([1e4]))[0] == pytest.approx(np.exp(reference.intercept) * 1e4**reference.slope)
    assert stats.power_law([1e3, 1e3, 1e3], [1, 2, 3]) is None  # one budget fits nothing
    assert stats.power_law([1e3, 1e4], [1, 2]) is None  # two points have no error to judge by


@pytest.mark.parametrize(("gap", "sd", "design"), [(1.0, 0.6, "two-sample"), (0.3, 0.2, "paired")])
def test_seeds_needed_reach_the_promised_power_in_simulation(gap, sd, design):
    n = stats.seeds_needed(gap, sd, design)
    rng = np.random.default_rng(1)

    def power(seeds: int) -> float:
        hits = 0
        for _ in range(2000):
            if design == "two-sample":
                ci = stats.welch(rng.normal(gap, sd, seeds), rng.normal(0, sd, seeds))
            else:
                ci = stats.mean_ci(rng.normal(gap, sd, seeds))
            hits += ci.low > 0
        return hits / 2000

    # Welch's interval is a little wider than the equal-variance t the plan assumes: within 5 points.
    assert power(n) >= stats.POWER - 0.05
    assert power(n - 1) < stats.POWER + 0.02 or n == 2
    assert stats.seeds_needed(0.0, sd) is None  # a gap of zero never resolves
    assert stats.seeds_needed(gap, 0.0) == 2


def test_false_discovery_control_is_scipys_benjamini_hochberg():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    adjusted = sp.false_discovery_control(p)
    assert stats.discoveries(p) == [bool(a <= 0.05) for a in adjusted]
    assert stats.discoveries(p) == [True, True] + [False] * 8


def test_the_moderated_p_value_is_calibrated_under_no_change():
    rng = np.random.default_rng(2)
    p = []
    for _ in range(300):
        sds = rng.uniform(0.2, 0.6, 40)
        now = [rng.normal(70, s, 3) for s in sds]
        before = [rng.normal(70, s, 3) for s in sds]
        p.extend(stats.moderated_worse_p(now, before))
    # Uniform under the null: a tenth below 0.1, a twentieth below 0.05 (within simulation error).
    assert np.mean(np.array(p) < 0.1) == pytest.approx(0.1, abs=0.015)
    assert np.mean(np.array(p) < 0.05) == pytest.approx(0.05, abs=0.01)
    worse = stats.moderated_worse_p([[60.0, 60.1, 59.9]], [[70.0, 70.2, 69.8]])
    assert worse[0] < 1e-4
    assert stats.moderated_worse_p([[60.0]], [[70.0, 70.2]])[0] == 1.0  # one seed: no evidence


def test_the_ratio_of_medians_has_a_paired_bootstrap_interval():
    rng = np.random.default_rng(3)
    plain = rng.normal(1.0, 0.05, 40)
    rpg = plain * 1.1 + rng.normal(0, 0.01, 40)
    ci = stats.median_ratio(rpg, plain)
    assert ci.estimate == pytest.approx(np.median(rpg) / np.median(plain))
    assert ci.low < 1.1 < ci.high and ci.high - ci.low < 0.1
    assert stats.median_ratio(rpg, plain).as_tuple() == ci.as_tuple()  # fixed seed: repeatable
