"""The methods whose training is their own, trained for one epoch on the digits smoke split:
what each gives the pipeline beyond a model (an equilibrium's solver record, an int8 model
and the float one before it, IMP's levels, Knapsack's slimming) and that its result meets
what its setting promised. The fast layer's check that these methods train at all; their
full behaviour (resume, budgets on paper networks) is in the slow tests of test_imp,
test_knapsack, test_mdeq and test_int8."""

from __future__ import annotations

import pytest
import torch

from suite import archs, methods, tasks
from suite.counting.ledger import ledger
from suite.tasks.base import Recipe

RECIPE = Recipe(epochs=1, batch_size=128, lr=0.05)


@pytest.fixture(scope="module")
def digits():
    task = tasks.get("digits")
    return task, task.load(None, torch.device("cpu"), "smoke")


def trained(name: str, arch: str, width: float, share: float | None, digits):
    """METHOD built on a small network at SHARE of its plain backbone (None: the largest it
    reaches) and trained one epoch; with what it was built at."""
    task, splits = digits
    method = methods.get(name)
    net = archs.Net(archs.get(arch), width, 1, 10)
    low, high = method.reach(net)
    budget = high if share is None else max(low, round(share * methods.plain_backbone(net)))
    built = methods.build(method, net, budget, seed=0)
    return built, method.train(built.model, task, splits, RECIPE, 0, built.setting, progress=False), splits


def test_an_equilibrium_model_reports_the_solves_of_its_last_pass(digits):
    built, result, splits = trained("mdeq", "mdeq-tiny", 0.25, 0.3, digits)
    assert result.sections == {} and not result.quantised
    record = result.probes["solver"]()
    assert record["solver"] == "broyden" and record["inference"]["examples"] > 0
    assert 0 < record["inference"]["iterations"] <= record["f_max_iter"]
    assert ledger(result.model, "fc")["backbone"] == built.ledger["backbone"]


def test_int8_quantises_the_trained_float_network_and_keeps_it_as_before(digits):
    built, result, splits = trained("rpg-int8", "resnet10-cifar", 0.125, 0.3, digits)
    assert result.quantised and result.sections["quantisation"]["bits"] == 8
    stage, before = result.before
    assert stage == "before-quantisation"
    assert ledger(before, "fc")["backbone"] == built.ledger["backbone"]
    weights = [m.weight() for m in result.model.modules() if type(m).__name__ == "Conv2d" and callable(m.weight)]
    assert weights and all(w.dtype == torch.qint8 for w in weights)
    x = splits.head("test", 8)[0]
    with torch.no_grad():
        assert result.model(x).shape == before.eval()(x).shape == (8, 10)


def test_imp_prunes_level_by_level_down_to_its_budget(digits):
    built, result, _ = trained("imp", "resnet10-cifar", 0.125, 0.3, digits)
    pruning = result.sections["pruning"]
    levels = pruning["levels"]
    assert levels == sorted(set(levels), reverse=True)  # conv weights left at each level, fewer each time
    assert len(pruning["rounds"]) == len(levels) + 1  # the dense round, then one per level
    assert ledger(result.model, "fc")["backbone"] == built.ledger["backbone"]
    assert result.before[0] == "before-pruning"


def test_knapsack_slims_to_its_flops_budget_and_keeps_fewer_channels(digits):
    _, result, _ = trained("knapsack", "resnet10-cifar", 0.125, None, digits)
    pruning = result.sections["pruning"]
    assert pruning["flops"] <= pruning["target_flops"] < pruning["dense_flops"]
    assert all(0 < g["kept"] <= g["channels"] for g in pruning["groups"])
    assert ledger(result.model, "fc")["backbone"] < ledger(result.before[1], "fc")["backbone"]
