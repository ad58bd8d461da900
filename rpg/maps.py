"""Index and sign maps: which element of the ring each generated weight reads, and its sign.

A map covers all T generated weights of one ring, in layer order; each layer takes its
own slice. Maps are pure functions of (T, N, seed), so they are regenerated on load and
never stored.

Index strategies (T generated weights drawn from a ring of N):
    even        the paper's: floor(T/N) copies of 0..N-1, plus T mod N distinct elements
                drawn without replacement, the whole array shuffled. Every element of the
                ring is used floor(T/N) or ceil(T/N) times.
    sequential  ring order, wrapping around (0, 1, ..., N-1, 0, 1, ...): no permutation.
    uniform     iid uniform draws: random weight sharing.
    hash        HashedNets (Chen et al. 2015): h(layer, position) mod N, with h a fixed
                integer hash keyed by the ring's seed. Computed for all T weights at once
                in int64 torch ops (no Python loop per element).
Sign strategies:
    random      a fixed random +-1 per generated weight (the paper's reflection).
    none        all +1.
    hash        HashedNets' xi(layer, position): the sign bit of a second keyed hash.

New strategies register themselves in INDEX or SIGN; a strategy receives the layer sizes
so it can depend on (layer, position).

Storage order: which label a ring element carries is arbitrary (W starts iid, so any
relabelling of its elements is the same network family), so a ring stores its elements in
an order chosen for the memory system. ``first_read_order`` numbers them in the order of
their first reader: the first read of every element becomes a sequential pass.
``blocked_order`` (what rings use) numbers them by the block of positions that holds their
last reader, then by their first reader: a block of generated weights then reads W in a
few short runs that stay in cache, so neither read is a random access into all of W
(measured in docs/library/runtime.md).

Regenerating is only as faithful as torch's generators: a torch release whose randperm or
randint draws differently from the same seed makes other maps, i.e. another network from
the same checkpoint. ``fingerprint`` is what a checkpoint stores to notice that.
"""

from __future__ import annotations

import ctypes
import hashlib
import sys
from collections.abc import Callable, Sequence

import torch

IndexFn = Callable[[Sequence[int], int, torch.Generator], torch.Tensor]
SignFn = Callable[[Sequence[int], torch.Generator], torch.Tensor]


def _total(sizes: Sequence[int]) -> int:
    return int(sum(sizes))


def even(sizes: Sequence[int], n: int, gen: torch.Generator) -> torch.Tensor:
    total = _total(sizes)
    copies, rest = divmod(total, n)
    parts = [torch.arange(n).repeat(copies), torch.randperm(n, generator=gen)[:rest]]
    idx = torch.cat(parts)
    return idx[torch.randperm(total, generator=gen)]


def sequential(sizes: Sequence[int], n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.arange(_total(sizes)) % n


def uniform(sizes: Sequence[int], n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(n, (_total(sizes),), generator=gen)


_MASK = 0xFFFFFFFF


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser (xorshift-multiply; constants from degski's hash), in int64
    so no product overflows: 32-bit x times a 27-bit constant stays below 2**63."""
    x = x & _MASK
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK
    return (x >> 16) ^ x


def _hash(sizes: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    """h(layer, position) for every generated weight: a keyed hash of the pair."""
    key = int(torch.randint(2**31, (1,), generator=gen))
    layer = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(list(sizes), dtype=torch.long))
    position = torch.cat([torch.arange(s) for s in sizes]) if sizes else torch.zeros(0, dtype=torch.long)
    return _mix(_mix(position ^ key) + layer * 0x9E3779B9)


def hashed(sizes: Sequence[int], n: int, gen: torch.Generator) -> torch.Tensor:
    return _hash(sizes, gen) % n


def hash_sign(sizes: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    return (_hash(sizes, gen) & 1).to(torch.int8) * 2 - 1


def random_sign(sizes: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    bits = torch.randint(2, (_total(sizes),), generator=gen, dtype=torch.int8)
    return bits * 2 - 1


def no_sign(sizes: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    return torch.ones(_total(sizes), dtype=torch.int8)


INDEX: dict[str, IndexFn] = {"even": even, "sequential": sequential, "uniform": uniform, "hash": hashed}
SIGN: dict[str, SignFn] = {"random": random_sign, "none": no_sign, "hash": hash_sign}


def first_read_order(idx: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The map relabelled so that ring elements are numbered in the order of their first reader.

    Returns ``(relabelled, order)``: ``order[m]`` is the old label of the element now labelled
    m, so ``W_new = W_old[order]`` carries weights from the old storage order to the new one,
    and ``relabelled = inverse(order)[idx]``. Elements no weight reads keep their relative
    order, after all read ones.
    """
    idx = idx.long()
    return _relabelled(idx, _by_reader(idx, n, "amin"))


def _by_reader(idx: torch.Tensor, n: int, reduce: str) -> torch.Tensor:
    """Each element's first ("amin") or last ("amax") reader's position; ``len(idx)`` if none."""
    total = idx.numel()
    unread = torch.full((n,), total, dtype=torch.long)  # kept where no position scatters
    return unread.scatter_reduce(0, idx, torch.arange(total), reduce=reduce, include_self=False)


def _relabelled(idx: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the map in new labels, order): elements numbered by ``key``, ties kept in label order."""
    order = torch.argsort(key, stable=True)
    label = torch.empty(len(key), dtype=torch.long)
    label[order] = torch.arange(len(key))
    return label[idx], order


# blocked_order's block: 32,768 generated weights, 128 KB of them in float32. A block's reads
# of W then fall in a few hundred KB, which a core's L2 holds. Part of the layout: another
# block size is another storage order, so it would need another layout name.
BLOCK = 1 << 15


def blocked_order(idx: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The map relabelled by the block of each element's last reader, then by its first reader.

    Returns ``(relabelled, order)`` as ``first_read_order`` does. Elements whose last reader
    lies in block b of ``BLOCK`` positions take consecutive labels, in the order of their
    first reader. With two reads per element (a ring of half the generated weights), a
    block's second reads then go to one run of about BLOCK / 2 labels, and its first reads to
    runs that advance in step with the positions; the inverse table's rows after the first
    read one block of positions per run of labels. A map that reads no element twice, or
    one block long, keeps first-read order; elements no weight reads keep their relative
    order, after all read ones.
    """
    idx = idx.long()
    first, last = _by_reader(idx, n, "amin"), _by_reader(idx, n, "amax")
    # One key, block then first reader; unread elements (both = len(idx)) sort last.
    return _relabelled(idx, last // BLOCK * (idx.numel() + 1) + first)


LAYOUTS = {"first-read": first_read_order, "blocked": blocked_order}


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def check_strategy(index: str, sign: str) -> None:
    if index not in INDEX:
        raise ValueError(f"unknown index strategy {index!r}; known: {', '.join(INDEX)}")
    if sign not in SIGN:
        raise ValueError(f"unknown sign strategy {sign!r}; known: {', '.join(SIGN)}")


def fingerprint(idx: torch.Tensor, signs: torch.Tensor) -> str:
    """A short hash of a ring's maps: equal maps give equal fingerprints on any device.

    sha256 over the indices as little-endian int64 and the signs as int8 (so neither the
    index dtype a ring picks nor the device it lives on changes it), truncated to 16 hex
    digits: 64 bits, ample to tell two maps apart.
    """
    digest = hashlib.sha256()
    chunk = 1 << 20  # bounded temporaries, even for maps of hundreds of millions of weights
    for values, dtype in ((idx, torch.int64), (signs, torch.int8)):
        flat = values.reshape(-1)
        for start in range(0, flat.numel(), chunk):
            part = flat[start : start + chunk].to(device="cpu", dtype=dtype).contiguous()
            raw = part.view(torch.uint8)
            if sys.byteorder == "big" and dtype.itemsize > 1:
                raw = raw.view(-1, dtype.itemsize).flip(1).contiguous()
            # The tensor's bytes as they are in memory (hashlib takes no tensor; numpy is not a dependency).
            digest.update(ctypes.string_at(raw.data_ptr(), raw.numel()))
    return digest.hexdigest()[:16]
