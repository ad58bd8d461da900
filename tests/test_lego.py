"""LegoNet: kernels built from shared lego filters, a selection learned straight-through,
balanced, then frozen; counted as legos + coefficients."""

import torch
from torch import nn

import rpg
from baselines import lego
from baselines.plain import ResNet
from suite.counting.ledger import ledger


def test_the_kernel_is_coefficient_times_the_selected_lego_per_split():
    torch.manual_seed(0)
    w = lego.LegoWeight(torch.Size([6, 4, 3, 3]), legos=3, split=2)
    kernel = w(torch.empty(0))
    sel = w.logits.argmax(-1)
    for c in range(6):
        for i in range(2):
            expected = w.coef[i, c] * w.lego[sel[i, c]]
            assert torch.allclose(kernel[c, 2 * i : 2 * i + 2], expected)


def test_the_selection_learns_straight_through_and_stops_after_the_warm_up():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1))
    lego.convert(model, {"0": 2}, split=2)
    w = model[0].parametrizations.weight[0]
    model(torch.randn(2, 4, 5, 5)).square().sum().backward()
    assert w.logits.grad is not None and w.logits.grad.abs().sum() > 0  # through the one-hot
    assert w.lego.grad.abs().sum() > 0 and w.coef.grad.abs().sum() > 0
    w.on_epoch_end(1, 4)
    assert not w.frozen
    w.on_epoch_end(2, 4)
    assert w.frozen and not w.logits.requires_grad
    before = w.logits.argmax(-1).clone()
    model.zero_grad()
    model(torch.randn(2, 4, 5, 5)).square().sum().backward()
    assert w.logits.grad is None and torch.equal(w.logits.argmax(-1), before)


def test_the_balance_term_pushes_over_used_legos_down():
    w = lego.LegoWeight(torch.Size([8, 2, 3, 3]), legos=4, split=1)
    with torch.no_grad():
        w.logits.zero_()
        w.logits[..., 0] = 1.0  # every output picks lego 0: over-used; 1..3 unused
    grad = w._balance(torch.zeros_like(w.logits))
    assert (grad[..., 0] > 0).all() and (grad[..., 1:] < 0).all()


def test_a_frozen_selection_survives_a_state_dict_round_trip():
    model = nn.Sequential(nn.Conv2d(4, 8, 3))
    lego.convert(model, {"0": 3})
    model[0].parametrizations.weight[0].on_epoch_end(10, 10)
    other = nn.Sequential(nn.Conv2d(4, 8, 3))
    lego.convert(other, {"0": 3})
    other.load_state_dict(model.state_dict())
    x = torch.randn(1, 4, 6, 6)
    assert torch.equal(other(x), model(x))
    assert not other[0].parametrizations.weight[0].logits.requires_grad  # frozen by the load itself


def test_ledger_counts_legos_and_coefficients_not_the_logits_and_materialize_is_dense():
    model = ResNet(10, (8, 16, 32, 64), stem="cifar", in_channels=1, num_classes=10)
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    dense_before = ledger(model)["dense"]
    legos = {n: max(1, m.out_channels // 4) for n, m in convs.items()}
    lego.convert(model, legos, split=2)
    expected = sum(lego.count(convs[n].weight.shape, legos[n], 2) for n in convs)
    counts = ledger(model)
    assert counts["backbone"] == expected + bn
    assert counts["dense"] == dense_before
    deployed = rpg.materialize(model)
    assert not any(hasattr(m, "parametrizations") for m in deployed.modules())
    x = torch.randn(2, 1, 12, 12)
    model.eval()
    deployed.eval()
    assert torch.allclose(deployed(x), model(x), atol=1e-6)


def test_an_rgb_stem_is_not_split():
    assert lego.split_of(3, 2) == 1 and lego.split_of(64, 2) == 2
    assert lego.count((16, 3, 3, 3), 4, 2) == 4 * 3 * 9 + 16
