"""The MPII reader: the release's .mat and images, person crops, held-out splits, layout errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from suite.data import mpii, stickmen
from suite.errors import UsageError
from suite.tasks import heatmaps


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return mpii.write_generated(tmp_path_factory.mktemp("mpii") / "mpii", images=10)


def test_every_annotated_person_is_read_with_its_head_size(release):
    # not the test image, nor the first image's unannotated bystander (no joints, no objpos)
    images = mpii.read(release)
    assert len(images) == 10 and all(len(p) == 1 for p in images)
    person = images[0][0]
    assert person.image == "000000000.jpg" and person.joints.shape == (16, 2)
    assert person.head > 0 and person.scale > 0
    # is_visible read from numbers and strings alike
    assert (person.visible == stickmen.generate(10, 160, 0)["visible"][0]).all()


def test_held_out_splits_take_whole_images(release):
    carved = mpii.carve(mpii.read(release))
    assert {k: len(v) for k, v in carved.items()} == {"test": 2, "val": 2, "train": 6}
    names = {k: {p.image for p in v} for k, v in carved.items()}
    assert not (names["test"] & names["train"]) and not (names["val"] & names["train"])


def test_a_crop_puts_every_visible_joint_on_the_figure_and_scales_the_head(release):
    splits = mpii.splits(release, torch.device("cpu"), workers=0)
    x, y = splits.head("test", 2)
    assert x.shape == (2, 3, mpii.CROP, mpii.CROP) and x.is_contiguous()
    joints, visible, head = heatmaps.unpack(y)
    pixels = x + torch.tensor(mpii.MEAN)[:, None, None]
    for i in range(2):
        for j in torch.nonzero(visible[i]).flatten():
            col, row = joints[i, j].round().long().tolist()
            # Limbs are drawn bright over a background below 0.15: a joint is at a limb's end.
            assert pixels[i, :, row - 1 : row + 2, col - 1 : col + 2].amax() > 0.5, (i, j)
    persons = mpii.carve(mpii.read(release))["test"][:2]
    expected = [p.head * mpii.CROP / (200 * 1.25 * p.scale) for p in persons]
    torch.testing.assert_close(head, torch.tensor(expected, dtype=head.dtype))


def test_crop_geometry_centres_the_person_and_flips_about_the_middle():
    m = mpii.crop_transform((100.0, 80.0), 1.0, 1.25, 0.0, False)
    assert np.allclose(m @ [100, 95, 1], [128, 128, 1])  # objpos, 15 x scale pixels lower
    rotated = mpii.crop_transform((100.0, 80.0), 1.0, 1.25, 30.0, False)
    point = [140, 60, 1]
    assert np.isclose(np.linalg.norm((m @ point)[:2] - 128), np.linalg.norm((rotated @ point)[:2] - 128))
    flipped = mpii.crop_transform((100.0, 80.0), 1.0, 1.25, 0.0, True)
    assert np.allclose((flipped @ point)[0], mpii.CROP - 1 - (m @ point)[0])


@pytest.mark.parametrize("angle, flip", [(0.0, False), (30.0, False), (-20.0, True)])
def test_a_crop_puts_a_pixel_where_the_joint_transform_puts_its_joint(angle, flip):
    # One bright pixel, zoomed 4x: bilinear spreads it into a tent whose centroid is where
    # PIL put it, which must be where crop_transform maps the pixel's coordinates.
    image = np.zeros((120, 120, 3), np.uint8)
    image[57, 63] = 255  # row y = 57, column x = 63
    forward = mpii.crop_transform((60.0, 55.0), 0.2, 0.32, angle, flip)  # 256 / (200 x 0.32) = 4x
    crop = np.asarray(mpii.warp(Image.fromarray(image), forward), dtype=float)[..., 0]
    rows, cols = np.indices(crop.shape)
    found = [(cols * crop).sum() / crop.sum(), (rows * crop).sum() / crop.sum()]
    expected = (forward @ [63, 57, 1])[:2]
    assert np.allclose(found, expected, atol=0.1), (found, expected)


def test_training_crops_are_jittered_and_repeat_with_their_seed(release):
    stream = mpii.splits(release, torch.device("cpu"), workers=0).streams["train"]
    a = next(stream.batches(4, torch.device("cpu"), torch.Generator().manual_seed(1)))
    b = next(stream.batches(4, torch.device("cpu"), torch.Generator().manual_seed(1)))
    c = next(stream.batches(4, torch.device("cpu"), torch.Generator().manual_seed(2)))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


def test_missing_or_broken_releases_name_the_layout(tmp_path):
    with pytest.raises(UsageError, match="mpii needs --data-root"):
        mpii.locate(None)
    with pytest.raises(UsageError, match="mpii not found under.*mpii_human_pose_v1_u12_1.mat"):
        mpii.locate(str(tmp_path))
    broken = tmp_path / "mpii"
    (broken / "images").mkdir(parents=True)
    (broken / mpii.ANNOTATIONS).write_bytes(b"not a mat file")
    assert mpii.locate(str(tmp_path)) == broken
    with pytest.raises(UsageError, match="cannot be read"):
        mpii.read(broken)
