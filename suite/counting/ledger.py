"""The parameter ledger: one counting rule, applied to every method.

For any model:
    learned       trainable scalars, each counted once: a shared tensor (an RPG ring, a
                  tied weight) counts once however many layers read it; a pruned weight
                  (torch.nn.utils.prune's ``*_orig`` with a ``*_mask``) counts its
                  unmasked entries only; BN running statistics are not learned; a
                  training-time proxy for a discrete choice (LegoNet's selection logits,
                  marked ``ledger_proxy``) is not counted.
    backbone      learned minus the task head's learned scalars: the paper's budget axis,
                  and what budgets are matched on.
    dense         weights that run at inference: every parameter of the deployed model
                  (``rpg.materialize``): a parametrized weight (RPG's, LegoNet's) counts at
                  its full size, the tensors that produce it (a ring, lego filters) not at all.
    stored_bytes  the size of ``torch.save(model.state_dict())``: what a checkpoint needs
                  (for RPG: W, the dense layers, BN and the seeds; never the index maps).
"""

from __future__ import annotations

import io
import re

import torch
from torch import nn
from torch.nn.utils import parametrize

import rpg
from suite.errors import UsageError


def _learned(module: nn.Module) -> int:
    masks = dict(module.named_buffers())
    total = 0
    for name, p in module.named_parameters():  # deduplicates shared parameters
        if not p.requires_grad or getattr(p, "ledger_proxy", False):
            continue
        mask = masks.get(name[: -len("_orig")] + "_mask") if name.endswith("_orig") else None
        total += int(mask.count_nonzero()) if mask is not None else p.numel()
    return total


def _dense(model: nn.Module) -> int:
    # A parametrized weight runs at its produced size; the tensors inside the
    # parametrization that produce it (a ring, lego filters) are not deployed.
    total = sum(p.numel() for name, p in model.named_parameters() if ".parametrizations." not in f".{name}")
    with torch.no_grad():
        for module in model.modules():
            if parametrize.is_parametrized(module):
                total += sum(getattr(module, name).numel() for name in module.parametrizations)
    return total


def stored_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def ledger(model: nn.Module, head: str = "fc") -> dict[str, int]:
    learned = _learned(model)
    head_learned = _learned(model.get_submodule(head)) if head else 0
    return {
        "learned": learned,
        "backbone": learned - head_learned,
        "dense": _dense(model),
        "stored_bytes": stored_bytes(model),
    }


_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def parse_count(text: str | int) -> int:
    """``'2M'`` -> 2000000, ``'45K'``, ``'1.5M'``, ``'11173962'``, ``'11_173_962'``."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
        if not match:
            raise UsageError(f"not a parameter count: {text!r} (write e.g. 2M, 45K or 11173962)")
        number, suffix = match.groups()
        value = round(float(number.replace("_", "").replace(",", "")) * _SUFFIX[suffix.upper()])
    if value < 1:
        raise UsageError(f"a parameter count must be positive, got {text!r}")
    return value


def format_count(n: float) -> str:
    for suffix, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{suffix}"
    return f"{n:.0f}"


_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def storage(model: nn.Module) -> dict[str, int]:
    """What a checkpoint of ``model`` holds, in bytes of tensor data by kind: the rings' W
    (a pruned ring's mask too), normalisation layers (parameters and running statistics),
    every other tensor of a layer that runs as stored (biases, the head, a layer left
    dense), and anything else: a generated weight's stored copy or an index map, which an
    RPG checkpoint should never hold (Section 3). ``generated_bytes``: what the weights the
    rings generate would take stored densely."""
    out = {"ring_bytes": 0, "norm_bytes": 0, "dense_bytes": 0, "other_bytes": 0}
    rings = {id(r) for r in rpg.rings(model).values()}
    for module in model.modules():
        persistent = {k: b for k, b in module._buffers.items() if k not in module._non_persistent_buffers_set}
        tensors = [t for t in (*module._parameters.values(), *persistent.values()) if t is not None]
        size = sum(t.numel() * t.element_size() for t in tensors)
        if id(module) in rings:
            out["ring_bytes"] += size
        elif isinstance(module, _NORMS):
            out["norm_bytes"] += size
        elif isinstance(module, parametrize.ParametrizationList):
            out["other_bytes"] += size  # the stored original of a generated weight
        else:
            out["dense_bytes"] += size
    out["generated_bytes"] = sum(r.total * r.parameter().element_size() for r in rpg.rings(model).values())
    return out
