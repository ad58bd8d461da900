"""PCKh against cases worked by hand: head-size normalisation, invisible joints, MPII's mean."""

import pytest
import torch

from suite.tasks.pckh import JOINTS, decode, head_size, pckh

J = len(JOINTS)
PELVIS, THORAX, HEAD_TOP, R_WRIST = (JOINTS.index(n) for n in ("pelvis", "thorax", "head_top", "r_wrist"))


def people(n=2):
    truth = torch.arange(n * J * 2, dtype=torch.float32).reshape(n, J, 2)
    return truth, truth.clone(), torch.ones(n, J, dtype=torch.bool)


def test_head_size_is_six_tenths_of_the_head_box_diagonal():
    assert head_size(torch.tensor([[10.0, 20.0, 13.0, 24.0]])).tolist() == pytest.approx([3.0])


def test_a_joint_counts_within_half_its_own_person_s_head_size():
    truth, predicted, visible = people()
    head = torch.tensor([10.0, 20.0])
    predicted[0, HEAD_TOP, 0] += 4.0  # 0.4 of 10: correct
    predicted[1, HEAD_TOP, 1] += 9.0  # 0.45 of 20: correct
    predicted[0, R_WRIST] += torch.tensor([3.0, 4.0])  # 5 = exactly 0.5 of 10: correct (<=)
    predicted[1, R_WRIST, 0] -= 10.5  # 0.525 of 20: wrong
    result = pckh(predicted, truth, visible, head)
    assert result["per_joint"]["head_top"] == 100.0
    assert result["per_joint"]["r_wrist"] == 50.0
    # 14 joints per person count in the mean; one of 28 is wrong.
    assert result["mean"] == pytest.approx(100.0 * 27 / 28)
    # The same error at a threshold of 0.3 misses both head tops and both wrists.
    assert pckh(predicted, truth, visible, head, threshold=0.3)["mean"] == pytest.approx(100.0 * 24 / 28)


def test_invisible_joints_and_pelvis_and_thorax_do_not_count():
    truth, predicted, visible = people()
    head = torch.tensor([10.0, 10.0])
    predicted[:, PELVIS] += 100.0
    predicted[:, THORAX] += 100.0
    predicted[0, R_WRIST] += 100.0
    visible[0, R_WRIST] = False  # a wrong but invisible joint
    visible[:, HEAD_TOP] = False  # never visible anywhere
    result = pckh(predicted, truth, visible, head)
    assert result["per_joint"]["pelvis"] == 0.0 and result["per_joint"]["thorax"] == 0.0  # reported, not averaged
    assert result["per_joint"]["r_wrist"] == 100.0  # the one visible wrist is right
    assert result["per_joint"]["head_top"] is None
    assert result["mean"] == 100.0


def test_decode_finds_the_peak_and_leans_a_quarter_pixel_to_the_larger_neighbour():
    maps = torch.zeros(1, 2, 8, 10)
    maps[0, 0, 3, 5], maps[0, 0, 3, 6], maps[0, 0, 2, 5] = 1.0, 0.5, 0.2  # right and up
    maps[0, 1, 0, 9] = 1.0  # on the border: no neighbour on one side, no shift
    assert decode(maps).tolist() == [[[5.25, 2.75], [9.0, 0.0]]]
