"""One generation of a ring: all its layers' weights from W in one autograd node.

Run time
--------
A ring generates the weights of all its layers at once, in one custom autograd Function
(``_Generate``, one node per generation): generated weight t is ``mult[t] * W[idx[t]]``,
where the multiplier ``mult`` folds the weight's sign and its layer's scale into one
number. The backward is eq. 2 of the paper, ``dL/dW[n] = sum_{t: idx[t] = n} mult[t] *
dL/dK[t]``, by one of two deterministic paths (``Ring.grad_path``):

- ``"inverse"``, for balanced maps (every ring element read floor(T/N) or ceil(T/N) times:
  ``even``, a union of permutations, and ``sequential``): an inverse table ``inv`` of
  shape (J, N), J = ceil(T/N), whose row j lists each ring element's j-th reader, or T (a
  zero slot) if it has fewer. The gradient is a gather and a dense sum over J rows: no
  atomics, so deterministic on GPU as on CPU.
- ``"index_add"``: one index_add over the ring, layer by layer (deterministic on CPU; on
  CUDA it uses atomics). Maps that are not balanced (``uniform``, ``hash``)
  always take it.

``"auto"`` (the default) takes the inverse table wherever the map is balanced, on every
device, so the path the tests check on CPU is the one that runs on GPU, with one exception
on the CPU: a table of more than ``AUTO_MAX_ROWS`` (64) rows, i.e. a small ring generating
many weights, takes index_add. The table's backward costs a few small ops per row: a
100-element ring generating the 697K weights of a quarter-width ResNet-18 has 6,975 rows,
and its digits training step took 81 ms against index_add's 41 ms on this project's
2-core CPU, where index_add's scatter goes to a W small enough to stay in cache. With 5
to 40 rows the two measured the same within 4%; with 2 (CIFAR ResNet-18, half its
weights in the ring, 22 MB of W), the table, split over two threads, took 1.67 s a step
against index_add's 1.83 s. Both add each element's readers in
position order, so they give the same bits: the choice changes the time, never the result.

The forward gathers and the inverse table's gathers are memory-bound passes; on a CPU
three things make them cheap. W is stored in blocked order (``maps.blocked_order``), so a
block of generated weights reads W in a few runs that stay in cache, and so does each row
of the inverse table but the first; that row (each element's first reader) is read in
position order and written with ``index_copy_`` (``_Plan.first``); and each gather runs
its two halves on two threads (rpg/gather.py), bit-identical to one index_select.

When autograd records the backward (``create_graph=True``) it is written in
differentiable torch ops, so double backward works too.

Under ``torch.compile`` none of this runs: each layer generates its own weights with
plain torch ops (``Ring.layer``), which the compiler traces, fuses and differentiates.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from rpg.gather import gather

if TYPE_CHECKING:
    from rpg.ring import Ring


class _Plan:
    """The maps of a ring on one device, in W's dtype, sliced per layer: what a generation runs."""

    def __init__(self, ring: Ring, weight: torch.Tensor, inverse: bool) -> None:
        self.device, self.dtype = weight.device, weight.dtype
        self.size = ring.size
        self.total = ring.total
        self.bounds = list(zip(ring.offsets[:-1], ring.offsets[1:], strict=True))
        self.idx = ring.idx
        self.inv_source = ring.inv
        self.inv = ring.inv if inverse and ring.inv.numel() else None
        mult = ring.signs.to(dtype=self.dtype)
        for (lo, hi), scale in zip(self.bounds, ring.scales, strict=True):
            mult[lo:hi].mul_(scale)  # the rounding of `slot(k) * scale` in W's dtype
        self.mult = mult
        self.idx_slices = [self.idx[lo:hi] for lo, hi in self.bounds]
        self.mult_slices = [mult[lo:hi] for lo, hi in self.bounds]
        # The first row on the CPU, for maps that read an element more than once: in W's
        # blocked order (maps.blocked_order) a run of labels has its first readers spread over
        # all earlier positions, a cache line per element. Read in position order they are
        # one sequential pass, and their labels advance in a few hundred runs, which
        # index_copy_ writes: 17 ms against 10 ms for CIFAR ResNet-18 here. It costs 12 bytes
        # per element of W (index_copy_ takes int64 labels only), which pays where a gather
        # misses the CPU's caches; on a GPU, where nothing here was measured, the row is
        # gathered. Labels are unique, so the copy's bits are the gather's (and torch's
        # deterministic mode keeps index_copy_ deterministic anyway).
        self.first: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.inv is not None and len(self.inv) > 1 and self.device.type == "cpu":
            labels = torch.argsort(self.inv[0], stable=True)  # elements by their first reader
            self.first = labels, self.inv[0][labels]
        # On the CPU the inverse path's (T + 1)-element buffer and its N-element scratch row
        # are kept between backward passes: allocated afresh each is a large allocation, i.e.
        # fresh pages faulted in every step (about 30 ms and 10 ms a step for CIFAR
        # ResNet-18 here). The lock makes a concurrent backward take buffers of its own
        # rather than share these.
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None
        self._buffer_lock = threading.Lock()

    def generate(self, weight: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # Layer by layer inside one node: each layer's weights are their own allocation (a
        # ring-wide buffer would be one large allocation, fresh pages every step on CPU).
        # Every layer's gather first, then every multiply: on a CPU the gathers run on a
        # worker thread beside this one (rpg/gather.py) and a multiply on torch's OpenMP
        # threads, which spin a while after each op and so took a core from the next
        # layer's gather; alternating them cost CIFAR ResNet-18's generation 49 ms against
        # 35 ms in this order, here (2 cores).
        gathered = [gather(weight, idx, weight.new_empty(idx.shape)) for idx in self.idx_slices]
        return tuple(w.mul_(mult) for w, mult in zip(gathered, self.mult_slices, strict=True))

    def weight_grad(self, grads: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """dL/dW from the layers' gradients (None: a layer this generation did not serve)."""
        if torch.is_grad_enabled():  # create_graph=True: stay differentiable
            return self._weight_grad_differentiable(grads)
        if self.inv is None:
            # index_add in position order, layer by layer: deterministic on CPU.
            grad = torch.zeros(self.size, device=self.device, dtype=self.dtype)
            scratch = torch.empty(max(hi - lo for lo, hi in self.bounds), device=self.device, dtype=self.dtype)
            for g, idx, mult in zip(grads, self.idx_slices, self.mult_slices, strict=True):
                if g is not None:
                    grad.index_add_(0, idx, torch.mul(g.reshape(-1), mult, out=scratch[: len(idx)]))
            return grad
        keep = self.device.type == "cpu" and self._buffer_lock.acquire(blocking=False)
        try:
            if keep and self._buffers is None:
                self._buffers = self._new_buffers()
            return self._inverse_grad(grads, *(self._buffers if keep else self._new_buffers()))
        finally:
            if keep:
                self._buffer_lock.release()

    def _new_buffers(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        buf = torch.empty(self.total + 1, device=self.device, dtype=self.dtype)
        scratch = torch.empty(self.size, device=self.device, dtype=self.dtype) if len(self.inv) > 1 else None
        return buf, scratch

    def _inverse_grad(
        self, grads: Sequence[torch.Tensor | None], buf: torch.Tensor, scratch: torch.Tensor | None
    ) -> torch.Tensor:
        for g, mult, (lo, hi) in zip(grads, self.mult_slices, self.bounds, strict=True):
            if g is None:
                buf[lo:hi].zero_()
            else:
                torch.mul(g.reshape(-1), mult, out=buf[lo:hi])
        buf[self.total] = 0
        # Row by row: the temporaries stay ring-sized, and each element's readers are summed
        # in position order, as index_add does (so both paths give the same bits).
        grad = buf.new_empty(self.size)  # fresh: it becomes W.grad
        if self.first is None:
            gather(buf, self.inv[0], grad)
        else:
            labels, positions = self.first
            grad.index_copy_(0, labels, gather(buf, positions, scratch))
        for j in range(1, len(self.inv)):
            grad.add_(gather(buf, self.inv[j], scratch))
        return grad

    def _weight_grad_differentiable(self, grads: Sequence[torch.Tensor | None]) -> torch.Tensor:
        flat = torch.cat(
            [
                mult.new_zeros(mult.shape) if g is None else g.reshape(-1) * mult
                for g, mult in zip(grads, self.mult_slices, strict=True)
            ]
        )
        if self.inv is None:
            return flat.new_zeros(self.size).index_add(0, self.idx, flat)
        padded = torch.cat([flat, flat.new_zeros(1)])
        return torch.index_select(padded, 0, self.inv.reshape(-1)).view(self.inv.shape).sum(0)


class _Flag:
    """Set by the backward of a generation; the ring drops a generation whose flag is set."""

    __slots__ = ("consumed",)

    def __init__(self) -> None:
        self.consumed = False


class _Generate(torch.autograd.Function):
    """All layers of a ring from W at once; backward: eq. 2 by the plan's path.

    Nothing is saved for backward but the (constant) maps, so the node can be run by
    several backward passes, like the index ops it replaces.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, plan: _Plan, flag: _Flag) -> tuple[torch.Tensor, ...]:
        ctx.plan, ctx.flag = plan, flag
        ctx.set_materialize_grads(False)
        return plan.generate(weight)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None):
        ctx.flag.consumed = True
        if all(g is None for g in grads):
            return None, None, None
        return ctx.plan.weight_grad(grads), None, None


class _Generation:
    __slots__ = ("key", "weights", "served", "left", "flag")

    def __init__(self, key: tuple, weights: tuple[torch.Tensor, ...], flag: _Flag) -> None:
        self.key, self.weights, self.flag = key, weights, flag
        self.served = [False] * len(weights)
        self.left = len(weights)


def inverse_table(idx: torch.Tensor, n: int) -> torch.Tensor:
    """For a balanced map, each ring element's readers: shape (ceil(T/N), N), padded with T.

    Row j holds, for every element, the position of its j-th reader in increasing position
    order, or T (the zero slot) if it has only j readers. Balanced: every element is read
    floor(T/N) or ceil(T/N) times (a union of permutations, like ``even``). For other
    maps the table would be mostly padding: returns an empty (0, N) table, and the ring
    falls back to index_add.
    """
    idx = idx.long()
    device = idx.device
    total = idx.numel()
    rows = -(-total // n)
    counts = torch.bincount(idx, minlength=n)
    if total == 0 or int(counts.max()) > rows or int(counts.min()) < total // n:
        return torch.empty(0, n, dtype=torch.long, device=device)
    order = torch.argsort(idx, stable=True)  # positions grouped by element, in position order
    element = idx[order]
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total, device=device) - first[element]
    table = torch.full((rows, n), total, dtype=torch.long, device=device)
    table[rank, element] = order
    return table
