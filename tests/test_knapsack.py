"""Knapsack pruning: the solvers (exact against brute force, greedy and the grid within the
budget), and the slimming of a real ResNet to a FLOPs budget with inner distillation."""

import copy
import itertools
import random

import pytest
import torch
import torch.nn.functional as F

from baselines import knapsack
from baselines.plain import ResNet


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


def trained_taylor(seed):
    torch.manual_seed(seed)
    model = ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    _, groups = knapsack.groups(model, x[:1], "fc")
    return model, x, groups, knapsack.taylor(model, groups, [(x, y)], F.cross_entropy)


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_slimmed_resnet_fits_its_measured_flops_budget(fraction):
    model, x, groups, scores = trained_taylor(0)
    dense = copy.deepcopy(model).eval()
    full = knapsack.forward_flops(model, x)
    target = int(fraction * full)
    info = knapsack.prune_to_flops(model, x[:1], "fc", scores, target)
    measured = knapsack.forward_flops(model, x)
    # Within the budget, as counted on the slimmed network itself, and not far under it.
    assert measured == info["flops"] <= target
    assert measured > 0.9 * target
    assert all(1 <= g["kept"] < g["channels"] for g in info["groups"])
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in dense.parameters())
    # The channels removed physically, the kept ones untouched: a conv is its dense self at
    # the kept outputs and inputs (the input side is the previous conv's kept outputs).
    conv, before = model.layer2[1].conv1, dense.layer2[1].conv1
    rows, cols = info["kept"]["layer2.1.conv1"], info["kept"]["layer2.0.conv2"]
    assert torch.equal(conv.weight, before.weight[rows][:, cols])
    assert model.eval()(x).shape == (32, 10)


@pytest.mark.slow
def test_a_larger_budget_keeps_more_of_the_important_channels():
    model, x, _, scores = trained_taylor(1)
    full = knapsack.forward_flops(model, x)
    small, large = copy.deepcopy(model), copy.deepcopy(model)
    kept_small = sum(g["kept"] for g in knapsack.prune_to_flops(small, x[:1], "fc", scores, full // 3)["groups"])
    kept_large = sum(g["kept"] for g in knapsack.prune_to_flops(large, x[:1], "fc", scores, 2 * full // 3)["groups"])
    assert kept_small < kept_large


@pytest.mark.slow
def test_unreachable_flops_budget_is_refused():
    model, x, _, scores = trained_taylor(2)
    with pytest.raises(ValueError, match="no channel selection"):
        knapsack.prune_to_flops(model, x[:1], "fc", scores, 1000)


@pytest.mark.slow
def test_inner_distillation_matches_the_teacher_at_the_kept_channels():
    model, x, _, scores = trained_taylor(3)
    teacher = copy.deepcopy(model).eval()
    y = torch.randint(0, 10, (32,))
    # Nothing pruned: the student is the teacher, so the objective is the task loss alone.
    unpruned = copy.deepcopy(model).eval()
    kept = {n: list(range(m.out_channels)) for n, m in unpruned.named_modules() if isinstance(m, torch.nn.Conv2d)}
    with knapsack.InnerDistillation(teacher, unpruned, kept, F.cross_entropy) as objective:
        assert objective(unpruned, x, y).item() == pytest.approx(F.cross_entropy(unpruned(x), y).item())
    # Pruned: the block-wise error is positive and trains the student.
    info = knapsack.prune_to_flops(model, x[:1], "fc", scores, knapsack.forward_flops(model, x) // 2)
    model.eval()
    with knapsack.InnerDistillation(teacher, model, info["kept"], F.cross_entropy) as objective:
        loss = objective(model, x, y)
        assert loss.item() > F.cross_entropy(model(x), y).item()
        loss.backward()
    assert model.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    # The hooks left with the context.
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.slow
def test_slimmed_state_loads_into_a_fresh_network():
    model, x, _, scores = trained_taylor(4)
    knapsack.prune_to_flops(model, x[:1], "fc", scores, knapsack.forward_flops(model, x) // 2)
    fresh = ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10)
    knapsack.restore(fresh, model.state_dict())
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(fresh.eval()(x), model.eval()(x))
