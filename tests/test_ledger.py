"""The ledger's one counting rule, and the architectures it counts."""

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.utils import prune

import rpg
from baselines.plain import ResNet
from suite.counting.ledger import format_count, ledger, parse_count
from suite.errors import UsageError


@pytest.mark.parametrize("depth", [18, 34])
def test_imagenet_resnets_are_torchvisions_parameter_for_parameter(depth):
    ours = ResNet(depth)
    theirs = getattr(torchvision.models, f"resnet{depth}")()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict())
    ours.eval(), theirs.eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_resnet18_at_width_one_has_torchvisions_11689512_parameters():
    counts = ledger(ResNet(18))
    assert counts["learned"] == 11_689_512
    assert counts["backbone"] == 11_689_512 - (512 * 1000 + 1000)
    assert counts["dense"] == 11_689_512


def test_rpg_counts_its_ring_once_and_generated_kernels_as_dense():
    model = ResNet(18, (16, 32, 64, 128), stem="cifar", num_classes=10)
    dense_before = ledger(model)["dense"]
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    rpg.convert(model, 12345)
    counts = ledger(model)
    assert counts["backbone"] == 12345 + bn
    assert counts["learned"] == 12345 + bn + 128 * 10 + 10
    assert counts["dense"] == dense_before == ledger(rpg.materialize(model))["dense"]
    assert counts["stored_bytes"] < ledger(rpg.materialize(model))["stored_bytes"] / 5


def test_tied_weights_count_once():
    a = nn.Linear(10, 10)
    model = nn.Sequential(a, nn.ReLU(), a, nn.Linear(10, 2))
    assert ledger(model, head="3")["learned"] == 110 + 22


def test_pruned_weights_count_their_unmasked_entries():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.Flatten(), nn.Linear(8, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.75)
    assert ledger(model, head="2")["backbone"] == 216 - 162


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2M", 2_000_000),
        ("45K", 45_000),
        ("11173962", 11_173_962),
        ("1.5m", 1_500_000),
        ("11_173_962", 11_173_962),
        (300, 300),
    ],
)
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "two", "-5", "0", "5X"])
def test_parse_count_rejects_bad_input(text):
    with pytest.raises(UsageError):
        parse_count(text)


def test_format_count():
    assert [format_count(n) for n in (999, 45_000, 2_000_000, 11_689_512)] == ["999", "45K", "2M", "11.7M"]
