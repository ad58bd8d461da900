"""8-bit post-training quantisation (baselines/int8.py) of an RPG network."""

import torch

from baselines import int8
from suite import archs, methods


def test_an_rpg_network_quantises_to_int8_weights_and_keeps_its_outputs():
    net = archs.Net(archs.get("resnet18-cifar"), 0.125, 3, 10)
    model = methods.build(methods.get("rpg"), net, 40_000, seed=0).model.eval()
    torch.manual_seed(0)
    batches = [torch.randn(32, 3, 16, 16) for _ in range(4)]
    quantised = int8.quantise(model, batches)
    weights = [m.weight() for m in quantised.modules() if type(m).__name__ == "Conv2d" and callable(m.weight)]
    assert weights and all(w.dtype == torch.qint8 for w in weights)
    x = torch.randn(64, 3, 16, 16)
    with torch.no_grad():
        full, eight = model(x), quantised(x)
    # Calibrated on the same distribution, int8 changes the logits by a few percent of their scale.
    assert (eight - full).abs().mean() < 0.05 * full.abs().mean()
    assert (eight.argmax(1) == full.argmax(1)).float().mean() >= 0.9
