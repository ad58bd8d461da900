"""The field's methods (issue #40) beyond the contract every method keeps
(test_method_conformance): how each generates, factorises or prunes, and the training of
the two whose budget needs it (FPGM prunes after training; SSN learns its groups)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines import fpgm, hypernet, lowrank, softshare, ssn
from baselines.plain import ResNet
from rpg.convert import kaiming_fan_out_std
from suite import archs, methods, tasks
from suite.counting import solver
from suite.counting.ledger import ledger
from suite.tasks.base import Recipe
from suite.training import train


def net(width=0.125, channels=1):
    return archs.Net(archs.get("resnet18-cifar"), width, channels, 10)


def digits():
    task = tasks.get("digits")
    return task, task.load(None, torch.device("cpu"), "smoke")


def test_ssn_reads_its_bank_circularly_and_interpolates_a_layer_larger_than_it():
    bank = ssn.Bank(10)
    with torch.no_grad():
        bank.weight.copy_(torch.arange(10.0))
    small = ssn.Shaped(bank, (6, 1, 1, 1), templates=2)  # offsets 0 and 5
    with torch.no_grad():
        small.coefficients.copy_(torch.tensor([0.0, 1.0]))
    assert small(torch.empty(0)).flatten().tolist() == [5, 6, 7, 8, 9, 0]
    large = ssn.Shaped(bank, (2, 3, 3, 3), templates=1)  # 54 weights from 10: upsampled
    with torch.no_grad():
        large.coefficients.fill_(1.0)
    torch.testing.assert_close(large(torch.empty(0)).flatten(), torch.linspace(0, 9, 54))


def test_ssn_keeps_its_scale_in_the_bank_so_the_bank_trains_like_a_conv():
    model = net(width=0.5).build()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    ssn.convert(model, [0] * len(convs), [20_000])
    (bank,) = {m.bank for m in model.modules() if isinstance(m, ssn.Shaped)}
    kaiming = torch.tensor([kaiming_fan_out_std(c.weight.shape) for c in convs])
    assert bank.std == pytest.approx(float(kaiming.square().mean().sqrt()))
    # Each kernel starts at the std of the conv it replaces...
    stds = torch.stack([c.weight.std() for c in convs if c.weight.numel() >= 2_000])
    torch.testing.assert_close(stds, kaiming[[c.weight.numel() >= 2_000 for c in convs]], rtol=0.25, atol=0)
    # ...and its coefficients are about one (a unit vector, rescaled): a step on the bank
    # moves a kernel as much as a step on its own weights would, not std^2 of it.
    norms = torch.stack([m.coefficients.norm() for m in model.modules() if isinstance(m, ssn.Shaped)])
    assert norms.min() > 0.2 and norms.max() < 5


def test_ssn_banks_split_the_budget_by_what_their_layers_need():
    assert ssn.split(100, [1, 3], least=8) == [29, 71]
    assert sum(ssn.split(1001, [5, 7, 11], least=8)) == 1001


@pytest.mark.slow
def test_ssn_learns_its_groups_and_meets_the_budget_after_training(tmp_path):
    task, splits = digits()
    method, n = methods.get("ssn"), net()
    budget = round(0.3 * methods.plain_backbone(n))
    built = methods.build(method, n, budget, seed=0)
    assert set(built.model.ssn_groups.tolist()) == {0}  # one group until training learns them
    trained = method.train(
        built.model, task, splits, Recipe(epochs=1, batch_size=128, lr=0.05), 0, built.setting, progress=False
    )
    groups = trained.model.ssn_groups.tolist()
    banks = {id(m.bank) for m in trained.model.modules() if isinstance(m, ssn.Shaped)}
    assert 1 < len(set(groups)) <= method.groups and len(banks) == len(set(groups))
    assert ledger(trained.model, "fc")["backbone"] == budget
    again = method.rebuild(n, built.setting, 0, trained.model.state_dict()).eval()
    x = splits.head("test", 4)[0]
    with torch.no_grad():
        torch.testing.assert_close(again(x), trained.model.eval()(x))


def test_soft_sharing_mixes_templates_with_orthogonal_undecayed_coefficients():
    model = methods.build(methods.get("soft-sharing"), net(0.25, 3), 60_000, seed=0).model
    convs = [model.get_submodule(n) for n in softshare.stages(model)["layer3"]]
    mixes = [c.parametrizations.weight[0] for c in convs]
    alphas = torch.stack([m.coefficients for m in mixes]).detach()
    k = alphas.shape[1]
    torch.testing.assert_close(alphas.T @ alphas, torch.eye(k))  # layers x templates, orthogonal columns
    bank = mixes[0].bank.templates
    assert all(m.bank.templates is bank for m in mixes)
    expected = sum(a * t for a, t in zip(mixes[1].coefficients, bank, strict=True))
    torch.testing.assert_close(convs[1].weight, expected)
    optimizer = train._optimizer(model, Recipe(epochs=1, batch_size=8, lr=0.1, weight_decay=5e-4))
    undecayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert {id(m.coefficients) for m in mixes} <= undecayed and id(bank) not in undecayed


def test_hypernet_tiles_each_read_their_own_embedding():
    model = methods.build(methods.get("hypernet"), net(0.5, 3), 200_000, seed=0).model
    conv = model.get_submodule("layer3.0.conv2")  # 128 x 128: an 8 x 8 grid of tiles
    tiled = conv.parametrizations.weight[0]
    before = conv.weight.detach().clone()
    torch.testing.assert_close(before[16:32, 32:48], tiled.generator(tiled.z[1, 2]).detach())
    with torch.no_grad():
        tiled.z[1, 2] += 1.0
    changed = (conv.weight.detach() != before).any(dim=(2, 3))
    assert changed[16:32, 32:48].all() and changed.sum() == 16 * 16
    assert conv.weight.shape == (128, 128, 3, 3)
    assert all(n != "conv1" for n in hypernet.targets(model))  # the first conv stays ordinary


def test_low_rank_convs_keep_their_stride_and_padding():
    torch.manual_seed(0)
    for factorization, rank in [("cp", [5]), ("tucker", [6, 4])]:
        model = ResNet(18, (8, 16, 32, 64), stem="cifar", in_channels=3, num_classes=10)
        lowrank.convert(model, {"layer2.0.conv1": rank}, factorization)
        layer = model.get_submodule("layer2.0.conv1")  # 8 -> 16 channels, stride 2
        x = torch.randn(2, 8, 12, 12)
        with torch.no_grad():
            expected = F.conv2d(x, layer.weight.to_tensor(), stride=2, padding=1)
            torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)
        assert sum(p.numel() for p in layer.parameters()) == lowrank.count((16, 8, 3, 3), rank, factorization)


def test_fpgm_removes_the_filter_nearest_the_geometric_median():
    model = ResNet(10, (5, 5, 5, 5), stem="cifar", in_channels=3, num_classes=10)
    with torch.no_grad():
        for c, value in enumerate([1.0, 2.0, 3.0, 4.0, 10.0]):  # filter 2 is the median
            model.layer1[0].conv1.weight[c] = value
        model.layer1[0].conv2.weight.zero_()  # its readers tell the filters apart by nothing
    keep = {g: 5 for g in fpgm.groups(model)} | {"inner.1.0": 4}
    fpgm.prune(model, torch.randn(1, 3, 16, 16), keep)
    kept = model.layer1[0].conv1.weight[:, 0, 0, 0].tolist()
    assert kept == [1.0, 2.0, 4.0, 10.0]
    assert sum(p.numel() for n, p in model.named_parameters() if not n.startswith("fc")) == fpgm.count(
        fpgm.layout(model), keep
    )


@pytest.mark.slow
def test_fpgm_trains_prunes_to_the_budget_fine_tunes_and_resumes(tmp_path):
    task, splits = digits()
    method, n = methods.get("fpgm"), net()
    budget = round(0.3 * methods.plain_backbone(n))
    built = methods.build(method, n, budget, seed=0)
    assert abs(built.deviation) <= solver.TOLERANCE
    recipe = Recipe(epochs=1, batch_size=128, lr=0.05)
    checkpoint = tmp_path / "cell.pt"
    first = method.train(built.model, task, splits, recipe, 0, built.setting, progress=False, checkpoint=checkpoint)
    assert ledger(first.model, "fc")["backbone"] == built.ledger["backbone"]
    stage, dense = first.before
    assert stage == "before-pruning" and ledger(dense, "fc")["backbone"] == methods.plain_backbone(n)
    assert {g: k for g, (k, _) in first.sections["pruning"]["kept"].items()} == built.setting["keep"]
    assert not any(isinstance(m, nn.Conv2d) and hasattr(m, "parametrizations") for m in first.model.modules())
    again = method.rebuild(n, built.setting, 0, first.model.state_dict()).eval()
    x = splits.head("test", 4)[0]
    with torch.no_grad():
        torch.testing.assert_close(again(x), first.model.eval()(x))
    # A rerun with the same checkpoints replays the dense round, prunes alike and resumes.
    rerun = methods.build(method, n, budget, seed=0)
    second = method.train(rerun.model, task, splits, recipe, 0, rerun.setting, progress=False, checkpoint=checkpoint)
    assert second.sections["pruning"]["rounds"] == first.sections["pruning"]["rounds"]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_speed_builds_any_method_at_its_budget_beside_plain():
    from suite.measure import speed

    net = archs.Net(archs.get("resnet10-cifar"), 1.0, 3, speed.NUM_CLASSES)
    budget = round(0.3 * methods.plain_backbone(net))
    result = speed.compare(
        "resnet10-cifar", 2, None, 2, 0, torch.device("cpu"), inference_seconds=0.0, method="fpgm", budget=budget
    )
    assert abs(result["backbone"] / budget - 1) <= solver.TOLERANCE  # the pruned network, as it fine-tunes
    plain, pruned = result["train"]
    assert len(plain) == len(pruned) == 2 and set(result["deployed"]) == {1, 2}


def test_speed_refuses_a_method_or_budget_it_cannot_build_in_one_line(capsys):
    from suite import cli

    assert cli.main(["speed", "--method", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert cli.main(["speed", "--method", "ssn", "--budget", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ssn cannot reach" in err and "it reaches" in err


@pytest.mark.slow
def test_the_field_experiment_runs_end_to_end_and_shows_cost_beside_accuracy(tmp_path):
    """A cut of fashion's field (smoke, generated data): FPGM and SSN with the plain network
    at its natural size. The whole experiment: rpg-bench --suite fashion --profile smoke
    --experiments field --seeds 1."""
    import json

    from suite import cli

    out = tmp_path / "field"
    args = ["--suite", "fashion", "--profile", "smoke", "--experiments", "field", "--methods", "fpgm,ssn,plain"]
    assert cli.main([*args, "--seeds", "1", "--out", str(out), "--no-progress", "--no-open", "--no-onnx"]) == 0
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == 2 * 3 + 1 and all(r["status"] == "ok" and r["budget_met"] for r in records)
    assert all(r["step"]["median_ms"] > 0 for r in records)  # every cell timed a training step
    for r in records:
        if r["config"]["method"] == "fpgm":  # met after pruning: the dense network before is the plain one
            assert r["stages"]["before-pruning"]["ledger"]["backbone"] > r["ledger"]["backbone"]
            assert r["pruning"]["method"] == "fpgm"
    verdicts = json.loads((out / "claims.json").read_text())["claims"]
    assert not any(
        d.get("experiment") == "field" for v in verdicts for d in v.get("details", []) if isinstance(d, dict)
    )
    html = (out / "index.html").read_text()
    assert "field: cost beside top1" in html and "training step / plain" in html
    assert html.count("1.00×") >= 2  # the plain row is its own reference
