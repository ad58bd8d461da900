"""The ring: one flat trainable vector W, and the maps through which it generates the
weights of many layers (generated weight t is ``scale * signs[t] * W[idx[t]]``). One
generation and its backward are rpg/generate.py; the parametrization that puts a
generated weight in a layer is rpg/generated.py.

Maps
----
``idx``, ``signs`` and the inverse table ``inv`` are plain tensor attributes, neither
parameters nor buffers: a pure function of the seeds, they stay out of the state dict and
out of what DistributedDataParallel broadcasts (every rank regenerates them). They follow
W: ``.to()``/``.cuda()``/``.cpu()`` move them, casts leave their integer dtypes alone, and
``to_empty`` off the meta device regenerates them. They are always drawn on the CPU.

Checkpoints
-----------
The state dict holds W (``weight``) and, as extra state, the strategies, seeds, layer
sizes, scales, W's storage order (``layout``) and a fingerprint of the maps with the torch
version that drew them. Loading regenerates the maps and compares fingerprints: a torch
that draws differently from the same seeds would load another network, so the load is
refused, naming both versions. W is stored in ``maps.blocked_order`` (by the block of
each element's last reader, then its first reader). A checkpoint in another layout (no
``layout``: the seeds' order; ``"first-read"``: ``maps.first_read_order``) is permuted on
load, and an optimizer state saved beside it follows with ``rpg.reorder_optimizer``; one
with no fingerprint loads unchecked.

Cache
-----
``Ring.layer(k)`` (called by ``Generated``) takes layer k from the current generation,
made at the first request. A generation serves each layer once, so every forward pass gets
its own, as if each layer generated its own weights: gradient accumulation, repeated
forwards, ``retain_graph``, ``no_grad`` and in-place updates of W behave as for a plain
network. A generation is dropped when W changes (version, storage, dtype, device,
``requires_grad``), when the grad or inference mode differs, after a backward through it,
when the maps are rebuilt or the module moved or cast, and once it has served every layer.
It is never copied (``deepcopy``, ``pickle``, ``rpg.materialize``). A layer applied twice
in a pass (weight tying) costs one more generation per reuse.

Under ``torch.compile`` there is no cache (it is Python state a graph cannot consult):
each layer generates its weights with the plain ops of ``Ring.slot``, which the compiler
fuses and differentiates, with no graph break or recompilation.

Pruning
-------
``torch.nn.utils.prune`` works on a ring as on a conv (``prune.l1_unstructured(ring,
"weight", ...)``). A ring is not called like a layer, so prune's pre-hook never refreshes
``ring.weight``: a generation reads ``weight_orig * weight_mask`` itself (``source``).

Memory
------
Per generated weight: ``idx`` 4 bytes (int32; int64 only for 2**31 elements or more),
``signs`` 1 byte, the multiplier one element of W's dtype (built on first use, per device
and dtype), and the inverse table 4 * ceil(T/N) * N / T bytes, i.e. 4 plus padding (built
at the first generation autograd records: a model only counted, evaluated or materialized
never holds it). About 13 bytes in float32 (9 on the index_add path), none of it in
checkpoints. On the CPU a trained ring's inverse-path backward also keeps one element of
W's dtype per generated weight and one per element of W between steps, and, where an
element is read more than once, 12 bytes per element of W for the first readers' pass
(rpg/generate.py).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import nn

from rpg import maps
from rpg.generate import _Flag, _Generate, _Generation, _Plan, inverse_table

# W's storage order (module docstring, Checkpoints): what a checkpoint's extra state records.
LAYOUT = "blocked"

# "auto" on a CPU: above this many rows in the inverse table (generated weights per ring
# element), index_add backs the ring instead (rpg/generate.py says why).
AUTO_MAX_ROWS = 64


def check_count(value: object, what: str) -> int:
    """``value`` as a positive int; a clear TypeError or ValueError for anything else."""
    # bool is an int to Python, and a float would be truncated: both are mistakes here.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be a positive int, got {value}")
    return int(value)


class Ring(nn.Module):
    """W with N scalars, and the index/sign maps for the T weights it generates.

    ``sizes`` are the numbers of weights of the generated layers, in layer order; layer k
    reads the slice ``[offset_k, offset_k + sizes[k])`` of the maps and is multiplied by
    ``scales[k]`` (default 1). A ring larger than T is refused (elements no weight reads)
    unless ``allow_oversized=True``. See the module docstring for where the maps live, what
    a checkpoint holds, and how the weights are generated and cached.
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
        allow_oversized: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        size = check_count(size, f"the size of ring {name!r}")
        maps.check_strategy(index, sign)
        # Each layer's fixed scale brings its kernel from this std to its own initial std.
        self.std = float(std)
        self.weight = nn.Parameter(torch.randn(size) * self.std)
        self.sizes = [int(s) for s in sizes]
        self.scales = [1.0] * len(self.sizes) if scales is None else [float(s) for s in scales]
        if len(self.scales) != len(self.sizes):
            raise ValueError(f"{len(self.scales)} scales for {len(self.sizes)} layers")
        self.offsets = [0]
        for s in self.sizes:
            self.offsets.append(self.offsets[-1] + s)
        if size > self.total and not allow_oversized:
            raise ValueError(
                f"ring {name!r} has {size:,} elements but generates only {self.total:,} weights: "
                f"{size - self.total:,} elements would never be read; pass allow_oversized=True to allow it"
            )
        self.index = index
        self.sign = sign
        self.index_seed = int(index_seed)
        self.sign_seed = int(sign_seed)
        # The backward of balanced maps: "auto", "inverse" or "index_add" (rpg/generate.py).
        self.grad_path = "auto"
        # A checkpoint's fingerprint, and the torch that wrote it, waiting for maps to check
        # against (a checkpoint loaded while W is on the meta device).
        self._expected: tuple[str, str] | None = None
        # The permutation the last load applied to W (a checkpoint of another layout), which
        # an optimizer state saved beside it still needs (rpg.reorder_optimizer).
        self.reordered: torch.Tensor | None = None
        self._build()

    @property
    def size(self) -> int:
        return self.parameter().numel()

    @property
    def total(self) -> int:
        """T: how many weights this ring generates."""
        return self.offsets[-1]

    # --- The maps ---------------------------------------------------------------------

    def _index_dtype(self) -> torch.dtype:
        # int32 halves the map's memory; it is enough for any ring below 2**31 elements.
        return torch.int32 if max(self.size, self.total + 1) < 2**31 else torch.long

    def _generate_maps(self, index: str, sign: str, index_seed: int, sign_seed: int, layout: str = LAYOUT):
        """The maps these settings give, on the CPU (whatever the default device): (idx, signs).

        ``layout`` is W's storage order: one of ``maps.LAYOUTS``, or "seed" (the seeds' own
        order, that of a checkpoint with no ``layout``).
        """
        with torch.device("cpu"):
            idx = maps.INDEX[index](self.sizes, self.size, maps.generator(index_seed))
            signs = maps.SIGN[sign](self.sizes, maps.generator(sign_seed))
            if layout != "seed":
                idx = maps.LAYOUTS[layout](idx, self.size)[0]
        return idx.to(self._index_dtype()), signs.to(torch.int8)

    def _verify(self, idx: torch.Tensor, signs: torch.Tensor, expected: tuple[str, str] | None):
        """Raise if the maps' fingerprint is not the checkpoint's; return (fingerprint, torch version),
        or None with no checkpoint to compare with (the fingerprint is then computed when asked)."""
        if expected is None:
            return None
        found = maps.fingerprint(idx, signs)
        if found != expected[0]:
            raise RuntimeError(
                f"ring {self.name!r}: the checkpoint's maps (fingerprint {expected[0]}, built by torch "
                f"{expected[1]}) differ from the maps torch {torch.__version__} regenerates from the same seeds "
                f"({found}), so the checkpoint would load as a different network; load it with torch "
                f"{expected[1]} (and rpg.materialize it there to move it)"
            )
        return found, str(torch.__version__)  # a str: weights_only loads refuse a TorchVersion

    def _build(self) -> None:
        """Regenerate the maps from the seeds onto W's device (on the meta device: shapes only)."""
        device = self.parameter().device
        if device.type == "meta":
            idx = torch.empty(self.total, dtype=self._index_dtype(), device=device)
            signs = torch.empty(self.total, dtype=torch.int8, device=device)
            self._set_maps(idx, signs, None)
            return
        idx, signs = self._generate_maps(self.index, self.sign, self.index_seed, self.sign_seed)
        fingerprint = self._verify(idx, signs, self._expected)
        self._expected = None
        self._set_maps(idx.to(device), signs.to(device), fingerprint)

    def _set_maps(self, idx: torch.Tensor, signs: torch.Tensor, fingerprint: tuple[str, str] | None) -> None:
        self.idx = idx
        self.signs = signs
        self._fingerprint = fingerprint
        # The inverse table is built on first need (the first recorded generation): models
        # that are only counted, evaluated or materialized never pay for it.
        self.inv = torch.empty(0, self.size, device=idx.device, dtype=idx.dtype)
        self._inverse_built = False
        self._reset()

    def _place_maps(self) -> None:
        """Keep the maps on W's device: moved with it, regenerated when W leaves the meta device."""
        device = self.parameter().device
        if self.idx.device == device:
            return
        if self.idx.is_meta:
            self._build()
        else:
            self.idx, self.signs, self.inv = (t.to(device) for t in (self.idx, self.signs, self.inv))
            self._reset()

    def _apply(self, fn, recurse: bool = True):
        # .to(), .cuda(), .double(), to_empty(): the cached multipliers and weights are of
        # the old kind, and the maps (no buffers) follow W here.
        self._reset()
        module = super()._apply(fn, recurse)
        self._place_maps()
        return module

    def inverse(self) -> torch.Tensor:
        """The inverse table of a balanced map, shape (ceil(T/N), N); (0, N) for other maps."""
        if not self._inverse_built:
            table = inverse_table(self.idx, self.size)
            self.inv = table.to(device=self.idx.device, dtype=self.idx.dtype)
            self._inverse_built = True
            self._plan = None
        return self.inv

    def usage(self) -> torch.Tensor:
        """How many generated weights read each element of W."""
        return torch.bincount(self.idx.long(), minlength=self.size)

    def fingerprint(self) -> str | None:
        """A hash of the maps (``maps.fingerprint``); None while they are on the meta device."""
        if self._expected is not None:
            return self._expected[0]
        if self._fingerprint is None and not self.idx.is_meta:
            self._fingerprint = (maps.fingerprint(self.idx, self.signs), str(torch.__version__))
        return None if self._fingerprint is None else self._fingerprint[0]

    # --- W ----------------------------------------------------------------------------

    def parameter(self) -> nn.Parameter:
        """W's trainable tensor (``weight_orig`` once pruned: ``weight`` is then derived)."""
        return self.weight_orig if hasattr(self, "weight_orig") else self.weight

    def source(self) -> torch.Tensor:
        """W as the generated weights read it: masked, if the ring was pruned."""
        if hasattr(self, "weight_mask"):
            return self.weight_orig * self.weight_mask
        return self.weight

    def reset_parameters(self) -> None:
        """Draw W afresh at its initial std (e.g. after ``to_empty``, as for any module)."""
        with torch.no_grad():
            self.parameter().normal_(0.0, self.std)

    # --- Generation -------------------------------------------------------------------

    def _reset(self) -> None:
        self._plan = None
        self._generation = None

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

    def slot(self, k: int) -> torch.Tensor:
        """The flat generated weights of layer k, before its scale: the plain reference path.

        One index_select per call, no cache (the training path is ``layer``/``generate``).
        """
        self._place_maps()
        lo, hi = self.offsets[k], self.offsets[k + 1]
        # index_select, not W[idx]: its backward (index_add) is deterministic on CPU,
        # the advanced-indexing backward is not.
        return torch.index_select(self.source(), 0, self.idx[lo:hi]) * self.signs[lo:hi]

    def uses_inverse(self) -> bool:
        """Whether the backward is the inverse table's gather + sum (else index_add)."""
        if self.grad_path not in ("auto", "inverse", "index_add"):
            raise ValueError(f"grad_path must be 'auto', 'inverse' or 'index_add', got {self.grad_path!r}")
        if self.grad_path == "auto" and self.parameter().device.type == "cpu":
            return -(-self.total // self.size) <= AUTO_MAX_ROWS
        return self.grad_path != "index_add"

    @property
    def grad_path_in_use(self) -> str:
        """The backward that runs: "inverse" or "index_add" (builds the inverse table if needed)."""
        return "inverse" if self.uses_inverse() and self.inverse().numel() else "index_add"

    def plan(self) -> _Plan:
        self._place_maps()
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
        self._place_maps()
        weight = self.source()
        # The inverse table is built on the first generation autograd records (meta tensors
        # only count: no table).
        if torch.is_grad_enabled() and weight.requires_grad and self.uses_inverse() and not weight.is_meta:
            self.inverse()
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
        if torch.compiler.is_compiling():
            # No cache under compile (module docstring): the plain ops, the same values.
            return self.slot(k) * self.scales[k]
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

    # --- Checkpoints ------------------------------------------------------------------

    def get_extra_state(self) -> dict:
        state = {
            "index": self.index,
            "sign": self.sign,
            "index_seed": self.index_seed,
            "sign_seed": self.sign_seed,
            "sizes": list(self.sizes),
            "size": self.size,
            # The scales follow the initial weights the ring replaced (rpg.convert), which a
            # model built afresh to load this checkpoint does not share.
            "scales": list(self.scales),
            "layout": LAYOUT,
        }
        fingerprint = self.fingerprint()
        if fingerprint is not None:
            state["fingerprint"] = fingerprint
            state["torch"] = (self._expected or self._fingerprint)[1]
        return state

    def set_extra_state(self, state: dict) -> None:
        if list(state["sizes"]) != self.sizes or state.get("size", self.size) != self.size:
            raise RuntimeError(
                "ring layout mismatch: the checkpoint's ring has "
                f"{state.get('size', '?')} elements generating layers of sizes {state['sizes'][:4]}... but "
                f"this model's has {self.size} elements generating {self.sizes[:4]}...; convert the same "
                "architecture with the same scope and ring size before loading"
            )
        maps.check_strategy(state["index"], state["sign"])
        settings = (state["index"], state["sign"], int(state["index_seed"]), int(state["sign_seed"]))
        expected = (state["fingerprint"], state.get("torch", "unknown")) if "fingerprint" in state else None
        layout = state.get("layout", "seed")  # no layout: W in the seeds' order
        if layout != "seed" and layout not in maps.LAYOUTS:
            raise RuntimeError(f"ring {self.name!r}: the checkpoint stores W in an unknown layout {layout!r}")
        device = self.parameter().device
        built = None
        if device.type != "meta" or layout != LAYOUT:
            idx, signs = self._generate_maps(*settings, layout=layout)
            # Checked before anything changes: a refused load leaves the maps as they were.
            checked = self._verify(idx, signs, expected)
            self.reordered = None
            if layout != LAYOUT:
                relabelled, order = maps.LAYOUTS[LAYOUT](idx, self.size)
                idx, checked, expected = relabelled.to(self._index_dtype()), None, None
                self._reorder(order)
                self.reordered = order
            if device.type != "meta":
                built = (idx.to(device), signs.to(device), checked)
        self.index, self.sign, self.index_seed, self.sign_seed = settings
        self.scales = [float(s) for s in state["scales"]]
        if built is None:
            self._expected = expected  # checked when the maps are built, off the meta device
            self._build()
        else:
            self._expected = None
            self._set_maps(*built)

    def _reorder(self, order: torch.Tensor) -> None:
        """Permute W (and a pruning mask) in place: element m takes the old element order[m]."""
        names = ("weight_orig", "weight_mask") if hasattr(self, "weight_mask") else ("weight",)
        with torch.no_grad():
            for name in names:
                tensor = getattr(self, name)
                tensor.copy_(tensor[order.to(tensor.device)])

    def extra_repr(self) -> str:
        return (
            f"{self.name}: size={self.size}, generates={self.total}, layers={len(self.sizes)}, "
            f"index={self.index}, sign={self.sign}"
        )
