"""Turn any model's conv (and optionally linear) weights into ring-generated ones, and back."""

from __future__ import annotations

import copy
import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from rpg.generated import Generated, picklable
from rpg.ring import Ring, check_count

Scope = str | Mapping[str, str]


def _targets(model: nn.Module, linear: bool, exclude: Iterable[str] | None) -> list[str]:
    kinds: tuple[type, ...] = (nn.modules.conv._ConvNd,) + ((nn.Linear,) if linear else ())
    named = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    if exclude is None:
        # The task head stays dense, as in the paper: the last Linear of the model.
        heads = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        exclude = heads[-1:]
    patterns = list(exclude)
    return [n for n, _ in named if not any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def _ring_of(name: str, scope: Scope) -> str | None:
    if scope == "global":
        return "global"
    if scope == "block":
        return name.split(".")[0]
    if scope == "layer":
        return name.replace(".", "-")
    if isinstance(scope, Mapping):
        for pattern, ring in scope.items():
            if fnmatch.fnmatchcase(name, pattern):
                return ring
        return None
    raise ValueError(f"scope must be 'global', 'block', 'layer' or a mapping of layer names to rings, got {scope!r}")


def _split(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), at least 1 each."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    parts = [max(1, int(e)) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for i in order[: max(0, total - sum(parts))]:
        parts[i] += 1
    # The minimum of 1 may have overshot: take the excess back from the largest parts.
    while sum(parts) > total:
        parts[parts.index(max(parts))] -= 1
    return parts


def plan(
    model: nn.Module, scope: Scope = "global", *, exclude: Iterable[str] | None = None, linear: bool = False
) -> dict[str, list[str]]:
    """The rings ``convert`` would make: ring name -> the names of the layers it generates.

    Works on meta-device models, so a budget solver can count rings without weights.
    """
    layers: dict[str, list[str]] = {}
    for name in _targets(model, linear, exclude):
        ring = _ring_of(name, scope)
        if ring is not None:
            if "." in ring or not ring:
                raise ValueError(f"ring names must be non-empty and free of '.', got {ring!r}")
            layers.setdefault(ring, []).append(name)
    return layers


def _ring_sizes(ring_size: int | Mapping[str, int], generates: dict[str, int], allow_oversized: bool) -> dict[str, int]:
    """Each ring's size, checked: ``generates`` maps each ring to the weights it generates."""
    if isinstance(ring_size, Mapping):
        unknown = set(ring_size) - set(generates)
        if unknown:
            raise ValueError(f"ring_size names rings {sorted(unknown)} that the scope does not make: {list(generates)}")
        missing = set(generates) - set(ring_size)
        if missing:
            raise ValueError(f"ring_size names no size for rings {sorted(missing)}")
        sizes = {r: check_count(ring_size[r], f"ring_size[{r!r}]") for r in generates}
    else:
        total = check_count(ring_size, "ring_size")
        if total < len(generates):
            raise ValueError(f"ring_size {total} is smaller than the number of rings ({len(generates)})")
        generated = sum(generates.values())
        if total > generated and not allow_oversized:
            raise ValueError(
                f"ring_size {total:,} is larger than the {generated:,} weights the rings generate: "
                f"{total - generated:,} elements would never be read; pass allow_oversized=True to allow it"
            )
        sizes = dict(zip(generates, _split(total, list(generates.values())), strict=True))
    for ring, size in sizes.items():
        if size > generates[ring] and not allow_oversized:
            raise ValueError(
                f"ring {ring!r} of {size:,} elements is larger than the {generates[ring]:,} weights it generates: "
                f"{size - generates[ring]:,} elements would never be read; pass allow_oversized=True to allow it"
            )
    return sizes


OFFICIAL_STD = math.sqrt(2 / (512 * 3 * 3))  # the official code's W: Kaiming fan-out of 512 x 3 x 3


def _std_rule(ring_std: str | float):
    """The std W starts at, from its layers' initial stds."""
    if ring_std == "smallest":
        return min
    if ring_std == "official":
        return lambda stds: OFFICIAL_STD
    if isinstance(ring_std, bool) or not isinstance(ring_std, int | float) or not 0 < ring_std < math.inf:
        raise ValueError(f'ring_std must be "smallest", "official" or a positive number, got {ring_std!r}')
    return lambda stds: float(ring_std)


def convert(
    model: nn.Module,
    ring_size: int | Mapping[str, int],
    *,
    index: str = "even",
    sign: str = "random",
    scope: Scope = "global",
    seed: int = 0,
    exclude: Iterable[str] | None = None,
    linear: bool = False,
    allow_oversized: bool = False,
    ring_std: str | float = "smallest",
) -> nn.Module:
    """Generate the weights of ``model``'s layers from rings, in place; return the model.

    Every ``nn.Conv*`` weight (and every ``nn.Linear`` weight when ``linear=True``) becomes
    ``K = scale * sign * W[idx]`` for the ring W its scope assigns it to. Biases, norms and
    excluded layers stay ordinary parameters. ``exclude`` takes fnmatch patterns of module
    names; by default it is the model's last ``nn.Linear`` (the task head), which the
    paper keeps dense. The stem conv is generated like every other conv: the paper
    generates all conv layers, and the stem belongs to the backbone being budgeted.

    ``scope``: ``"global"`` (one ring), ``"block"`` (one ring per top-level child that
    holds generated layers: ResNet's stem and its four stages), ``"layer"`` (one ring per
    layer, named after it with '.' as '-': HashedNets' per-layer buckets), or a mapping of fnmatch
    patterns of layer names to ring names (first match wins; unmatched layers stay dense).
    ``ring_size``: the total number of ring elements (a positive int), split across rings in
    proportion to the weights each generates, or a mapping of ring name to size. A ring
    larger than the weights it generates is refused, since no weight would read its extra
    elements, unless ``allow_oversized=True``.

    ``ring_std``: the std W starts at; each layer's fixed scale then brings its kernels to
    the layer's own initial std. ``"smallest"`` (the default): the smallest of the ring's
    layers' stds, so every scale is >= 1. ``"official"``: the official code's constant,
    the Kaiming fan-out std of a 512 x 3 x 3 layer, sqrt(2 / 4608), whatever the widths
    (the same as "smallest" for a full-width ResNet; smaller, with larger scales, for a
    narrow one). A positive float: that std.
    """
    std_rule = _std_rule(ring_std)
    if rings(model):
        raise ValueError("this model is already converted; rpg.materialize() it first")
    layers = plan(model, scope, exclude=exclude, linear=linear)
    if not layers:
        raise ValueError("no layer to generate: the model has no conv layer outside `exclude`")

    modules = dict(model.named_modules())
    sizes = {r: [modules[n].weight.numel() for n in names] for r, names in layers.items()}
    ring_sizes = _ring_sizes(ring_size, {r: sum(s) for r, s in sizes.items()}, allow_oversized)

    # On the CPU, whatever the default device (a model built under torch.device("meta") too).
    seeds = torch.randint(2**62, (len(layers), 2), generator=torch.Generator().manual_seed(seed), device="cpu")
    for (name, names), (index_seed, sign_seed) in zip(layers.items(), seeds.tolist(), strict=True):
        weight = modules[names[0]].weight
        # W starts at the smallest of its layers' initial stds (for a ResNet, the Kaiming std
        # of its widest-fan-out layer: the official code's choice, 512 x 3 x 3), so every
        # layer's scale is >= 1 and near it. A unit-variance W would instead need scales ~
        # 1/sqrt(fan_out), which shrink the effective learning rate of the generated kernels
        # by orders of magnitude.
        stds = [initial_std(modules[n].weight) for n in names]
        std = std_rule(stds)
        ring = Ring(
            ring_sizes[name],
            sizes[name],
            index=index,
            sign=sign,
            index_seed=index_seed,
            sign_seed=sign_seed,
            std=std,
            name=name,
            # Each layer's fixed scale brings its kernels from W's std to the layer's own.
            scales=[s / std for s in stds],
            allow_oversized=allow_oversized,
        ).to(device=weight.device, dtype=weight.dtype)
        for slot, layer in enumerate(names):
            module = modules[layer]
            generated = Generated(ring, slot, module.weight.shape)
            parametrize.register_parametrization(module, "weight", generated, unsafe=True)
            module.parametrizations.weight.original.requires_grad_(False)
            picklable(module)
    return model


def initial_std(weight: torch.Tensor) -> float:
    """The std a generated kernel starts at: that of the weight it replaces, as the
    architecture initialised it (Kaiming fan-out in torchvision's ResNets, PyTorch's default
    in the hourglass and SharpNet networks), so RPG starts where its dense counterpart does.
    Assuming Kaiming everywhere started the hourglass's kernels 2-3x wider than the
    unshared network's and cost RPG half its PCKh. Kaiming fan-out where the weight holds
    no values to measure (meta tensors, which only count) or no spread."""
    if weight.is_meta or weight.numel() < 2:
        return kaiming_fan_out_std(weight.shape)
    std = float(weight.detach().double().std())
    return std if math.isfinite(std) and std > 0 else kaiming_fan_out_std(weight.shape)


def kaiming_fan_out_std(shape: Sequence[int]) -> float:
    """He et al.'s std for a ReLU network, fan-out mode (what torchvision's ResNets use)."""
    fan_out = shape[0] * math.prod(shape[2:])
    return math.sqrt(2.0 / fan_out)


def _generators(model: nn.Module) -> list[tuple[str, Generated]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, Generated)]


def _layer_of(name: str) -> str | None:
    """The layer a Generated module named ``name`` generates the weight of ("" for the root), if any."""
    suffix = "parametrizations.weight.0"
    if name == suffix:
        return ""
    return name[: -len(suffix) - 1] if name.endswith("." + suffix) else None


def rings(model: nn.Module) -> dict[str, Ring]:
    """The model's rings by name, in layer order (empty for a model never converted)."""
    found: dict[str, Ring] = {}
    for name, g in _generators(model):
        if g.ring not in found.values():
            # Submodules converted separately can each have a ring called "global".
            key = g.ring.name if g.ring.name not in found else f"{g.ring.name}@{_layer_of(name)}"
            found[key] = g.ring
    return found


def reorder_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Permute ``optimizer``'s state of each ring as loading ``model``'s checkpoint permuted W.

    A checkpoint of an older storage order of W (``Ring.reordered``) loads as the same
    network, W permuted into today's order; momentum and moments saved beside it are per
    element of W, so they must follow. Call it after loading both state dicts. Each
    permutation is applied once.
    """
    for ring in rings(model).values():
        if ring.reordered is None:
            continue
        weight = ring.parameter()
        state = optimizer.state.get(weight, {})
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == weight.shape:
                state[key] = value[ring.reordered.to(value.device)]
        ring.reordered = None


def generated_layers(model: nn.Module) -> list[str]:
    """Names of the modules whose weight a ring generates ("" for the model itself, as in named_modules)."""
    return [layer for layer in (_layer_of(n) for n, _ in _generators(model)) if layer is not None]


def materialize(model: nn.Module) -> nn.Module:
    """A plain dense copy of ``model``: same outputs, ordinary weights, no rpg code inside.

    This is the deployed form: ONNX export, TorchScript or pickling need nothing from rpg.
    Every parametrized tensor becomes an ordinary parameter holding its current value:
    rpg's generated weights, and any other parametrization's (LegoNet's kernels, say); a
    tensor pruned by ``torch.nn.utils.prune`` becomes its masked value.
    """
    for module in model.modules():
        # A pruned tensor's derived value (prune recomputes it before every forward) is not
        # a graph leaf after a forward with autograd on, and deepcopy refuses those: store
        # the same value, detached.
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                with torch.no_grad():
                    setattr(module, hook._tensor_name, hook.apply_mask(module))
    dense = copy.deepcopy(model)
    for module in [m for m in dense.modules() if parametrize.is_parametrized(m)]:
        with torch.no_grad():
            values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
        # Not parametrize.remove_parametrizations: it deletes the property from the
        # parametrized class, which deepcopy shares with the original model.
        del module._modules["parametrizations"]
        module.__class__ = module.__class__.__bases__[0]
        for name, value in values.items():
            setattr(module, name, nn.Parameter(value))
    for module in dense.modules():  # torch.nn.utils.prune's masks, baked in: zeros in dense weights
        for name in [n.removesuffix("_mask") for n, _ in module.named_buffers(recurse=False) if n.endswith("_mask")]:
            if hasattr(module, f"{name}_orig"):
                prune.remove(module, name)
    return dense
