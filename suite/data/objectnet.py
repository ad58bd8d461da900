"""ObjectNet (Barbu et al. 2019), for Table 8(c): ImageNet-trained models evaluated, with
no fine-tuning, on the 113 ObjectNet classes that overlap ImageNet.

    <data-root>/objectnet-1.0/images/<folder>/*.png
    <data-root>/objectnet-1.0/mappings/folder_to_objectnet_label.json
    <data-root>/objectnet-1.0/mappings/objectnet_to_imagenet_1k.json
    <data-root>/objectnet-1.0/mappings/imagenet_to_label_2012_v2
    <data-root>/objectnet-1.0/mappings/pytorch_to_imagenet_2012_id.json

The release's own mapping files give the standard evaluation: an ObjectNet class maps to
one or more ImageNet classes (``"; "``-separated names in objectnet_to_imagenet_1k.json);
a name is a line of imagenet_to_label_2012_v2, whose line number pytorch_to_imagenet_2012_id
maps back to the model's output index (torchvision's order: the ImageNet class folders
sorted, as rpg-bench's ImageNet reader has them). Only images of the 113 mapped classes are
read; the model's prediction is its top logit among the ImageNet classes any mapped class
uses, and it is correct when that class is one its image's class maps to. Each image loses
the 2-pixel border the release draws around it, then is evaluated as ImageNet's test
images are (resize, centre crop).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from suite.data import imagenet
from suite.data.stream import Stream
from suite.errors import UsageError

FOLDER = "objectnet-1.0"
MAPPINGS = (
    "folder_to_objectnet_label.json",
    "objectnet_to_imagenet_1k.json",
    "imagenet_to_label_2012_v2",
    "pytorch_to_imagenet_2012_id.json",
)
BORDER = 2  # the release frames every image; the frame is not the object
LAYOUT = f"<data-root>/{FOLDER}/images/<folder>/*.png and <data-root>/{FOLDER}/mappings/ ({', '.join(MAPPINGS)})"


def locate(data_root: str | None) -> Path | None:
    """The ObjectNet release under the data root, or None when it is not there (ObjectNet
    is optional: Table 8(c) is then not measured)."""
    if data_root is None:
        return None
    for folder in (Path(data_root) / FOLDER, Path(data_root)):
        if (folder / "images").is_dir() and (folder / "mappings").is_dir():
            return folder
    return None


def classes(folder: Path) -> dict[str, list[int]]:
    """Every mapped image folder, with the model output indices its class maps to."""
    where = folder / "mappings"
    try:
        folder_label = json.loads((where / MAPPINGS[0]).read_text(encoding="utf-8"))
        label_names = json.loads((where / MAPPINGS[1]).read_text(encoding="utf-8"))
        line_names = (where / MAPPINGS[2]).read_text(encoding="utf-8").splitlines()
        index_line = json.loads((where / MAPPINGS[3]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"objectnet under {folder}: a mapping file cannot be read ({e}); expected {LAYOUT}") from None
    line_index = {int(line): int(index) for index, line in index_line.items()}
    name_index = {name.strip(): line_index[i] for i, name in enumerate(line_names) if i in line_index}
    label_folder = {label: f for f, label in folder_label.items()}
    out = {}
    for label, names in label_names.items():
        if label not in label_folder:
            raise UsageError(f"objectnet under {folder}: class {label!r} has no folder in {MAPPINGS[0]}")
        try:
            out[label_folder[label]] = sorted(name_index[n.strip()] for n in names.split(";"))
        except KeyError as e:
            raise UsageError(f"objectnet under {folder}: ImageNet class {e} is not in {MAPPINGS[2]}") from None
    return out


class Images(Dataset):
    """The mapped classes' images: (image tensor, the class's position in ``folders``)."""

    def __init__(self, folder: Path, folders: list[str], transform) -> None:
        self.files = [(p, k) for k, f in enumerate(folders) for p in sorted((folder / "images" / f).glob("*.png"))]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[i]
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            image = image.crop((BORDER, BORDER, w - BORDER, h - BORDER))
        return self.transform(image), label


@dataclass
class Mapped(Stream):
    """The mapped classes' images (targets: a class's position in ``correct``) and, per
    class, the model output indices that count as correct."""

    correct: list[list[int]] = field(default_factory=list)


def stream(folder: Path, crop: int, workers: int) -> Mapped:
    mapped = classes(folder)
    folders = sorted(mapped)
    data = Images(folder, folders, imagenet.transforms(crop)[1])
    if not len(data):
        raise UsageError(f"objectnet under {folder}: no image of a mapped class; expected {LAYOUT}")
    return Mapped(data, np.array([k for _, k in data.files]), workers, correct=[mapped[f] for f in folders])


@torch.no_grad()
def top1(model: torch.nn.Module, images: Mapped, batch: int, device: torch.device) -> float:
    """Top-1 in percent: the best of the mapped ImageNet classes must be one of the image's."""
    model.eval()
    correct = images.correct
    used = sorted({i for c in correct for i in c})
    column = {index: k for k, index in enumerate(used)}
    hits = torch.zeros(len(correct), len(used), dtype=torch.bool)
    for k, indices in enumerate(correct):
        hits[k, [column[i] for i in indices]] = True
    right = total = 0
    for x, y in images.batches(batch, device):
        best = model(x)[:, used].argmax(1).cpu()
        right += int(hits[y.cpu(), best].sum())
        total += len(y)
    return 100.0 * right / total


def write_generated(
    folder: Path, imagenet_classes: int = 10, per_class: int = 6, size: int = 64, seed: int = 1
) -> Path:
    """A stand-in release in ObjectNet's layout over the generated ImageNet classes
    (suite.data.imagenet.write_generated's templates), framed as ObjectNet frames its
    images: four mapped classes (one mapping to two ImageNet classes) and one unmapped, as
    ObjectNet's 200 classes include 87 with no ImageNet counterpart. Not ObjectNet."""
    rng = np.random.default_rng(seed)
    pictures = imagenet.templates(imagenet_classes, size)
    root = folder / FOLDER
    names = [f"generated class {c}" for c in range(imagenet_classes)]
    # Line i of the 2012 list is output index (i + 3) mod classes: the files' indirection is exercised.
    order = [(i + 3) % imagenet_classes for i in range(imagenet_classes)]
    lines = [names[order[i]] for i in range(imagenet_classes)]
    objects = {"ring binder": [0], "toaster": [1, 2], "whistle": [3], "padlock": [5], "sock": None}
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    folders = {label: label.replace(" ", "_") for label in objects}
    (root / "mappings" / MAPPINGS[0]).write_text(json.dumps({f: label for label, f in folders.items()}))
    mapped = {label: "; ".join(names[i] for i in ids) for label, ids in objects.items() if ids}
    (root / "mappings" / MAPPINGS[1]).write_text(json.dumps(mapped))
    (root / "mappings" / MAPPINGS[2]).write_text("\n".join(lines) + "\n")
    (root / "mappings" / MAPPINGS[3]).write_text(json.dumps({str(order[i]): i for i in range(imagenet_classes)}))
    for label, ids in objects.items():
        target = root / "images" / folders[label]
        target.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            c = ids[i % len(ids)] if ids else imagenet_classes - 1
            pixels = np.clip(pictures[c] * 0.5 + rng.normal(0, 40, size=pictures[c].shape) + 64, 0, 255)
            framed = np.zeros((size + 2 * BORDER, size + 2 * BORDER, 3))
            framed[..., 0] = 255  # the release's red frame
            framed[BORDER:-BORDER, BORDER:-BORDER] = pixels
            Image.fromarray(framed.astype(np.uint8)).save(target / f"{i}.png")
    return folder
