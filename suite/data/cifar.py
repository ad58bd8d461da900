"""CIFAR-10 and CIFAR-100 in torchvision's layout, read by torchvision.

    <data-root>/cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta
    <data-root>/cifar-100-python/      train, test, meta

torchvision checks each file's md5 before reading. The files are Python pickles: this is
the one place rpg-bench unpickles data, because it is the format CIFAR ships in; read
only files you fetched from the CIFAR site (torchvision's md5 check enforces that for
the real data set). The split is fixed: validation is 5,000 training images,
stratified with seed 0; test is the official 10,000, read once.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from suite.data import root as data
from suite.errors import UsageError

SPLIT_SEED = 0
VAL_SIZE = 5000
# The generated stand-in's images (write_generated; the smoke profiles read it): in the
# training files (val is carved from them, split evenly over the files) and in the test file.
GENERATED = {"train": 500, "test": 200}
# Channel means and stds of the CIFAR training sets (as commonly used; fixed so that a
# carved validation split does not move them).
MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}


def _cls(name: str):
    """torchvision's class for the data set (imported here: torchvision's import costs seconds)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    return {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]


def layout(name: str) -> str:
    cls = _cls(name)
    files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return f"<data-root>/{cls.base_folder}/ holding {', '.join(files)} (torchvision's layout)"


class _Generated:
    """Mixin: read generated stand-in files, which have no known md5."""

    def _check_integrity(self) -> bool:
        return True

    def _load_meta(self) -> None:
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]


def _dataset(name: str, root: Path, train: bool, verify: bool):
    cls = _cls(name) if verify else type(f"Generated{_cls(name).__name__}", (_Generated, _cls(name)), {})
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        raise UsageError(f"{name} not found or corrupt under {root}: expected {layout(name)}") from None
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
        raise UsageError(f"{name} under {root} cannot be read ({e}): expected {layout(name)}") from None


def download(name: str, root: Path) -> None:
    """Fetch the data set into root with torchvision; one clear line when the network refuses."""
    reason = data.fetch(lambda: _cls(name)(str(root), train=True, download=True), root)
    if reason is not None:
        raise UsageError(
            f"{name} is not under {data.where(root)} and could not be downloaded ({reason}): "
            f"place it there as {data.placed(layout(name), root)}"
        )


def load(name: str, data_root: str | None, verify: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train'|'val'|'test': (N x 3 x 32 x 32 float32 normalised, N int64)}."""
    if data_root is None:
        raise UsageError(f"{name} needs --data-root: {layout(name)}")
    root = Path(data_root)
    if verify and not (root / _cls(name).base_folder).exists():
        if data.chosen(root):  # read as given: downloads go only into the default folder
            raise UsageError(data.missing(name, root, layout(name)))
        download(name, root)
    train, test = _dataset(name, root, True, verify), _dataset(name, root, False, verify)
    mean = torch.tensor(MEAN[name]).view(1, 3, 1, 1)
    std = torch.tensor(STD[name]).view(1, 3, 1, 1)

    def tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).float() / 255.0
        # NCHW in memory, as every other task's: a channels-last batch of one makes
        # torch.export pin the batch size (ONNX export failed on CIFAR cells).
        return ((x - mean) / std).contiguous(), torch.tensor(ds.targets, dtype=torch.long)

    from sklearn.model_selection import train_test_split  # a slow import: only here

    x, y = tensors(train)
    val_size = _val_size(len(y))
    tr, va = train_test_split(np.arange(len(y)), test_size=val_size, stratify=y.numpy(), random_state=SPLIT_SEED)
    return {"train": (x[tr], y[tr]), "val": (x[va], y[va]), "test": tensors(test)}


def _val_size(train: int) -> int:
    """How many of the training files' images ``load`` carves into val."""
    return min(VAL_SIZE, train // 5)


def generated_sizes(name: str) -> dict[str, int]:
    """The split sizes ``load`` makes of write_generated's data (rpg-bench plan counts them)."""
    files = len(_cls(name).train_list)
    train = GENERATED["train"] // files * files  # as write_generated splits it over the files
    val = _val_size(train)
    return {"train": train - val, "val": val, "test": GENERATED["test"]}


def write_generated(
    folder: Path, name: str, train: int = GENERATED["train"], test: int = GENERATED["test"], seed: int = 0
) -> Path:
    """Generated stand-in data in torchvision's pickle layout: one fixed random 32x32x3
    template per class plus noise. For tests and the smoke profile; it is not CIFAR."""
    cls = _cls(name)
    classes = 10 if name == "cifar10" else 100
    rng = np.random.default_rng(seed)
    templates = rng.uniform(0, 255, size=(classes, 32, 32, 3))
    base = folder / cls.base_folder
    base.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    files = [(f, train // len(cls.train_list)) for f, _ in cls.train_list] + [(f, test) for f, _ in cls.test_list]
    for filename, n in files:
        labels = rng.permutation(np.arange(n) % classes)
        images = np.clip(templates[labels] * 0.5 + rng.normal(0, 40, size=(n, 32, 32, 3)) + 64, 0, 255)
        # torchvision's layout: flat rows of 3072 bytes, channel-major.
        data = images.astype(np.uint8).transpose(0, 3, 1, 2).reshape(n, 3072)
        with open(base / filename, "wb") as f:
            pickle.dump({"data": data, label_key: labels.tolist()}, f)
    with open(base / cls.meta["filename"], "wb") as f:
        pickle.dump({cls.meta["key"]: [f"class{i}" for i in range(classes)]}, f)
    return folder
