"""The ring: one flat trainable vector W that generates the weights of many layers.

How one generation runs, and its backward, is rpg/generate.py; the parametrization that
puts a generated weight in a layer is rpg/generated.py.

The cache and when it is dropped
--------------------------------
Layers ask for their weights one by one (``Ring.layer(k)``, called by the ``Generated``
parametrization). The first request generates every layer of the ring (one generation);
later requests take their layer from it. A generation serves each layer at most once:
asking again for a layer it has already served starts a new one. So every forward pass,
in which each layer reads its weight once, gets its own generation, as if each layer
generated its own weights: gradient accumulation, repeated forwards, ``retain_graph`` and
``torch.no_grad`` eval behave as for a plain network, and a pass never reads weights
older than itself, even after in-place updates autograd cannot see (``p.data.add_``).
A generation is also dropped when

- W changes: its version counter (optimizer steps, ``load_state_dict``), storage, dtype,
  device or ``requires_grad``;
- the grad mode or inference mode differs from the one it was made under;
- a backward pass has run through it;
- the maps are rebuilt (``set_extra_state``, i.e. ``load_state_dict``), or the module is
  moved or cast (``.to``, ``.double()``, ...);
- it has served every layer (it is then released at once, to free its memory).

Pruning W
---------
``torch.nn.utils.prune`` works on a ring as on a conv (``prune.l1_unstructured(ring,
"weight", ...)``): W becomes ``weight_orig`` times ``weight_mask``. A ring is not called
like a layer, so prune's forward pre-hook never refreshes ``ring.weight``; the ring reads
the product itself at every generation (``source``), and keys its cache on both tensors.

It is never copied: ``copy.deepcopy``, ``pickle`` and ``rpg.materialize`` see an empty
cache. A model that applies one generated layer twice in a pass (weight tying) pays one
extra generation of the ring per reuse: correct, only slower. The node saves no tensor
for backward (only the constant maps), so several backward passes may run through it.

Memory
------
Per generated weight: ``idx`` 4 bytes (int32), ``signs`` 1 byte (int8), the multiplier
one element of W's dtype (4 bytes in float32; built on first use, per device and dtype),
and the inverse table 4 * J * N / T bytes (int32), i.e. 4 bytes plus at most 4 * N / T
of padding, built at the first generation autograd records (so models only counted,
evaluated or materialized never hold it). In float32: about 13 bytes per generated
weight (9 on the index_add path), none of it stored in checkpoints. Indices are int64
only for rings or maps of 2**31 elements or more.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rpg import maps
from rpg.generate import _Flag, _Generate, _Generation, _Plan, inverse_table


class Ring(nn.Module):
    """W with N scalars, and the index/sign maps for the T weights it generates.

    ``sizes`` are the numbers of weights of the generated layers, in layer order; layer k
    reads the slice ``[offset_k, offset_k + sizes[k])`` of the maps and is multiplied by
    ``scales[k]`` (default 1). The maps live in non-persistent buffers (so they follow
    ``.to(device)``) and are rebuilt from the seeds, which travel in the state dict as extra
    state. See the module docstring for how the weights are generated, cached, and what
    the maps cost.
    """

    def __init__(
        self,
        size: int,
        sizes: Sequence[int],
        *,
        index: str = "even",
        sign: str = "random",
        index_seed: int = 0,
        sign_seed: int = 1,
        std: float = 1.0,
        name: str = "global",
        scales: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        if size < 1:
            raise ValueError(f"a ring needs at least one element, got {size}")
        maps.check_strategy(index, sign)
        # Each layer's fixed scale brings its kernel from this std to its own initial std.
        self.std = float(std)
        self.weight = nn.Parameter(torch.randn(int(size)) * self.std)
        self.sizes = [int(s) for s in sizes]
        self.scales = [1.0] * len(self.sizes) if scales is None else [float(s) for s in scales]
        if len(self.scales) != len(self.sizes):
            raise ValueError(f"{len(self.scales)} scales for {len(self.sizes)} layers")
        self.offsets = [0]
        for s in self.sizes:
            self.offsets.append(self.offsets[-1] + s)
        self.index = index
        self.sign = sign
        self.index_seed = int(index_seed)
        self.sign_seed = int(sign_seed)
        # The backward of balanced maps: "auto", "inverse" or "index_add" (rpg/generate.py).
        self.grad_path = "auto"
        self.register_buffer("idx", torch.empty(0, dtype=torch.int32), persistent=False)
        self.register_buffer("signs", torch.empty(0, dtype=torch.int8), persistent=False)
        self.register_buffer("inv", torch.empty(0, self.size, dtype=torch.int32), persistent=False)
        self._plan: _Plan | None = None
        self._generation: _Generation | None = None
        self._build()

    @property
    def size(self) -> int:
        return self.parameter().numel()

    @property
    def total(self) -> int:
        """T: how many weights this ring generates."""
        return self.offsets[-1]

    def _build(self) -> None:
        idx = maps.INDEX[self.index](self.sizes, self.size, maps.generator(self.index_seed))
        sign = maps.SIGN[self.sign](self.sizes, maps.generator(self.sign_seed))
        # int32 halves the map's memory; it is enough for any ring below 2**31 elements.
        dtype = torch.int32 if max(self.size, self.total + 1) < 2**31 else torch.long
        device = self.parameter().device
        self.idx = idx.to(device=device, dtype=dtype)
        self.signs = sign.to(device=device, dtype=torch.int8)
        # The inverse table is built on first need (the first recorded generation): models
        # that are only counted, evaluated or materialized never pay for it.
        self.inv = torch.empty(0, self.size, device=device, dtype=dtype)
        self._inverse_built = False
        self._reset()

    def inverse(self) -> torch.Tensor:
        """The inverse table of a balanced map, shape (ceil(T/N), N); (0, N) for other maps."""
        if not self._inverse_built:
            table = inverse_table(self.idx, self.size)
            self.inv = table.to(device=self.idx.device, dtype=self.idx.dtype)
            self._inverse_built = True
            self._plan = None
        return self.inv

    def _reset(self) -> None:
        self._plan = None
        self._generation = None

    def _apply(self, fn, recurse: bool = True):
        # .to(), .cuda(), .double(): the cached multipliers and weights are of the old kind.
        self._reset()
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        # deepcopy and pickle: caches are rebuilt on demand, never copied (a generation
        # made with autograd cannot be deep-copied, and would share memory if it could).
        state = super().__getstate__()
        state["_plan"] = None
        state["_generation"] = None
        if "weight_mask" in state["_buffers"]:
            # Pruned: prune's derived ``weight`` is not a graph leaf, and the ring never reads it.
            state["weight"] = state["weight"].detach()
        return state

    def parameter(self) -> nn.Parameter:
        """W's trainable tensor (``weight_orig`` once pruned: ``weight`` is then derived)."""
        return self.weight_orig if hasattr(self, "weight_orig") else self.weight

    def source(self) -> torch.Tensor:
        """W as the generated weights read it: masked, if the ring was pruned."""
        if hasattr(self, "weight_mask"):
            return self.weight_orig * self.weight_mask
        return self.weight

    def slot(self, k: int) -> torch.Tensor:
        """The flat generated weights of layer k, before its scale: the plain reference path.

        One index_select per call, no cache (the training path is ``layer``/``generate``).
        """
        lo, hi = self.offsets[k], self.offsets[k + 1]
        # index_select, not W[idx]: its backward (index_add) is deterministic on CPU,
        # the advanced-indexing backward is not.
        return torch.index_select(self.source(), 0, self.idx[lo:hi]) * self.signs[lo:hi]

    def uses_inverse(self) -> bool:
        """Whether the backward is the inverse table's gather + sum (else index_add)."""
        if self.grad_path not in ("auto", "inverse", "index_add"):
            raise ValueError(f"grad_path must be 'auto', 'inverse' or 'index_add', got {self.grad_path!r}")
        return self.grad_path != "index_add"

    @property
    def grad_path_in_use(self) -> str:
        """The backward that runs: "inverse" or "index_add" (builds the inverse table if needed)."""
        return "inverse" if self.uses_inverse() and self.inverse().numel() else "index_add"

    def plan(self) -> _Plan:
        w = self.parameter()
        inverse = self.uses_inverse()
        plan = self._plan
        if (
            plan is None
            or plan.device != w.device
            or plan.dtype != w.dtype
            or plan.inv_source is not self.inv
            or (plan.inv is not None) != (inverse and self.inv.numel() > 0)
        ):
            plan = self._plan = _Plan(self, w, inverse)
        return plan

    def generate(self) -> tuple[torch.Tensor, ...]:
        """Every layer's flat generated weights (sign and scale applied): one fused generation.

        Not cached: each call is a new generation (``layer`` is the cached access).
        """
        return self._generate(_Flag())

    def _generate(self, flag: _Flag) -> tuple[torch.Tensor, ...]:
        weight = self.source()
        if torch.is_grad_enabled() and weight.requires_grad and self.uses_inverse():
            self.inverse()  # built on the first generation autograd records
        return _Generate.apply(weight, self.plan(), flag)

    def _key(self) -> tuple:
        # A pruned ring generates from weight_orig * weight_mask: a change to either is a change.
        tensors = (self.weight_orig, self.weight_mask) if hasattr(self, "weight_mask") else (self.weight,)
        return (
            *((id(t), t._version, t.data_ptr()) for t in tensors),
            tensors[0].device,
            tensors[0].dtype,
            tensors[0].requires_grad,
            torch.is_grad_enabled(),
            torch.is_inference_mode_enabled(),
        )

    def layer(self, k: int) -> torch.Tensor:
        """Layer k's flat generated weights (sign and scale applied), from the cached generation."""
        key = self._key()
        gen = self._generation
        if gen is None or gen.served[k] or gen.flag.consumed or gen.key != key:
            flag = _Flag()
            gen = self._generation = _Generation(key, self._generate(flag), flag)
        gen.served[k] = True
        gen.left -= 1
        weight = gen.weights[k]
        if gen.left == 0:
            self._generation = None
        return weight

    def usage(self) -> torch.Tensor:
        """How many generated weights read each element of W."""
        return torch.bincount(self.idx.long(), minlength=self.size)

    def get_extra_state(self) -> dict:
        return {
            "index": self.index,
            "sign": self.sign,
            "index_seed": self.index_seed,
            "sign_seed": self.sign_seed,
            "sizes": list(self.sizes),
            # The scales follow the initial weights the ring replaced (rpg.convert), which a
            # model built afresh to load this checkpoint does not share.
            "scales": list(self.scales),
        }

    def set_extra_state(self, state: dict) -> None:
        if list(state["sizes"]) != self.sizes:
            raise RuntimeError(
                "ring layout mismatch: the checkpoint's ring generates layers of sizes "
                f"{state['sizes'][:4]}... but this model's ring generates {self.sizes[:4]}...; "
                "convert the same architecture with the same scope before loading"
            )
        maps.check_strategy(state["index"], state["sign"])
        self.index, self.sign = state["index"], state["sign"]
        self.index_seed, self.sign_seed = int(state["index_seed"]), int(state["sign_seed"])
        if "scales" in state:  # checkpoints from before the scales were stored keep this model's
            self.scales = [float(s) for s in state["scales"]]
        self._build()

    def extra_repr(self) -> str:
        return (
            f"{self.name}: size={self.size}, generates={self.total}, layers={len(self.sizes)}, "
            f"index={self.index}, sign={self.sign}"
        )
