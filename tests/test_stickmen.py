"""The synthetic pose generator: figures inside the image, occlusion marked, heads boxed."""

import numpy as np

from suite.data import stickmen
from suite.tasks.pckh import JOINTS


def test_figures_are_inside_the_image_repeatable_and_differ_by_seed():
    a, b, c = stickmen.generate(20, 64, seed=3), stickmen.generate(20, 64, seed=3), stickmen.generate(20, 64, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["joints"], c["joints"])
    assert a["images"].shape == (20, 3, 64, 64) and a["images"].dtype == np.float32
    assert (a["joints"] >= 0).all() and (a["joints"] < 64).all()


def test_occluded_joints_are_invisible_and_drawn_over():
    d = stickmen.generate(40, 64, seed=0)
    hidden = np.argwhere(~d["visible"])
    assert 0 < len(hidden) < d["visible"].size / 4  # some occlusion, most joints visible
    for i, j in hidden:
        x, y = d["joints"][i, j].astype(int)
        pixel = d["images"][i, :, y, x]
        # An occluder is one flat grey-ish colour, never a limb's saturated colour.
        assert pixel.max() <= 0.5 + 1e-6, (i, JOINTS[j], pixel)


def test_the_head_box_is_the_square_around_the_head_segment():
    d = stickmen.generate(5, 64, seed=0)
    neck, top = d["joints"][:, JOINTS.index("upper_neck")], d["joints"][:, JOINTS.index("head_top")]
    box = d["head_box"]
    np.testing.assert_allclose((box[:, :2] + box[:, 2:]) / 2, (neck + top) / 2, atol=1e-4)
    np.testing.assert_allclose(box[:, 2] - box[:, 0], np.linalg.norm(top - neck, axis=1), atol=1e-4)


def test_flipping_swaps_left_and_right_and_twice_is_identity():
    order = stickmen.flip_order()
    assert [order[o] for o in order] == list(range(len(JOINTS)))
    assert JOINTS[order[JOINTS.index("r_wrist")]] == "l_wrist"
    assert order[JOINTS.index("pelvis")] == JOINTS.index("pelvis")
