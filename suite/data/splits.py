"""The splits a task reads: in memory as (inputs, targets) tensors, or streamed from disk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from suite.data import fingerprint
from suite.data.stream import Stream


@dataclass
class Splits:
    """The splits 'train', 'val' and 'test': in memory on the target device as (inputs,
    targets), or, for a data set too large for that (ImageNet), streamed from disk."""

    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    fingerprint: str
    source: str
    sizes: dict[str, int] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)
    device: torch.device = torch.device("cpu")  # where streamed batches go

    def __post_init__(self) -> None:
        self.sizes = {k: len(v[1]) for k, v in self.tensors.items()} | {k: len(s) for k, s in self.streams.items()}

    def head(self, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's first ``n`` examples, on the device (what latency, FLOPs, ONNX and
        memory are measured on)."""
        if split in self.streams:
            return self.streams[split].head(n, self.device)
        x, y = self.tensors[split]
        return x[:n], y[:n]

    @classmethod
    def place(cls, tensors: dict[str, tuple[torch.Tensor, torch.Tensor]], device: torch.device, source: str) -> Splits:
        """Splits from tensors as read: fingerprinted there, then moved to ``device``, each
        contiguous. A view of numpy's (a generator's transposed array) can be channels-last,
        which every conv inherits, and oneDNN's CPU weight gradient corrupts the heap for
        some channels-last shapes (see crop_flip)."""
        on_device = {k: (x.to(device).contiguous(), y.to(device).contiguous()) for k, (x, y) in tensors.items()}
        return cls(on_device, fingerprint(tensors), source)

    def subset(self, sizes: dict[str, int | None]) -> Splits:
        """These splits with some cut to a stratified subset of the given size (seed 0, so
        every cell of a recipe sees the same examples). Unchanged if nothing is cut."""
        cut = {k: n for k, n in sizes.items() if n is not None and n < self.sizes[k]}
        if not cut:
            return self
        from sklearn.model_selection import train_test_split  # a slow import: only here

        tensors, streams = dict(self.tensors), dict(self.streams)
        for name, n in cut.items():
            labels = streams[name].targets if name in streams else tensors[name][1].cpu().numpy()
            # Class labels are stratified on; other targets (pose's joints) are not classes.
            stratify = labels if np.ndim(labels) == 1 else None
            keep, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=stratify, random_state=0)
            keep = np.sort(keep)
            if name in streams:
                streams[name] = streams[name].subset(keep)
            else:
                x, y = tensors[name]
                index = torch.from_numpy(keep).to(y.device)
                tensors[name] = (x[index], y[index])
        tag = ",".join(f"{k}={n}" for k, n in sorted(cut.items()))
        # The subset is a function of the data and the sizes: its fingerprint is too.
        digest = hashlib.sha256(f"{self.fingerprint}:{tag}".encode()).hexdigest()[:16]
        return Splits(tensors, digest, f"{self.source}; stratified subset {tag}", streams=streams, device=self.device)
