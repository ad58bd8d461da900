"""What rpg.convert and Ring accept, and models built on the meta device."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import rpg
from baselines.plain import ResNet


def small_resnet() -> ResNet:
    return ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10)


def generated(model: nn.Module) -> int:
    """T: the weights the rings would generate (every conv: the head is the only Linear)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(
    ("ring_size", "error", "message"),
    [
        (True, TypeError, "ring_size must be a positive int, got bool True"),
        ("3000", TypeError, "ring_size must be a positive int, got str '3000'"),
        (2.7, TypeError, "ring_size must be a positive int, got float 2.7"),
        (3000.0, TypeError, "ring_size must be a positive int, got float 3000.0"),
        (0, ValueError, "ring_size must be a positive int, got 0"),
        (-5, ValueError, "ring_size must be a positive int, got -5"),
    ],
)
def test_a_ring_size_that_is_not_a_positive_int_is_refused(ring_size, error, message):
    model = small_resnet()
    with pytest.raises(error, match=f"^{message}$"):
        rpg.convert(model, ring_size)
    assert rpg.rings(model) == {}  # refused before anything was converted


def test_an_integer_ring_size_of_any_integer_type_is_taken():
    model = rpg.convert(small_resnet(), np.int64(3000))
    assert rpg.rings(model)["global"].size == 3000


def test_a_ring_larger_than_what_it_generates_needs_the_opt_in():
    model = small_resnet()
    total = generated(model)
    with pytest.raises(ValueError, match=f"ring_size {total + 1:,} is larger than the {total:,} weights"):
        rpg.convert(model, total + 1)
    assert rpg.rings(model) == {}
    rpg.convert(model, total + 1, allow_oversized=True)
    assert rpg.rings(model)["global"].size == total + 1
    assert int((rpg.rings(model)["global"].usage() == 0).sum()) >= 1  # an element nobody reads


@pytest.mark.parametrize("scope", ["block", "layer"])
def test_a_split_ring_size_up_to_the_weights_generated_never_oversizes_a_ring(scope):
    total = generated(small_resnet())
    for ring_size in (total, total - 1, total // 3 + 1, 100):
        rings = rpg.rings(rpg.convert(small_resnet(), ring_size, scope=scope))
        assert sum(r.size for r in rings.values()) == ring_size
        assert all(r.size <= r.total for r in rings.values())
    with pytest.raises(ValueError, match="is larger than the"):
        rpg.convert(small_resnet(), total + 1, scope=scope)


def test_a_mapping_of_ring_sizes_is_checked_ring_by_ring():
    scope = {"layer1.*": "a", "layer2.*": "b"}
    modules = small_resnet().named_modules()
    layer1 = sum(m.weight.numel() for n, m in modules if n.startswith("layer1.") and isinstance(m, nn.Conv2d))
    model = small_resnet()
    with pytest.raises(ValueError, match=f"ring 'a' of {layer1 + 1:,} elements is larger than the {layer1:,} weights"):
        rpg.convert(model, {"a": layer1 + 1, "b": 700}, scope=scope)
    with pytest.raises(TypeError, match=r"ring_size\['b'\] must be a positive int, got float 700.0"):
        rpg.convert(model, {"a": 500, "b": 700.0}, scope=scope)
    with pytest.raises(ValueError, match=r"ring_size\['a'\] must be a positive int, got 0"):
        rpg.convert(model, {"a": 0, "b": 700}, scope=scope)
    with pytest.raises(ValueError, match=r"names rings \['c'\] that the scope does not make"):
        rpg.convert(model, {"a": 500, "b": 700, "c": 10}, scope=scope)
    assert rpg.rings(model) == {}
    rpg.convert(model, {"a": layer1 + 1, "b": 700}, scope=scope, allow_oversized=True)
    assert rpg.rings(model)["a"].size == layer1 + 1


def test_a_ring_built_directly_checks_its_size_too():
    with pytest.raises(TypeError, match="got float 2.7"):
        rpg.Ring(2.7, [10])
    with pytest.raises(ValueError, match="ring 'global' has 11 elements but generates only 10 weights"):
        rpg.Ring(11, [10])
    assert rpg.Ring(11, [10], allow_oversized=True).size == 11


@pytest.mark.slow
def test_a_model_built_on_the_meta_device_gets_its_maps_when_materialised():
    with torch.device("meta"):
        model = rpg.convert(torchvision.models.resnet18(num_classes=10), 50_000)
    (ring,) = rpg.rings(model).values()
    assert ring.idx.is_meta and ring.fingerprint() is None  # nothing generated for a model that only counts
    model.to_empty(device="cpu")
    reference = rpg.rings(rpg.convert(torchvision.models.resnet18(num_classes=10), 50_000))["global"]
    assert ring.idx.device.type == "cpu"
    assert torch.equal(ring.idx, reference.idx) and torch.equal(ring.signs, reference.signs)
    assert ring.fingerprint() == reference.fingerprint()
    for module in model.modules():  # what to_empty asks for next, as for any model
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    assert ring.weight.std().item() == pytest.approx(ring.std, rel=0.05)
    model.eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert torch.equal(rpg.materialize(model).eval()(torch.ones(1, 3, 32, 32)), model(torch.ones(1, 3, 32, 32)))


def test_moves_and_casts_keep_the_maps_with_w_and_their_integer_dtypes():
    ring = rpg.Ring(50, [30, 70], scales=[1.0, 2.0])
    idx, signs = ring.idx.clone(), ring.signs.clone()
    ring.double()
    assert ring.weight.dtype == torch.double and ring.idx.dtype == torch.int32 and ring.signs.dtype == torch.int8
    ring.to("meta")
    assert ring.idx.is_meta
    ring.to_empty(device="cpu")
    assert torch.equal(ring.idx, idx) and torch.equal(ring.signs, signs)
