"""The shared solver: every method meets its backbone budget within 0.5%, or says why not."""

import pytest

from suite import archs, methods
from suite.errors import BudgetError
from suite.solver import TOLERANCE


def net(name, width=1.0, classes=100, channels=3):
    return archs.Net(archs.get(name), width, channels, classes)


@pytest.mark.parametrize(
    ("arch", "budget"),
    [
        ("resnet18-cifar", 45_000),
        ("resnet18-cifar", 2_000_000),
        ("resnet34-cifar", 11_000_000),
        ("resnet18", 2_000_000),
        ("resnet34", 45_000),
    ],
)
@pytest.mark.parametrize("method", ["rpg", "plain"])
def test_settings_meet_the_budget_within_tolerance(method, arch, budget):
    m, n = methods.get(method), net(arch)
    setting = m.setting(n, budget)
    if method == "rpg":
        reached = methods.RPG()._split(n)[1] + setting["ring_size"]
        assert reached == budget
    else:
        reached = methods._plain_backbone(n, tuple(setting["widths"]))
    assert abs(reached / budget - 1) <= TOLERANCE


@pytest.mark.parametrize("method", ["rpg", "plain"])
def test_built_models_carry_a_ledger_that_agrees(method):
    built = methods.build(methods.get(method), net("resnet18-cifar", 0.25, 10, 1), 20_000, seed=0)
    assert abs(built.deviation) <= TOLERANCE
    assert built.ledger["backbone"] == pytest.approx(20_000, rel=TOLERANCE)


def test_unreachable_budgets_name_the_reachable_range():
    n = net("resnet18-cifar", 0.25, 10, 1)
    lo, hi = methods.get("rpg").reach(n)
    with pytest.raises(BudgetError, match=rf"rpg cannot reach .* it reaches .*\({lo}\) to .*\({hi}\)"):
        methods.build(methods.get("rpg"), n, lo - 1, seed=0)
    with pytest.raises(BudgetError, match="plain cannot reach"):
        methods.build(methods.get("plain"), n, 10**9, seed=0)


def test_plain_scales_widths_monotonically():
    n = net("resnet18-cifar")
    small = methods.get("plain").setting(n, 100_000)["widths"]
    large = methods.get("plain").setting(n, 1_000_000)["widths"]
    assert sum(small) < sum(large)
