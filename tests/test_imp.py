"""IMP with rewinding (baselines/imp.py): its levels, its bookkeeping, and a pruned ring."""

import copy

import pytest
import torch
from torch import nn

import rpg
from baselines import imp
from suite import archs, methods, tasks
from suite.counting.ledger import ledger
from suite.tasks.base import Recipe


def net(width=0.125):
    return archs.Net(archs.get("resnet18-cifar"), width, 1, 10)


def test_levels_prune_a_fifth_of_what_remains_and_land_on_the_target():
    plan = imp.levels(10_000, 1_234)
    assert plan[-1] == 1_234
    previous = 10_000
    for left in plan[:-1]:
        assert left == round(previous * 0.8)
        previous = left
    assert plan[-2] > 1_234 and round(plan[-2] * 0.8) <= 1_234  # the last level is the short one
    assert imp.levels(500, 500) == []
    with pytest.raises(ValueError, match="cannot keep"):
        imp.levels(500, 501)


@pytest.mark.parametrize("name", ["imp", "rpg-imp"])
def test_the_setting_keeps_exactly_what_the_budget_allows(name):
    method, n = methods.get(name), net()
    lo, hi = method.reach(n)
    budget = (lo + hi) // 7
    built = methods.build(method, n, budget, seed=0)
    assert built.ledger["backbone"] == budget  # one-shot pruned to the budget, to the weight
    assert built.setting["levels"][-1] == built.setting["keep"]
    dense = ledger(built.model, "fc")["backbone"]
    assert dense == hi  # the model trains dense; IMP prunes it level by level
    if name == "rpg-imp":
        assert dense == round(0.5 * methods.plain_backbone(n))


def test_a_pruned_ring_generates_masked_weights_and_learns_only_unmasked_ones():
    model = rpg.convert(nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)), 50, seed=0)
    (ring,) = rpg.rings(model).values()
    imp.prune_to(imp.targets(model), 20)
    assert int(ring.weight_mask.sum()) == 20 and imp.remaining(imp.targets(model)) == 20
    w = ring.weight_orig * ring.weight_mask
    dense = rpg.materialize(model)
    for k, layer in enumerate([dense[0], dense[2]]):
        expected = torch.index_select(w, 0, ring.idx[ring.offsets[k] : ring.offsets[k + 1]].long())
        expected = expected * ring.signs[ring.offsets[k] : ring.offsets[k + 1]] * ring.scales[k]
        assert torch.allclose(layer.weight.flatten(), expected)
    model(torch.randn(3, 2, 9, 9)).square().sum().backward()
    grad = ring.weight_orig.grad
    assert (grad[ring.weight_mask == 0] == 0).all() and (grad[ring.weight_mask == 1] != 0).any()
    assert ledger(model, "")["learned"] == 20 + 4 + 4  # the unmasked ring, and both biases


def test_rewind_restores_survivors_and_keeps_masks():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3))
    snapshot = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.add_(2.0)
    imp.prune_to(imp.targets(model), 10)
    mask = model[0].weight_mask.clone()
    imp.rewind(model, snapshot)
    assert torch.equal(model[0].weight_orig, snapshot["0.weight"])
    assert torch.equal(model[1].running_mean, snapshot["1.running_mean"])
    assert torch.equal(model[0].weight_mask, mask) and int(mask.sum()) == 10


@pytest.mark.slow
@pytest.mark.parametrize("name", ["imp", "rpg-imp"])
def test_imp_training_meets_the_budget_exactly_and_resumes_by_replay(name, tmp_path):
    task = tasks.get("digits")
    splits = task.load(None, torch.device("cpu"), "smoke")
    recipe = Recipe(epochs=1, batch_size=128, lr=0.05)
    method, n = methods.get(name), net()
    lo, hi = method.reach(n)
    budget = lo + (hi - lo) // 3  # two levels at 20%, then the short one
    built = methods.build(method, n, budget, seed=0)
    checkpoint = tmp_path / "cell.pt"
    first = method.train(built.model, task, splits, recipe, 0, built.setting, progress=False, checkpoint=checkpoint)
    assert ledger(built.model, "fc")["backbone"] == budget
    assert [r["remaining"] for r in first.sections["pruning"]["rounds"][1:]] == built.setting["levels"]
    stage, dense = first.before
    assert stage == "before-pruning"
    assert ledger(dense, "fc")["backbone"] == hi
    deployed = rpg.materialize(built.model)
    zeros = sum(int((m.weight == 0).sum()) for m in deployed.modules() if isinstance(m, nn.Conv2d))
    assert zeros >= hi - budget  # the deployed form runs the pruned weights as zeros
    # A rerun with the same checkpoints replays every round and lands on the same weights.
    again = methods.build(method, n, budget, seed=0)
    second = method.train(again.model, task, splits, recipe, 0, again.setting, progress=False, checkpoint=checkpoint)
    assert second.sections["pruning"]["rounds"] == first.sections["pruning"]["rounds"]
    for a, b in zip(built.model.state_dict().values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
