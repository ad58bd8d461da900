"""Recurrent Parameter Generators: every layer's weights generated from one shared ring.

    import rpg, torchvision
    model = rpg.convert(torchvision.models.resnet18(), ring_size=2_000_000)
    ...train as usual...
    deployed = rpg.materialize(model)   # plain dense copy, no rpg code needed to run it

This package imports only torch.
"""

from rpg.convert import convert, generated_layers, materialize, plan, reorder_optimizer, rings
from rpg.generated import Generated
from rpg.maps import INDEX, SIGN
from rpg.ring import Ring

__all__ = [
    "INDEX",
    "SIGN",
    "Generated",
    "Ring",
    "convert",
    "generated_layers",
    "materialize",
    "plan",
    "reorder_optimizer",
    "rings",
]
