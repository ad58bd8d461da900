"""Seeds as keys (Section 5.6): a trained RPG network's ring W and BN, with its index and
sign maps regenerated from other seeds. The paper says the seeds act as security keys:
without them the stored ring decodes into a network no better than chance."""

from __future__ import annotations

import copy

from torch import nn

import rpg

# The maps rebuilt from each ring's own seeds plus this: any other seed would do, and a
# fixed one makes the measurement repeatable.
OFFSET = 1


def with_other_seeds(model: nn.Module) -> nn.Module | None:
    """A copy of ``model`` whose rings keep W (and the layers' scales) but draw their index
    and sign maps from other seeds; None when no ring's maps depend on a seed (sequential
    indices without signs: the "neither" ablation generates the same network whatever the
    seed)."""
    if not any(r.index != "sequential" or r.sign != "none" for r in rpg.rings(model).values()):
        return None
    other = copy.deepcopy(model)
    for ring in rpg.rings(other).values():
        # The ring's own extra-state protocol rebuilds its maps from the seeds it is given;
        # a fingerprint of the old maps, if the ring keeps one, would rightly refuse them.
        state = {k: v for k, v in ring.get_extra_state().items() if k != "fingerprint"}
        state["index_seed"] += OFFSET
        state["sign_seed"] += OFFSET
        ring.set_extra_state(state)
    return other
