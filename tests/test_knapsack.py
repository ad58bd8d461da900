"""The knapsack solvers of Knapsack pruning: exact against brute force, greedy and the grid
within the budget."""

import itertools
import random

import pytest

from baselines import knapsack


def brute_force(values, costs, capacity):
    best = 0.0
    for r in range(len(values) + 1):
        for subset in itertools.combinations(range(len(values)), r):
            if sum(costs[i] for i in subset) <= capacity:
                best = max(best, sum(values[i] for i in subset))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_dp_is_optimal_on_small_instances(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 12)
    values = [rng.uniform(0, 10) for _ in range(n)]
    costs = [rng.randint(0, 30) for _ in range(n)]
    capacity = rng.randint(0, sum(costs))
    chosen = knapsack.dp(values, costs, capacity)
    assert sum(costs[i] for i in chosen) <= capacity
    assert sum(values[i] for i in chosen) == pytest.approx(brute_force(values, costs, capacity))


def test_greedy_fits_and_can_be_beaten():
    # Greedy by value per cost takes the dense small item and then cannot fit the big one.
    values, costs = [6.0, 10.0, 10.0], [1, 5, 5]
    assert knapsack.greedy(values, costs, 10) == [0, 1]
    assert knapsack.dp(values, costs, 10) == [1, 2]


@pytest.mark.parametrize("seed", range(5))
def test_select_respects_the_real_budget_on_mac_sized_costs(seed):
    rng = random.Random(seed)
    values = [rng.uniform(0, 1) for _ in range(200)]
    costs = [rng.randint(10**5, 10**7) for _ in range(200)]
    capacity = sum(costs) // 3
    for exact in (True, False):
        chosen = knapsack.select(values, costs, capacity, exact=exact, resolution=2000)
        assert sum(costs[i] for i in chosen) <= capacity
    exact = sum(values[i] for i in knapsack.select(values, costs, capacity))  # the default grid
    greedy = sum(values[i] for i in knapsack.select(values, costs, capacity, exact=False))
    assert exact >= 0.99 * greedy  # the rounded grid costs at most a sliver of the optimum


def test_negative_costs_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        knapsack.dp([1.0], [-1], 3)
