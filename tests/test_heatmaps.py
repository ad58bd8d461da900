"""Pose targets: packing, Gaussian heat-maps, and augmentation that moves joints with pixels."""

import torch

from suite.data.stickmen import flip_order
from suite.tasks import heatmaps


def test_pack_and_unpack_round_trip():
    joints, visible, head = torch.rand(3, 16, 2) * 64, torch.rand(3, 16) > 0.3, torch.rand(3) * 10
    j, v, h = heatmaps.unpack(heatmaps.pack(joints, visible, head))
    assert torch.equal(j, joints) and torch.equal(v, visible) and torch.equal(h, head)


def test_heatmaps_peak_at_the_joint_and_are_empty_for_invisible_ones():
    joints = torch.zeros(1, 16, 2)
    joints[0, 0] = torch.tensor([4 * 5 + 1.5, 4 * 9 + 1.5])  # heat-map pixel (5, 9) at stride 4
    visible = torch.zeros(1, 16, dtype=torch.bool)
    visible[0, 0] = True
    maps = heatmaps.render(heatmaps.pack(joints, visible, torch.ones(1)), 16, 4)
    assert maps.shape == (1, 16, 16, 16)
    assert maps[0, 0].argmax() == 9 * 16 + 5 and maps[0, 0, 9, 5] == 1.0
    assert maps[0, 1:].abs().sum() == 0


def test_augmentation_moves_each_joint_with_its_pixels_and_swaps_sides_when_flipped():
    n, size = 64, 48
    joints = torch.full((n, 16, 2), 24.0)
    joints[:, 0] = torch.tensor([30.0, 18.0])  # r_ankle, off centre
    joints[:, 6] = torch.tensor([20.0, 28.0])  # pelvis and thorax: no partner to swap with
    joints[:, 7] = torch.tensor([26.0, 16.0])
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blob = torch.exp(-((xx - 30.0) ** 2 + (yy - 18.0) ** 2) / 4.0)  # drawn at r_ankle only
    images = blob.expand(n, 3, size, size).clone()
    target = heatmaps.pack(joints, torch.ones(n, 16, dtype=torch.bool), torch.full((n,), 10.0))
    out, moved = heatmaps.augment(images, target, torch.Generator().manual_seed(0), flip_order())
    new_joints, visible, head = heatmaps.unpack(moved)
    peak = out[:, 0].flatten(1).argmax(1)
    found = torch.stack([peak % size, peak // size], -1).float()
    flipped = (new_joints[:, 5] - found).norm(dim=-1) < (new_joints[:, 0] - found).norm(dim=-1)
    assert 10 < int(flipped.sum()) < n - 10  # about half flipped
    tracked = torch.where(flipped[:, None], new_joints[:, 5], new_joints[:, 0])  # r_ankle became l_ankle
    assert (tracked - found).norm(dim=-1).max() <= 1.5
    # Distances and head sizes scale together.
    before = (joints[:, 6] - joints[:, 7]).norm(dim=-1)
    after = (new_joints[:, 6] - new_joints[:, 7]).norm(dim=-1)
    torch.testing.assert_close(after / before, head / 10.0)
    assert visible.all()  # nothing this close to the centre leaves the image
