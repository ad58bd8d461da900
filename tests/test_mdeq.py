"""MDEQ: the equilibrium solve and its implicit gradient, on tiny inputs, against first principles."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from baselines.mdeq import MDEQ, Unrolled
from suite import archs, cli, methods
from suite.counting import solver


def _contractive(widths=(4, 4), **solver) -> MDEQ:
    """A tiny MDEQ whose block is a contraction. GroupNorm makes the block scale-free in z
    (a small z is normalised back to unit size), so an untrained MDEQ need not converge;
    here the first GroupNorm of each branch is switched off (gain 0: z reaches the branch
    output only through the residual) and the output GroupNorms are scaled to 0.003 (a
    Lipschitz constant far below 1, whatever the random convs)."""
    torch.manual_seed(0)
    model = MDEQ(
        widths, 1, 3, dropout=0.0, pretrain={"fraction": 0}, solver={"f_tol": 1e-6, "f_max_iter": 60, **solver}
    )
    with torch.no_grad():
        for post in model.block.post:
            post[2].weight.fill_(0.003)
        for branch in model.block.branches:
            branch.gn1.weight.zero_()
    return model.double()


def test_the_equilibrium_solve_converges_below_its_tolerance():
    model = _contractive().eval()
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        model(x)
    assert model.stats["phase"] == "equilibrium"
    assert model.stats["abs_residual"] < 1e-6
    # The fixed point is a fixed point: one more application of the block moves it by nothing.
    zs, stem = model._zeros(model.stem(x)), model.stem(x)
    out, _ = model.deq(lambda *z: model.block(list(z), stem), zs)
    again = model.block(out[-1], stem)
    for z, z2 in zip(out[-1], again, strict=True):
        assert torch.allclose(z, z2, atol=1e-6)


def test_the_implicit_gradient_matches_finite_differences():
    # Finite differences of solves need the solves far tighter than the step.
    model = _contractive(b_max_iter=100, f_max_iter=100, f_tol=1e-11, b_tol=1e-11).train()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    target = torch.tensor([0, 1, 2])
    gamma = model.block.branches[0].gn2.weight  # inside the block: its gradient needs the implicit backward

    def loss() -> torch.Tensor:
        return nn.functional.cross_entropy(model(x), target)

    loss().backward()
    implicit = gamma.grad.clone()
    assert model.stats["phase"] == "equilibrium"
    eps = 1e-4
    numeric = torch.zeros_like(gamma)
    with torch.no_grad():
        for i in range(len(gamma)):
            gamma[i] += eps
            up = loss()
            gamma[i] -= 2 * eps
            down = loss()
            gamma[i] += eps
            numeric[i] = (up - down) / (2 * eps)
    assert numeric.abs().max() > 1e-5, "the check needs a gradient that is not zero"
    torch.testing.assert_close(implicit, numeric, atol=1e-8, rtol=1e-3)


def test_pretraining_unrolls_the_weight_tied_block_then_the_solver_takes_over():
    torch.manual_seed(0)
    model = MDEQ((4, 4), 1, 3, pretrain={"fraction": 0.25, "unroll": 3}, solver={"f_max_iter": 5}).train()
    x = torch.rand(4, 1, 8, 8)
    phases = []
    for epoch in range(1, 5):  # 25% of 4 epochs: the first one
        model(x).sum().backward()
        phases.append(model.stats["phase"])
        model.on_epoch_end(epoch, 4)
    assert phases == ["unrolled", "equilibrium", "equilibrium", "equilibrium"]
    resumed = MDEQ((4, 4), 1, 3, pretrain={"fraction": 0.25})
    resumed.load_state_dict(model.state_dict())
    assert not bool(resumed.pretraining), "the phase survives a checkpoint"


@pytest.mark.parametrize("repeats", [2, 3, 4])
def test_the_unrolled_form_applies_separate_blocks_in_sequence(repeats):
    model = Unrolled((4, 4), 1, 3, repeats)
    assert len(model.blocks) == repeats
    x = torch.rand(2, 1, 8, 8)
    assert model(x).shape == (2, 3)


def test_mdeq_and_its_unrolled_rpg_forms_meet_one_budget_by_the_same_ledger():
    net = archs.Net(archs.get("mdeq-tiny"), 1.0, 3, 10)
    budget = methods.plain_backbone(net)  # MDEQ's own size: Table 1's "same parameter count"
    built = {name: methods.build(methods.get(name), net, budget, seed=0) for name in ("mdeq", "rpg-ms2", "rpg-ms4")}
    assert built["mdeq"].ledger["backbone"] == budget
    for name in ("rpg-ms2", "rpg-ms4"):
        model = built[name].model
        assert abs(built[name].deviation) <= solver.TOLERANCE
        # Every conv of every application reads the one ring ...
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(parametrize.is_parametrized(c, "weight") for c in convs)
        rings = {id(p) for p in model.parameters() if p.numel() == built[name].setting["ring_size"]}
        assert len(rings) == 1
        # ... while each application keeps its own GroupNorms.
        gains = [b.branches[0].gn1.weight for b in model.blocks]
        assert len({id(g) for g in gains}) == len(gains) == int(name[-1])
    # The unrolled forms run K times the block's dense weights on the same budget.
    assert built["rpg-ms4"].ledger["dense"] > built["rpg-ms2"].ledger["dense"] > built["mdeq"].ledger["dense"]


def test_methods_refuse_networks_they_do_not_run_on(capsys):
    assert cli.main(["ledger", "--arch", "resnet18-cifar", "--method", "rpg-ms2", "--budget", "2M"]) == 2
    assert "need an mdeq-* network" in capsys.readouterr().err
    assert cli.main(["ledger", "--arch", "mdeq-tiny", "--method", "lego", "--budget", "100K"]) == 2
    assert "lego does not run on mdeq-tiny" in capsys.readouterr().err


def test_an_unknown_recipe_family_is_refused(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text(
        '[[experiment]]\nname = "x"\ntask = "cifar10"\narch = "mdeq-tiny"\nrecipe = "nope"\n'
        'methods = ["mdeq"]\nbudgets = ["100%"]\n'
    )
    assert cli.main(["--suite", str(suite), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "has no recipe 'nope' (it has: mdeq)" in err and err.count("\n") == 1


def test_a_recipe_family_s_profiles_are_not_profiles_of_other_experiments(capsys):
    assert cli.main(["--suite", "cifar", "--profile", "mdeq-full"]) == 2
    assert "unknown profile 'mdeq-full' for experiment table2 (task cifar100); known: full, nightly, smoke" in (
        capsys.readouterr().err
    )
