"""l1 filter pruning of RPG (Table 7): the ring stays, the weakest filters go, the FLOPs fit."""

import copy

import pytest
import torch

import rpg
from baselines import filters, knapsack
from baselines.plain import ResNet
from suite.counting.ledger import ledger


def rpg_resnet(seed=0):
    torch.manual_seed(seed)
    return rpg.convert(ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10), 40_000, seed=seed)


@pytest.mark.parametrize("fraction", [0.4, 0.6])
def test_pruned_rpg_keeps_its_ring_and_fits_the_flops(fraction):
    model, x = rpg_resnet(), torch.randn(8, 3, 32, 32)
    dense = rpg.materialize(model).eval()
    ring = {k: v.size for k, v in rpg.rings(model).items()}
    target = int(fraction * knapsack.forward_flops(dense, x))
    info = filters.prune_to_flops(model, x[:1], target)
    deployed = rpg.materialize(model).eval()
    assert knapsack.forward_flops(deployed, x) == info["flops"] <= target
    assert info["flops"] > 0.9 * target
    assert {k: v.size for k, v in rpg.rings(model).items()} == ring  # the parameters are the ring still
    assert ledger(model, "fc")["backbone"] < ledger(rpg_resnet(), "fc")["backbone"]  # only BN shrank
    # Each block kept its largest-l1 filters, as generated, at their dense values.
    block = "layer3.0"
    norms = dense.get_submodule(f"{block}.conv1").weight.abs().sum(dim=(1, 2, 3))
    kept = model.get_submodule(f"{block}.conv1").parametrizations.weight[1].index
    dropped = sorted(set(range(len(norms))) - set(kept.tolist()))
    assert norms[kept].min() >= norms[dropped].max()
    w = dense.get_submodule(f"{block}.conv1").weight[kept]
    assert torch.equal(model.get_submodule(f"{block}.conv1").weight, w)
    assert torch.allclose(deployed(x), model.eval()(x), atol=1e-5)


def test_fine_tuning_trains_the_ring():
    model, x = rpg_resnet(1), torch.randn(8, 3, 32, 32)
    filters.prune_to_flops(model, x[:1], int(0.5 * knapsack.forward_flops(rpg.materialize(model), x)))
    model(x).sum().backward()
    assert all(ring.parameter().grad.abs().sum() > 0 for ring in rpg.rings(model).values())


def test_pruned_state_loads_into_a_fresh_network():
    model, x = rpg_resnet(2), torch.randn(8, 3, 32, 32)
    filters.prune_to_flops(model, x[:1], int(0.5 * knapsack.forward_flops(rpg.materialize(model), x)))
    fresh = copy.deepcopy(rpg_resnet(2))
    filters.restore(fresh, model.state_dict())
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(fresh.eval()(x), model.eval()(x))
