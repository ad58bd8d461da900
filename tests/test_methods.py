"""The shared solver: every method meets its backbone budget within 0.5%, or says why not."""

import pytest

from suite import archs, methods
from suite.counting.solver import TOLERANCE
from suite.errors import BudgetError


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
        reached = methods.RPG().split(n)[1] + setting["ring_size"]
        assert reached == budget
    else:
        reached = methods.plain_backbone_at(n, tuple(setting["widths"]))
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


COMPARATORS = ["rpg", "rpg-block", "rpg-perm-only", "rpg-sign-only", "rpg-neither", "random", "hash", "lego", "plain"]


@pytest.mark.slow
@pytest.mark.parametrize("method", COMPARATORS)
def test_every_comparator_meets_11m_on_resnet34_by_the_shared_rule(method, capsys):
    """`rpg-bench ledger --arch resnet34-cifar --method M --budget 11M`, checked against an
    independent count of what the method's counting rule says it learns."""
    import json

    from torch import nn

    import rpg
    from baselines import lego
    from suite import cli

    assert cli.main(["ledger", "--arch", "resnet34-cifar", "--method", method, "--budget", "11M"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert abs(printed["backbone"] / 11_000_000 - 1) <= TOLERANCE
    built = methods.build(methods.get(method), net("resnet34-cifar"), 11_000_000, seed=0)
    model = built.model
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    if method == "lego":
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        parts = [c.parametrizations.weight[0] for c in convs]
        assert {p.split for p in parts} == {1}  # 11M is beyond what 2 splits reach on ResNet-34
        counted = sum(lego.count(p.shape, p.lego.shape[0], p.split) for p in parts)
    elif method == "plain":
        counted = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    else:
        counted = sum(r.size for r in rpg.rings(model).values())
        expected_rings = {"rpg-block": 5, "hash": 36}.get(method, 1)  # stem + 4 stages; 36 convs
        assert len(rpg.rings(model)) == expected_rings
    assert printed["backbone"] == built.ledger["backbone"] == counted + bn
    assert printed["dense"] == sum(p.numel() for p in rpg.materialize(model).parameters())


def test_lego_cannot_go_below_one_lego_per_layer_and_says_so():
    with pytest.raises(BudgetError, match="lego cannot reach"):
        methods.check_budget(methods.get("lego"), net("resnet10-cifar", 0.125, 10, 1), 1000)
