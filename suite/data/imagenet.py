"""ImageNet (ILSVRC-2012) in torchvision's ImageFolder layout, streamed from disk.

    <data-root>/imagenet/train/<wnid>/*.JPEG   1,281,167 images in 1,000 class folders
    <data-root>/imagenet/val/<wnid>/*.JPEG     50,000 images in the same 1,000 folders

(``<data-root>`` may also be that ``imagenet`` folder itself.) The validation images
must be sorted into class folders, as the usual ``valprep.sh`` does. The paper's
"validation" accuracy is ours on test: the official validation set, read once. Model
selection uses 10,000 training images carved out (stratified, seed 0), never test.

Crops follow the standard ResNet recipe (the paper's): random-resized 224 crops and
flips for training; resize to 256 and centre-crop 224 for evaluation (the smoke profile
crops its small generated images to 64 the same way). The fingerprint
hashes the file list and labels, not the 150 GB of contents.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from suite.data import root as data
from suite.data.stream import Stream
from suite.errors import UsageError

# torchvision and sklearn are imported where used: each import costs seconds at every start.
if TYPE_CHECKING:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

SPLIT_SEED = 0
VAL_SIZE = 10_000
# The generated stand-in (write_generated; the smoke profile reads it): classes, and images
# per class in train/ (val is carved from them) and in val/ (the test split).
GENERATED = {"classes": 10, "train": 40, "val": 10}
CLASSES = 1000
CROP = 224  # evaluation resizes to CROP * 8/7 (256) first
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LAYOUT = "<data-root>/imagenet/train/<wnid>/*.JPEG and <data-root>/imagenet/val/<wnid>/*.JPEG (ImageFolder)"


def transforms(crop: int = CROP) -> tuple[v2.Compose, v2.Compose]:
    """The training and the evaluation transform for ``crop``-pixel inputs."""
    from torchvision.transforms import v2

    tensor = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    train = v2.Compose([v2.RandomResizedCrop(crop, antialias=True), v2.RandomHorizontalFlip(), *tensor])
    evaluate = v2.Compose([v2.Resize(round(crop * 8 / 7), antialias=True), v2.CenterCrop(crop), *tensor])
    return train, evaluate


def locate(data_root: str | None) -> Path:
    if data_root is None:
        raise UsageError(f"imagenet needs --data-root: {LAYOUT}")
    root = Path(data_root)
    for folder in (root / "imagenet", root):
        if (folder / "train").is_dir() and (folder / "val").is_dir():
            return folder
    raise UsageError(f"imagenet not found under {data.where(root)}: expected {data.placed(LAYOUT, root)}")


def _folder(path: Path, transform) -> ImageFolder:
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(path), transform=transform)
    except (FileNotFoundError, OSError) as e:
        raise UsageError(f"imagenet under {path} cannot be read ({e}): expected {LAYOUT}") from None


def streams(folder: Path, workers: int, crop: int = CROP) -> tuple[dict[str, Stream], str]:
    """{'train'|'val'|'test': Stream} of ``crop``-pixel images, and the fingerprint of the file lists."""
    from sklearn.model_selection import train_test_split
    from torchvision.datasets.vision import StandardTransform

    augment, fixed = transforms(crop)
    train, test = _folder(folder / "train", augment), _folder(folder / "val", fixed)
    evaluate = copy.copy(train)  # the same files (listed once: 1.28M of them), cropped as test is
    evaluate.transform, evaluate.transforms = fixed, StandardTransform(fixed)
    if test.classes != train.classes:
        raise UsageError(f"imagenet under {folder}: val/ and train/ hold different class folders; expected {LAYOUT}")
    if len(train.classes) > CLASSES:
        raise UsageError(f"imagenet under {folder}: {len(train.classes)} class folders, more than {CLASSES}")
    targets = np.asarray(train.targets)
    val_size = _val_size(len(targets))
    tr, va = train_test_split(np.arange(len(targets)), test_size=val_size, stratify=targets, random_state=SPLIT_SEED)
    tr, va = np.sort(tr), np.sort(va)
    whole = Stream(train, targets, workers)
    out = {
        "train": whole.subset(tr),
        "val": Stream(evaluate, targets, workers).subset(va),
        "test": Stream(test, np.asarray(test.targets), workers),
        # The training images cropped as test's, for Table 8's training accuracy.
        "train_eval": Stream(evaluate, targets, workers).subset(tr),
    }
    h = hashlib.sha256()
    for name, ds in (("train", train), ("test", test)):
        h.update(name.encode())
        for path, label in ds.samples:
            h.update(f"{Path(path).relative_to(folder / ('train' if name == 'train' else 'val'))}:{label}\n".encode())
    return out, h.hexdigest()[:16]


def _val_size(train: int) -> int:
    """How many of train/'s images ``streams`` carves into val."""
    return min(VAL_SIZE, train // 5)


def generated_sizes() -> dict[str, int]:
    """The split sizes ``streams`` makes of write_generated's images (rpg-bench plan counts them)."""
    train = GENERATED["classes"] * GENERATED["train"]
    val = _val_size(train)
    return {"train": train - val, "val": val, "test": GENERATED["classes"] * GENERATED["val"]}


def templates(classes: int = 10, size: int = 64, seed: int = 0) -> np.ndarray:
    """The generated classes' fixed pictures: write_generated's first draw, to which it adds noise."""
    return np.random.default_rng(seed).uniform(0, 255, size=(classes, size, size, 3))


def write_generated(
    folder: Path,
    classes: int = GENERATED["classes"],
    train: int = GENERATED["train"],
    val: int = GENERATED["val"],
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Generated stand-in images in the ImageFolder layout: one fixed random template per
    class plus noise, as JPEG. For tests and the smoke profile; it is not ImageNet."""
    rng = np.random.default_rng(seed)
    pictures = rng.uniform(0, 255, size=(classes, size, size, 3))  # = templates(classes, size, seed)
    for split, n in (("train", train), ("val", val)):
        for c in range(classes):
            target = folder / "imagenet" / split / f"n{c:08d}"
            target.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                image = np.clip(pictures[c] * 0.5 + rng.normal(0, 40, size=pictures[c].shape) + 64, 0, 255)
                Image.fromarray(image.astype(np.uint8)).save(target / f"{split}_{c}_{i}.JPEG", quality=90)
    return folder
