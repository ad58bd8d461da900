"""The parametrization that makes a layer's weight a ring's output, and what it refuses.

A converted layer is a ``torch.nn.utils.parametrize`` parametrized module: its ``weight``
is a property calling ``Generated``. Three things need help from here:

- pickle: parametrize gives each parametrized module a class of its own, made at run time,
  which pickle cannot find by name, and refuses to pickle it at all. ``picklable`` gives
  that class a ``__reduce_ex__`` that pickles the module as its original class and makes
  it parametrized again on load (``_unpickle``): ``pickle`` and ``torch.save(model)``
  round-trip a converted model, maps included, so it means the same network anywhere.
- ``nn.DataParallel``: its replicas copy modules shallowly, so every layer but a ring's
  first would keep reading the original ring (on the first GPU). A replica refuses to
  run, pointing to DistributedDataParallel, which does not replicate modules.
- TorchScript cannot script a parametrization: scripting refuses with what to do instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from rpg.ring import Ring


class Generated(nn.Module):
    """A parametrization: the layer's weight is ``scale * sign * W[idx]`` from a ring.

    ``scale`` is the ring's scale for this slot: in ``rpg.convert``, the std the layer's
    weight was initialised at over the ring's initial std (the paper's "adaptive
    scaling"), so every generated kernel starts at the std of the weight it replaces.

    The first layer a ring generates owns it as a submodule, so W appears once in
    ``parameters()`` and in the state dict, and moves with ``.to()``; the other layers hold
    a plain reference. (Registering rings on the model itself would add a child to
    containers such as ``nn.Sequential`` and change what their forward runs.)
    """

    # Set on the copies nn.DataParallel makes (nn.Module._replicate_for_data_parallel).
    _is_replica = False

    def __init__(self, ring: Ring, slot: int, shape: Sequence[int]) -> None:
        super().__init__()
        if slot == 0:
            self.ring = ring
        else:
            object.__setattr__(self, "ring", ring)
        self.slot = slot
        self.shape = tuple(shape)
        if math.prod(self.shape) != ring.sizes[slot]:
            raise ValueError(f"slot {slot} of ring {ring.name} generates {ring.sizes[slot]} weights, not {self.shape}")

    @property
    def scale(self) -> float:
        # Fixed, not learned: it stays in the forward pass, so it also scales the gradient.
        return self.ring.scales[self.slot]

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        if self._is_replica:
            raise RuntimeError(
                "rpg: nn.DataParallel cannot run a converted model (its replicas would read the original "
                "ring); use torch.nn.parallel.DistributedDataParallel, one process per GPU"
            )
        return self.ring.layer(self.slot).view(self.shape)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        # The dense weight is replaced by the ring: keep only an empty placeholder.
        return weight.new_empty(0)

    def __prepare_scriptable__(self):
        raise RuntimeError(
            "rpg: TorchScript cannot script generated weights; script rpg.materialize(model), "
            "the plain dense copy, instead"
        )

    def extra_repr(self) -> str:
        return f"slot={self.slot}, shape={self.shape}, scale={self.scale:.4g}"


def picklable(module: nn.Module) -> None:
    """Let ``pickle`` (and ``torch.save(model)``) take a module rpg parametrized."""
    type(module).__reduce_ex__ = _reduce_ex


def _reduce_ex(self: nn.Module, protocol: int):
    # The original class and the parametrized names; the state (parametrizations, rings
    # and all) is set after the object exists, so references back to it unpickle too.
    base = type(self).__bases__[0]
    return _unpickle, (base, tuple(self.parametrizations)), self.__dict__


def _unpickle(base: type, names: tuple[str, ...]) -> nn.Module:
    module = base.__new__(base)
    # What register_parametrization does to a module (torch's own helpers): a class of its
    # own with a property per parametrized tensor, which reads module.parametrizations.
    parametrize._inject_new_class(module)
    for name in names:
        parametrize._inject_property(module, name)
    picklable(module)
    return module
