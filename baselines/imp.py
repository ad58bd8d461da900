"""Iterative magnitude pruning with weight rewinding (Frankle et al. 2019; 2020).

Train the dense network; prune ``rate`` of the remaining prunable weights globally by
magnitude (``torch.nn.utils.prune.global_unstructured``, L1); rewind the surviving weights
and BatchNorm to their values at iteration k of the first training and start a fresh
optimiser and schedule; train again; repeat. The last level prunes exactly what lands the
count on the target, so the pruned network meets its budget to the weight.

What is prunable: every weight tensor of the backbone that training moves, i.e. each ring
of an RPG network (``torch.nn.utils.prune`` works on a ring's W, see rpg/ring.py) and every
conv weight no ring generates. The head stays dense: it is outside the parameter budget,
which counts the backbone. The ledger counts a pruned tensor's unmasked entries.

Resuming: every training round checkpoints under its own name beside the cell's
checkpoint, and so does the rewind point; a rerun replays finished rounds from their
final checkpoints (each prune is a function of the trained weights, so the replay lands
on the same masks) and resumes the unfinished round.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

import rpg

RATE = 0.2  # of the remaining weights, per level (Frankle et al.)
# k, as a fraction of one training's steps: early in training, as Frankle et al. (2020)
# rewind CIFAR ResNets to a few percent of their iterations.
REWIND = 0.03


def targets(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, "weight") for every prunable tensor: the rings, then the convs none generates."""
    generated = set(rpg.generated_layers(model))
    convs = [m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n not in generated]
    return [(ring, "weight") for ring in rpg.rings(model).values()] + [(m, "weight") for m in convs]


def _values(module: nn.Module, name: str) -> torch.Tensor:
    """The tensor as the network uses it: masked if pruned (a ring's own ``weight`` is stale)."""
    if hasattr(module, f"{name}_mask"):
        return getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")
    return getattr(module, name)


def remaining(tensors: list[tuple[nn.Module, str]]) -> int:
    return sum(
        int(getattr(m, f"{n}_mask").count_nonzero()) if hasattr(m, f"{n}_mask") else getattr(m, n).numel()
        for m, n in tensors
    )


def levels(total: int, keep: int, rate: float = RATE) -> list[int]:
    """Prunable weights left after each level: ``rate`` fewer per level, the last exactly ``keep``."""
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} prunable weights")
    out, n = [], total
    while round(n * (1 - rate)) > keep:
        n = round(n * (1 - rate))
        out.append(n)
    return [*out, keep] if keep < total else []


def prune_to(tensors: list[tuple[nn.Module, str]], keep: int) -> None:
    """Globally prune the smallest-magnitude surviving weights until ``keep`` remain."""
    with torch.no_grad():
        scores = {(m, n): _values(m, n).detach().abs() for m, n in tensors}
    prune.global_unstructured(tensors, prune.L1Unstructured, importance_scores=scores, amount=remaining(tensors) - keep)


def rewind(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    """Load the snapshot's weights and buffers into ``model``, keeping its masks: a pruned
    tensor's ``*_orig`` takes the snapshot's dense value."""
    state = model.state_dict()
    for key in state:
        if key.endswith("_mask"):
            continue
        source = key.removesuffix("_orig") if key.endswith("_orig") else key
        if source in snapshot:
            state[key] = snapshot[source]
    model.load_state_dict(state)
