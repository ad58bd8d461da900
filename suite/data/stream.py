"""Splits read from disk batch by batch (ImageNet): too large to hold in memory.

A stream is a map-style dataset of (image tensor, label) whose transform may be random
(training crops). Its randomness is a function of the example's index and a seed drawn
per pass, never of the loader's worker count or of the number of ranks: every example's
crop is seeded on its own. So a resumed run, a run with more loader workers and a
torchrun run on G GPUs all draw the crops a single process draws, as the in-memory
splits' vectorised augmentation does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from suite.system import distributed


class Seeded(Dataset):
    """``dataset`` with example ``i``'s random transform seeded by (seed, i)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        # The CPU generator only (torch.manual_seed would reseed CUDA's too, which fork_rng
        # here does not restore): transforms draw on the CPU.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.seed * 1_000_003 + i)
            return self.dataset[i]


def default_workers() -> int:
    """Loader processes: the CPUs this process may use, at most 8 (rpg-bench trains one
    cell at a time per process; under torchrun each rank has its own loader)."""
    return min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass
class Stream:
    dataset: Dataset
    targets: np.ndarray  # every example's label, in the dataset's order
    workers: int = 0  # 0: decode in this process (small generated data)
    owner: object = None  # what must live as long as the files (a generated data set's folder)

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, index: np.ndarray) -> Stream:
        return Stream(Subset(self.dataset, index.tolist()), self.targets[index], self.workers, self.owner)

    def _loader(self, batches: list[list[int]], seed: int, device: torch.device) -> DataLoader:
        return DataLoader(
            Seeded(self.dataset, seed),
            batch_sampler=batches,
            num_workers=self.workers,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )

    def head(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` examples (training crops seeded with 0)."""
        x, y = next(iter(self._loader([list(range(min(n, len(self))))], 0, torch.device("cpu"))))
        return x.to(device), y.to(device)

    def _plan(self, batch_size: int, generator: torch.Generator | None) -> tuple[list[torch.Tensor], int]:
        """Global batches of indices, in order or shuffled by ``generator``, and the pass's crop seed."""
        n = len(self)
        if generator is None:
            return list(torch.arange(n).split(batch_size)), 0
        order = torch.randperm(n, generator=generator)
        return list(order.split(batch_size)), int(torch.randint(2**31, (1,), generator=generator))

    def batches(
        self, batch_size: int, device: torch.device, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Whole batches in order, or shuffled by ``generator`` with crops seeded from it."""
        chunks, seed = self._plan(batch_size, generator)
        for x, y in self._loader([c.tolist() for c in chunks], seed, device):
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def shares(
        self, batch_size: int, device: torch.device, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, float, int]]:
        """This rank's share of each shuffled global batch, its loss weight and the global
        batch's size (suite.system.distributed.local_slice's contract): under torchrun each rank
        decodes its own images only. A last batch smaller than the world is dropped."""
        world, rank = distributed.world(), distributed.rank()
        chunks, seed = self._plan(batch_size, generator)
        chunks = [c for c in chunks if len(c) >= world]
        local = [c.tensor_split(world)[rank] for c in chunks]
        loader = self._loader([c.tolist() for c in local], seed, device)
        for (x, y), part, whole in zip(loader, local, chunks, strict=True):
            weight = len(part) * world / len(whole)
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True), weight, len(whole)
