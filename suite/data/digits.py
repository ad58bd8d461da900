"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): real data, offline.

The split is fixed once for everyone: 20% test, then 15% of the rest for validation,
both stratified with seed 0. Model selection sees validation only; test is read once.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from suite.errors import UsageError

SPLIT_SEED = 0
# sha256 of the decoded images (float64) then labels (int64), as scikit-learn ships them.
SHA256 = "f6d9e39f37dc45d327f6db33428ee58970ccceabb2535a5c179de35886b70443"


def checksum(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def load() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train'|'val'|'test': (images N x 1 x 8 x 8 float32, labels N int64)}, standardised
    with the training split's mean and std."""
    from sklearn.datasets import load_digits  # a slow import: only here
    from sklearn.model_selection import train_test_split

    data = load_digits()
    if checksum(data.data, data.target) != SHA256:
        raise UsageError(
            "scikit-learn's digits data does not match its known checksum: "
            "the installed scikit-learn's data file is corrupt or altered; reinstall scikit-learn"
        )
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    idx = torch.arange(len(y)).numpy()
    rest, test = train_test_split(idx, test_size=0.2, stratify=data.target, random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=0.15, stratify=data.target[rest], random_state=SPLIT_SEED)
    mean, std = x[train].mean(), x[train].std()
    return {name: ((x[i] - mean) / std, y[i]) for name, i in [("train", train), ("val", val), ("test", test)]}
