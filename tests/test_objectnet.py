"""ObjectNet (Table 8c): the release's mapping files read as the standard evaluation does."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from suite.data import imagenet, objectnet
from suite.errors import UsageError

CLASSES = 10


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("objectnet")
    objectnet.write_generated(folder, imagenet_classes=CLASSES, per_class=4, size=24)
    return folder


def test_only_mapped_classes_are_read_and_each_maps_through_the_release_files(release):
    root = objectnet.locate(str(release))
    assert root == release / objectnet.FOLDER and objectnet.locate(str(release / "elsewhere")) is None
    mapped = objectnet.classes(root)
    # The files route names -> line of the 2012 list -> output index; "sock" maps to nothing.
    assert mapped == {"padlock": [5], "ring_binder": [0], "toaster": [1, 2], "whistle": [3]}
    images = objectnet.stream(root, crop=16, workers=0)
    assert len(images) == 4 * 4 and images.correct == [[5], [0], [1, 2], [3]]
    x, y = images.head(3, torch.device("cpu"))
    assert x.shape == (3, 3, 16, 16) and y.tolist() == [0, 0, 0]


def test_the_release_frame_is_cut_off(release):
    root = release / objectnet.FOLDER
    data = objectnet.Images(root, ["toaster"], lambda image: image)
    image = data[0][0]
    assert image.size == (24, 24)  # 28 pixels framed, 2 cut from each side
    red = torch.from_numpy(np.array(image)).float()
    assert not ((red[..., 0] == 255) & (red[..., 1] == 0) & (red[..., 2] == 0)).all(dim=1).any()


class Oracle(nn.Module):
    """Outputs the generated class whose template an image is closest to, as 1000 logits would."""

    def __init__(self, size: int) -> None:
        super().__init__()
        t = torch.from_numpy(imagenet.templates(CLASSES, size)).float().permute(0, 3, 1, 2) / 255.0
        mean, std = torch.tensor(imagenet.MEAN)[:, None, None], torch.tensor(imagenet.STD)[:, None, None]
        self.register_buffer("templates", ((t * 0.5 + 0.25) - mean) / std)

    def forward(self, x):
        distance = ((x[:, None] - self.templates[None]) ** 2).flatten(2).mean(2)
        return -distance


def test_top1_counts_a_hit_on_any_of_the_mapped_imagenet_classes(release):
    root = release / objectnet.FOLDER
    images = objectnet.stream(root, crop=24, workers=0)
    # Centre crop after a resize to 27 and back to 24 blurs little: the templates stay nearest.
    assert objectnet.top1(Oracle(24), images, 8, torch.device("cpu")) == 100.0

    class Wrong(Oracle):
        def forward(self, x):  # always the one ImageNet class no mapped class uses
            out = torch.zeros(len(x), CLASSES)
            out[:, 9] = 1.0
            return out

    # Class 9 is never among the mapped classes' outputs: the argmax is over those only.
    assert objectnet.top1(Wrong(24), images, 8, torch.device("cpu")) < 100.0


def test_a_broken_mapping_is_one_clear_error(release, tmp_path):
    import shutil

    copy = tmp_path / objectnet.FOLDER
    shutil.copytree(release / objectnet.FOLDER, copy)
    mapping = copy / "mappings" / "objectnet_to_imagenet_1k.json"
    data = json.loads(mapping.read_text())
    data["toaster"] = "a class no list has"
    mapping.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="ImageNet class 'a class no list has' is not in imagenet_to_label_2012_v2"):
        objectnet.classes(copy)
