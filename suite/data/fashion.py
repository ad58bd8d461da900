"""Fashion-MNIST (Xiao et al. 2017): 60k/10k 28x28 grey images of clothing, 10 classes.

Read from the IDX files, gzipped or not, in either layout:
    <data-root>/FashionMNIST/raw/      torchvision's (what FashionMNIST(download=True) writes)
    /usr/share/datasets/fashion-mnist/ Debian's `dataset-fashion-mnist` package
A data root chosen by --data-root or $RPG_BENCH_DATA_ROOT is read as given (the files in
<data-root>/FashionMNIST/raw/ or in <data-root>/ itself, so Debian's folder may be named),
or refused; only the default data folder falls back to Debian's copy, then a download.
Every file is checked against the sha256 of its decompressed bytes (Debian recompresses
the gzip files, so the compressed bytes differ from upstream's; the contents do not).
The split is fixed: validation is 5,000 training images, stratified with seed 0; test is
the official 10,000, read once.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import torch

from suite.data import root as data
from suite.errors import UsageError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION = "FashionMNIST/raw"
SPLIT_SEED = 0
VAL_SIZE = 5000
# The generated stand-in's files (write_generated; the smoke profiles read it): images in
# torchvision's train file (val is carved from it) and in its test file.
GENERATED = {"train": 600, "test": 200}
# sha256 of each file's decompressed bytes.
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
LAYOUT = (
    f"the IDX files {', '.join(SHA256)} (optionally .gz) in <data-root>/{TORCHVISION}/ "
    f"or in {DEBIAN}/ (apt-get install dataset-fashion-mnist)"
)
CHOSEN_LAYOUT = f"the IDX files {', '.join(SHA256)} (optionally .gz) in <data-root>/{TORCHVISION}/ or in <data-root>/"


def _file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: Path) -> bool:
    return all(_file(folder, name) for name in SHA256)


def locate(data_root: str | None) -> Path:
    """The folder holding all four files. A chosen data root (data.chosen) must hold them
    itself: refused in one line naming it, never replaced by another copy. The default
    folder (or none) falls back to Debian's copy, then downloads into the default folder
    with torchvision (its md5 checks); UsageError naming both layouts if that fails."""
    if data_root and data.chosen(data_root):
        root = Path(data_root)
        found = next((f for f in (root / TORCHVISION, root) if _complete(f)), None)
        if found is None:
            raise UsageError(data.missing("Fashion-MNIST", root, CHOSEN_LAYOUT))
        return found
    folders = ([Path(data_root) / TORCHVISION] if data_root else []) + [DEBIAN]
    for folder in folders:
        if _complete(folder):
            return folder
    reason = "no data root to download it into"
    if data_root:
        reason = _download(Path(data_root))
        if reason is None and _complete(folders[0]):
            return folders[0]
    raise UsageError(
        f"Fashion-MNIST not found (looked in {', '.join(map(str, folders))}) and not downloaded ({reason}): "
        f"expected {data.placed(LAYOUT, data_root or '<data-root>')}"
    )


def _download(root: Path) -> str | None:
    """Fetch Fashion-MNIST into root with torchvision; None, or why it could not."""
    from torchvision.datasets import FashionMNIST

    return data.fetch(lambda: FashionMNIST(str(root), train=True, download=True), root / TORCHVISION)


def _bytes(path: Path) -> bytes:
    try:
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UsageError(f"Fashion-MNIST file {path} cannot be read: {e}") from None


def parse_idx(data: bytes, where: str) -> np.ndarray:
    """An IDX array of unsigned bytes (the MNIST format: magic 0x08 0x0D, dims big-endian)."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise UsageError(f"{where} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int) if len(data) >= 4 + 4 * ndim else []
    if len(dims) != ndim or len(data) != 4 + 4 * ndim + int(np.prod(dims)):
        raise UsageError(f"{where} is truncated or malformed (its header promises {list(dims)})")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read(folder: Path, verify: bool = True) -> dict[str, np.ndarray]:
    """The four arrays by file name, each checked against its known checksum if ``verify``."""
    out = {}
    for name, sha in SHA256.items():
        path = _file(folder, name)
        if path is None:
            raise UsageError(f"Fashion-MNIST file {folder / name} is missing; expected {LAYOUT}")
        data = _bytes(path)
        if verify and hashlib.sha256(data).hexdigest() != sha:
            raise UsageError(f"Fashion-MNIST file {path} does not match its known checksum: corrupt or altered")
        out[name] = parse_idx(data, str(path))
    return out


def splits(arrays: dict[str, np.ndarray]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train'|'val'|'test': (N x 1 x 28 x 28 float32, N int64)}, standardised with the
    training split's mean and std."""
    x = torch.tensor(arrays["train-images-idx3-ubyte"], dtype=torch.float32).unsqueeze(1) / 255.0
    y = torch.tensor(arrays["train-labels-idx1-ubyte"], dtype=torch.long)
    xt = torch.tensor(arrays["t10k-images-idx3-ubyte"], dtype=torch.float32).unsqueeze(1) / 255.0
    yt = torch.tensor(arrays["t10k-labels-idx1-ubyte"], dtype=torch.long)
    val_size = _val_size(len(y))
    from sklearn.model_selection import train_test_split  # a slow import: only here

    train, val = train_test_split(np.arange(len(y)), test_size=val_size, stratify=y.numpy(), random_state=SPLIT_SEED)
    mean, std = x[train].mean(), x[train].std()
    return {
        "train": ((x[train] - mean) / std, y[train]),
        "val": ((x[val] - mean) / std, y[val]),
        "test": ((xt - mean) / std, yt),
    }


def _val_size(train: int) -> int:
    """How many of the training file's images ``splits`` carves into val."""
    return min(VAL_SIZE, train // 6)


def generated_sizes() -> dict[str, int]:
    """The split sizes ``splits`` makes of write_generated's data (rpg-bench plan counts them)."""
    val = _val_size(GENERATED["train"])
    return {"train": GENERATED["train"] - val, "val": val, "test": GENERATED["test"]}


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_generated(
    folder: Path, train: int = GENERATED["train"], test: int = GENERATED["test"], seed: int = 0
) -> Path:
    """Generated stand-in data in torchvision's layout (gzipped IDX): ten fixed random
    28x28 templates, one per class, plus noise, so a network can learn them in an epoch.
    For tests and the smoke profile; it is not Fashion-MNIST and has no known checksum."""
    rng = np.random.default_rng(seed)
    templates = rng.uniform(0, 255, size=(10, 28, 28))
    raw = folder / TORCHVISION
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % 10
        images = np.clip(templates[labels] * 0.5 + rng.normal(0, 40, size=(n, 28, 28)) + 64, 0, 255)
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    return folder
