"""Table 4's three sharing schemes on stacked hourglasses, and the pose task's metric path."""

import pytest
import torch
from torch import nn

import rpg
from suite import archs, cli, methods, tasks
from suite.data.stickmen import flip_order
from suite.run import runner
from suite.suites import spec
from suite.tasks import heatmaps
from suite.tasks.mpii import STRIDE

POSE = tasks.get("mpii")


def net(stacks: int, width: float = 1 / 32) -> archs.Net:
    return archs.Net(archs.get(f"hourglass-{stacks}x"), width, POSE.in_channels, POSE.num_classes)


def build(method: str, stacks: int, budget: int | None = None):
    m = methods.get(method)
    return methods.build(m, net(stacks), budget or m.natural(net(stacks)), seed=0)


def test_cpm_applies_one_subnetwork_at_every_stage():
    built = build("cpm", 4)
    model = built.model
    assert len(model.subnetworks) == 1
    assert built.ledger["backbone"] == sum(p.numel() for p in model.parameters())
    # One sub-network's weights however many stages: CPM at 4x is CPM at 2x.
    assert built.ledger["backbone"] == build("cpm", 2).ledger["backbone"]
    out = model.eval()(torch.randn(2, 3, 64, 64))
    assert out.shape == (4, 2, 16, 16, 16)
    assert not torch.allclose(out[0], out[1])  # each stage reads the features the last one left


def test_rpg_generates_every_subnetwork_from_one_ring_of_cpms_size_each_with_its_own_bn():
    cpm = build("cpm", 4).ledger["backbone"]
    built = build("rpg", 4, cpm)
    assert built.ledger["backbone"] == cpm < build("noshare", 4).ledger["backbone"]
    model = built.model
    assert len(model.subnetworks) == 4 and len(rpg.plan(model)) == 1
    a, b = model.subnetworks[0], model.subnetworks[1]
    assert a.hourglass.skip.bn1.weight is not b.hourglass.skip.bn1.weight
    # One ring, different kernels: each layer reads it through its own permutation and signs.
    assert not torch.equal(a.hourglass.skip.conv2.weight, b.hourglass.skip.conv2.weight)


def test_a_budget_that_names_a_method_is_its_natural_size(tmp_path, capsys):
    suite = spec.load("pose")
    cells = {(c.arch, c.method): c.budget for c in runner.expand(suite, "smoke", seeds=1)}
    assert cells[("hourglass-2x", "rpg")] == cells[("hourglass-2x", "cpm")] == methods.get("cpm").natural(net(2))
    assert cells[("hourglass-4x", "noshare")] == methods.plain_backbone(net(4))
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\n[[experiment]]\nname = "e"\ntask = "mpii"\narch = "hourglass-2x"\nmethods = ["rpg@rpg"]\n'
    )
    assert cli.main(["--suite", str(bad), "--profile", "smoke", "--out", str(tmp_path / "out")]) == 2
    assert "rpg has no natural size" in capsys.readouterr().err


class Oracle(nn.Module):
    """Emits the rendered targets of the images it has been shown: a perfect predictor."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.maps = {
            float(img.sum()): heatmaps.render(t[None], img.shape[-1] // STRIDE, STRIDE)[0]
            for img, t in zip(x, y, strict=True)
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.maps[float(img.sum())] for img in x])[None]


def test_perfect_heatmaps_score_full_pckh_and_shifted_ones_fail():
    splits = POSE.load(None, torch.device("cpu"), "smoke")
    x, y = splits.tensors["test"]
    oracle = Oracle(x, y)
    scores = POSE.scores(oracle, splits, "test", 16)
    # Decoding the rendered maps lands within a quarter-pixel step of every visible joint.
    assert scores["mean"] == 100.0
    assert all(v == 100.0 for v in scores["per_joint"].values() if v is not None)
    # Moved three heat-map pixels (12 input pixels), the joints miss by more than half a head.
    shifted = Oracle(x, y)
    shifted.maps = {k: torch.roll(v, 3, dims=-1) for k, v in oracle.maps.items()}
    assert POSE.evaluate(shifted, splits, "test", 16) < 20.0


@pytest.mark.slow
def test_training_lowers_the_heatmap_loss_and_a_subset_is_not_stratified_on_joints():
    splits = POSE.load(None, torch.device("cpu"), "smoke").subset({"train": 64})
    assert splits.sizes["train"] == 64
    built = build("noshare", 2)
    model = built.model
    optimiser = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    x, y = splits.tensors["train"]
    losses = []
    for _ in range(15):
        loss = POSE.loss(model.train()(x[:32]), y[:32])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_stick_figures_are_never_flipped_and_photographs_may_be():
    splits = POSE.load(None, torch.device("cpu"), "smoke")
    x, y = splits.tensors["train"]
    assert (y[:, -1, 1] == 0).all()  # their sides differ by colour, which a flip would not swap
    # No scaling, no rotation: only flips can move anything.
    _, kept = heatmaps.augment(x, y, torch.Generator().manual_seed(0), flip_order(), scale=0.0, rotate=0.0)
    torch.testing.assert_close(kept, y, atol=1e-3, rtol=0)
    photos = y.clone()
    photos[:, -1, 1] = 1.0
    _, moved = heatmaps.augment(x, photos, torch.Generator().manual_seed(0), flip_order(), scale=0.0, rotate=0.0)
    changed = (moved - photos).abs().amax(dim=(1, 2)) > 1e-3
    assert 0.2 < changed.float().mean() < 0.8
