"""Stacked hourglasses: shapes, intermediate outputs, and what sharing does to the count."""

import pytest
import torch

from baselines.hourglass import StackedHourglass


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("stacks", [1, 2, 4])
def test_every_sub_network_emits_heatmaps_at_a_quarter_of_the_input(stacks):
    model = StackedHourglass(stacks, joints=16, channels=16, depth=2).eval()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (stacks, 2, 16, 16, 16)
    # Every sub-network's weights shape its own output and the ones after it.
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_shared_sub_networks_keep_one_sub_network_s_count_and_unshared_grow_with_depth():
    def net(stacks, shared):
        return StackedHourglass(stacks, channels=16, depth=2, shared=shared)

    one = count(net(1, False))
    assert count(net(4, True)) == count(net(2, True)) > one  # one set of maps back, whatever the depth
    transition = count(net(2, True)) - one
    per_subnetwork = count(net(2, False)) - count(net(1, False)) - transition
    assert count(net(4, False)) == one + 3 * (per_subnetwork + transition)


def test_the_paper_sized_network_has_about_3_3m_parameters_per_sub_network():
    """Table 4's CPM row: 3.3M at every depth; no sharing: 6.7M at 2x, 13.3M at 4x."""
    assert count(StackedHourglass(1, shared=True)) == pytest.approx(3.3e6, rel=0.06)
    assert count(StackedHourglass(4, shared=False)) == pytest.approx(13.3e6, rel=0.06)
