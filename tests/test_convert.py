"""rpg.convert / rings / materialize on real models: the maths of the paper, not just shapes."""

import copy
import io
import pickle

import pytest
import torch
import torchvision
from torch import nn

import rpg
from baselines.plain import ResNet
from rpg.convert import OFFICIAL_STD
from rpg.ring import _Flag, _Generate


def small_resnet(**kw) -> ResNet:
    return ResNet(18, (8, 16, 32, 64), stem="cifar", in_channels=3, num_classes=10, **kw)


def generated_weights(model):
    modules = dict(model.named_modules())
    return {name: modules[name].weight for name in rpg.generated_layers(model)}


def test_every_conv_is_generated_and_the_head_stays_dense():
    model = rpg.convert(small_resnet(), 5000)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert rpg.generated_layers(model) == convs
    assert "fc" not in rpg.generated_layers(model)
    (ring,) = rpg.rings(model).values()
    assert ring.size == 5000
    assert ring.total == sum(w.numel() for w in generated_weights(model).values())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert trainable == 5000 + bn + model.fc.weight.numel() + model.fc.bias.numel()


def test_linear_layers_can_be_generated_but_the_head_is_excluded():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 20), nn.ReLU(), nn.Linear(20, 5))
    rpg.convert(model, 100, linear=True)
    assert rpg.generated_layers(model) == ["0", "2"]
    x = torch.randn(1, 3, 8, 8)
    # A container's forward runs its children: converting must not add one.
    assert torch.equal(model(x), rpg.materialize(model)(x))


def test_the_gradient_of_w_is_the_superposition_of_layer_gradients():
    """Eq. 2: dL/dW = sum_i R_i^T dL/dK_i, against dense autograd through the same kernels."""
    torch.manual_seed(0)
    model = rpg.convert(small_resnet(), 3000).double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.double)
    model.train()
    model(x).square().sum().backward()
    (ring,) = rpg.rings(model).values()
    assert ring.grad_path_in_use == "inverse"  # the fast path: one fused node, inverse-table backward
    autograd = ring.weight.grad.clone()

    # Dense: the same network with the generated kernels as independent leaves.
    dense = rpg.materialize(model)
    dense.zero_grad()
    dense.train()
    dense(x).square().sum().backward()
    modules = dict(dense.named_modules())
    expected = torch.zeros_like(ring.weight)
    for slot, name in enumerate(rpg.generated_layers(model)):
        grad_k = modules[name].weight.grad.flatten()
        lo, hi = ring.offsets[slot], ring.offsets[slot + 1]
        scale = dict(model.named_modules())[name].parametrizations.weight[0].scale
        expected.index_add_(0, ring.idx[lo:hi].long(), grad_k * ring.signs[lo:hi] * scale)
    assert torch.allclose(autograd, expected, rtol=1e-9, atol=1e-12)
    assert autograd.abs().sum() > 0


def test_each_generated_kernel_starts_at_its_own_kaiming_fan_out_std():
    torch.manual_seed(0)
    model = rpg.convert(small_resnet(), 20000)
    for w in generated_weights(model).values():
        fan_out = w.shape[0] * w.shape[2] * w.shape[3]
        target = (2 / fan_out) ** 0.5
        if w.numel() >= 2000:
            assert w.std().item() == pytest.approx(target, rel=0.15)


def test_each_generated_kernel_starts_at_the_std_of_the_weight_it_replaces():
    # PyTorch's default conv init (the hourglass's): std 1/sqrt(3 fan_in), far from Kaiming
    # fan-out's sqrt(2 / fan_out) for these shapes.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Conv2d(64, 16, 1), nn.ReLU(), nn.Conv2d(16, 256, 1))
    before = [m.weight.std().item() for m in model if isinstance(m, nn.Conv2d)]
    rpg.convert(model, 20000, exclude=[])
    after = [m.weight.std().item() for m in model if isinstance(m, nn.Conv2d)]
    assert after == pytest.approx(before, rel=0.1)


def test_the_same_filter_in_two_layers_is_nearly_orthogonal():
    """Appendix B: permutation + reflection decorrelates what two layers read from one ring."""

    def cosines(index, sign):
        model = nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.Conv2d(64, 64, 3, bias=False))
        rpg.convert(model, 64 * 64 * 9, index=index, sign=sign, exclude=[])
        a, b = (m.weight.reshape(64, -1) for m in model)
        return nn.functional.cosine_similarity(a, b, dim=1).abs()

    rpg_cos = cosines("even", "random")
    assert rpg_cos.mean() < 0.06  # ~ sqrt(2/pi)/sqrt(576) = 0.033 for random filters
    # Without permutation or reflection the two layers are the same kernel: cosine 1.
    assert torch.allclose(cosines("sequential", "none"), torch.ones(64))


def test_state_dict_round_trip_is_exact_and_holds_no_index_map():
    torch.manual_seed(0)
    model = rpg.convert(small_resnet(), 4000, seed=1)
    model.train()
    model(torch.randn(8, 3, 16, 16))  # move the BN statistics off their defaults
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert not any(k.endswith(("idx", "signs")) for k in state)
    stored = sum(v.numel() for v in state.values() if torch.is_tensor(v))
    assert stored < rpg.rings(model)["global"].total / 10  # W, BN and the head: no maps

    fresh = rpg.convert(small_resnet(), 4000, seed=99)  # other seeds: the checkpoint's win
    fresh.load_state_dict(state)
    fresh.eval()
    assert torch.equal(fresh(x), model(x))


def test_loading_into_another_layout_is_refused():
    state = rpg.convert(small_resnet(), 4000).state_dict()
    other = rpg.convert(ResNet(10, (8, 16, 32, 64), stem="cifar", num_classes=10), 4000)
    with pytest.raises(RuntimeError, match="ring layout mismatch|size mismatch|Missing|Unexpected"):
        other.load_state_dict(state)


def test_materialize_gives_a_plain_model_with_equal_outputs():
    model = rpg.convert(torchvision.models.resnet18(num_classes=10), 50000).eval()
    x = torch.randn(2, 3, 32, 32)
    dense = rpg.materialize(model).eval()
    assert torch.equal(dense(x), model(x))
    assert all(type(m).__module__.split(".")[0] != "rpg" for m in dense.modules())
    assert type(dense.conv1) is nn.Conv2d
    assert not any("parametrizations" in k or "ring" in k for k in dense.state_dict())
    # The original is untouched: materialize must not strip the shared parametrized class.
    assert torch.equal(model(x), dense(x))
    plain = torchvision.models.resnet18(num_classes=10)
    plain.load_state_dict(dense.state_dict())  # loads into a model that never saw rpg


def test_block_scope_makes_one_ring_per_stage_and_splits_the_budget():
    model = rpg.convert(small_resnet(), 10000, scope="block")
    rings = rpg.rings(model)
    assert list(rings) == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    assert sum(r.size for r in rings.values()) == 10000
    # Proportional split: the last stage generates the most weights and gets the most ring.
    assert max(rings.values(), key=lambda r: r.size) is rings["layer4"]


def test_mapping_scope_shares_a_ring_between_chosen_layers_only():
    model = rpg.convert(small_resnet(), {"a": 500, "b": 700}, scope={"layer1.*": "a", "layer2.*": "b"})
    names = rpg.generated_layers(model)
    assert names and all(n.startswith(("layer1.", "layer2.")) for n in names)
    assert {r: ring.size for r, ring in rpg.rings(model).items()} == {"a": 500, "b": 700}


def test_converting_twice_or_with_bad_options_is_refused():
    model = rpg.convert(small_resnet(), 1000)
    with pytest.raises(ValueError, match="already converted"):
        rpg.convert(model, 1000)
    with pytest.raises(ValueError, match="unknown sign strategy"):
        rpg.convert(small_resnet(), 1000, sign="bogus")
    with pytest.raises(ValueError, match="scope"):
        rpg.convert(small_resnet(), 1000, scope="everywhere")


def test_timm_resnets_convert_and_materialize():
    import timm  # a test dependency: the API must serve timm's models as well as torchvision's

    model = timm.create_model("resnet18", pretrained=False, num_classes=10)
    rpg.convert(model, 100_000)
    assert "fc" not in rpg.generated_layers(model) and "conv1" in rpg.generated_layers(model)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(rpg.materialize(model).eval()(x), model(x))


# --- The fused generator: fast paths against the plain per-layer reference -------------------


def reference_weights(ring):
    """Each layer's weights the plain way: one index_select per layer, then sign and scale."""
    return [ring.slot(k) * ring.scales[k] for k in range(len(ring.sizes))]


def ring_gradient(ring, weights, targets):
    ring.weight.grad = None
    sum((w * t).sum() for w, t in zip(weights, targets, strict=True)).backward()
    return ring.weight.grad.clone()


@pytest.mark.parametrize(
    ("sizes", "n"),
    [
        ([30, 45, 7], 100),  # T < N: some elements unused (allow_oversized)
        ([30, 45, 7], 82),  # T = N: one permutation
        ([30, 45, 7], 41),  # T = 2N
        ([30, 45, 7], 25),  # T = 3N + 7
        ([300, 4096, 1152], 1000),  # T = 5N + 548
    ],
)
def test_the_fused_gradient_equals_the_per_layer_reference_for_even_maps(sizes, n):
    torch.manual_seed(0)
    scales = [0.5, 2.0, 1.25][: len(sizes)]
    ring = rpg.Ring(
        n, sizes, index="even", sign="random", index_seed=3, sign_seed=4, scales=scales, allow_oversized=True
    ).double()
    targets = [torch.randn(s, dtype=torch.double) for s in sizes]
    reference = reference_weights(ring)
    expected = ring_gradient(ring, reference, targets)
    grads = {}
    for grad_path in ("inverse", "index_add"):
        ring.grad_path = grad_path
        fused = ring.generate()
        assert all(torch.equal(a, b) for a, b in zip(fused, reference, strict=True))
        grads[grad_path] = ring_gradient(ring, fused, targets)
        assert (ring._plan.inv is not None) == (grad_path == "inverse")
    # On the CPU the inverse path writes its first row by index_copy_ where elements are read
    # more than once; the GPU gathers it. Both here:
    ring.grad_path = "inverse"
    fused = ring.generate()
    assert (ring._plan.first is not None) == (sum(sizes) > n)
    ring._plan.first = None
    assert torch.equal(ring_gradient(ring, fused, targets), grads["index_add"])
    # The reference sums layer by layer; the fused paths sum each element's readers in
    # position order: the same bits as each other, float rounding apart from the reference.
    assert torch.equal(grads["inverse"], grads["index_add"])
    assert torch.allclose(grads["inverse"], expected, rtol=1e-13, atol=1e-13)
    total = sum(sizes)
    assert ring.inverse().shape == (-(-total // n), n)
    assert ring.inverse().dtype == torch.int32


def test_auto_backs_a_small_ring_with_index_add_on_the_cpu_and_the_bits_do_not_change():
    """A small ring generating many weights (an inverse table of many rows) takes index_add
    on a CPU under "auto"; a ring with few rows keeps the table. Either way, the same bits."""
    from rpg.ring import AUTO_MAX_ROWS

    torch.manual_seed(0)
    sizes = [700, 1300]
    widest = -(-2000 // AUTO_MAX_ROWS)  # the smallest ring whose table has at most AUTO_MAX_ROWS rows
    for n, path in [(10, "index_add"), (widest, "inverse"), (widest - 1, "index_add")]:
        ring = rpg.Ring(n, sizes, index="even").double()
        targets = [torch.randn(s, dtype=torch.double) for s in sizes]
        assert ring.grad_path == "auto" and ring.grad_path_in_use == path, (n, len(ring.inverse()))
        auto = ring_gradient(ring, ring.generate(), targets)
        assert (ring._plan.inv is not None) == (path == "inverse")
        ring.grad_path = "inverse"
        assert torch.equal(auto, ring_gradient(ring, ring.generate(), targets))
        assert ring._plan.inv is not None


@pytest.mark.parametrize("index", ["uniform", "sequential"])
def test_the_fused_gradient_equals_the_reference_for_other_maps(index):
    torch.manual_seed(0)
    ring = rpg.Ring(50, [100, 37], index=index, scales=[0.3, 3.0]).double()
    ring.grad_path = "inverse"
    targets = [torch.randn(s, dtype=torch.double) for s in ring.sizes]
    got = ring_gradient(ring, ring.generate(), targets)
    expected = ring_gradient(ring, reference_weights(ring), targets)
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-14)
    # Sequential is balanced (an inverse table); uniform draws are not (index_add).
    assert (ring.inverse().numel() > 0) == (index == "sequential")


@pytest.mark.parametrize("grad_path", ["inverse", "index_add"])
def test_the_fused_generator_passes_gradcheck_and_gradgradcheck(grad_path):
    ring = rpg.Ring(7, [5, 12], index="even", scales=[0.5, 2.0]).double()
    ring.grad_path = grad_path
    w = torch.randn(7, dtype=torch.double, requires_grad=True)
    ring.inverse()
    plan = ring.plan()
    assert (plan.inv is not None) == (grad_path == "inverse")

    def generate(weight):
        return _Generate.apply(weight, plan, _Flag())

    assert torch.autograd.gradcheck(generate, (w,))
    assert torch.autograd.gradgradcheck(generate, (w,))


def train_steps(seed, steps=3, accumulate=1, index="even"):
    torch.manual_seed(seed)
    model = rpg.convert(small_resnet(), 3000, seed=seed, index=index)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        opt.zero_grad()
        for _ in range(accumulate):
            x = torch.randn(4, 3, 16, 16, generator=data)
            y = torch.randint(10, (4,), generator=data)
            nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.mark.slow
@pytest.mark.parametrize("index", ["even", "uniform"])
def test_cpu_training_is_deterministic(index):
    a, b = train_steps(0, index=index), train_steps(0, index=index)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if torch.is_tensor(p):
            assert torch.equal(p, q), name
    assert not torch.equal(rpg.rings(a)["global"].weight, rpg.rings(train_steps(1, index=index))["global"].weight)


def test_gradient_accumulation_sums_the_gradients_of_each_pass():
    torch.manual_seed(0)
    model = rpg.convert(small_resnet(), 3000).double()
    (ring,) = rpg.rings(model).values()
    x1, x2 = torch.randn(2, 3, 16, 16, dtype=torch.double), torch.randn(2, 3, 16, 16, dtype=torch.double)

    def grad_of(*xs):
        model.zero_grad(set_to_none=True)
        for x in xs:
            model(x).square().sum().backward()
        return ring.weight.grad.clone()

    g1, g2 = grad_of(x1), grad_of(x2)
    assert torch.equal(grad_of(x1, x2), g1 + g2)
    # Two forwards, then one backward of the sum, or two backwards: the same gradient.
    model.zero_grad(set_to_none=True)
    (model(x1).square().sum() + model(x2).square().sum()).backward()
    assert torch.allclose(ring.weight.grad, g1 + g2, rtol=1e-12)
    model.zero_grad(set_to_none=True)
    loss1, loss2 = model(x1).square().sum(), model(x2).square().sum()
    loss1.backward()
    loss2.backward()
    assert torch.allclose(ring.weight.grad, g1 + g2, rtol=1e-12)


def test_every_forward_sees_the_current_ring():
    torch.manual_seed(0)
    model = rpg.convert(small_resnet(), 3000)
    (ring,) = rpg.rings(model).values()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    before = model(x)
    model.train()
    model(x).square().sum().backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        after = model(x)
    with torch.inference_mode():
        assert torch.equal(model(x), after)
    assert not torch.equal(before, after)
    assert torch.equal(rpg.materialize(model).eval()(x), after)
    # An update autograd cannot see (`.data`) is seen by the next forward too.
    with torch.no_grad():
        ring.weight.data.mul_(2)
        doubled = model(x)
    assert not torch.equal(doubled, after)
    assert torch.equal(rpg.materialize(model).eval()(x), doubled)
    # Repeated forwards without a step give the same outputs, with or without autograd.
    assert torch.equal(model(x), doubled) and torch.equal(model(x), doubled)


def test_a_half_used_generation_survives_copies_moves_and_loads():
    torch.manual_seed(0)
    model = rpg.convert(small_resnet(), 3000, seed=1).eval()
    x = torch.randn(2, 3, 16, 16)
    expected = model(x).detach()
    first = rpg.generated_layers(model)[0]
    model.get_submodule(first).weight.sum().backward()  # a generation with autograd, one layer served
    assert rpg.rings(model)["global"]._generation is not None
    assert torch.equal(copy.deepcopy(model)(x), expected)
    assert torch.equal(rpg.materialize(model)(x), expected)
    ring = pickle.loads(pickle.dumps(rpg.rings(model)["global"]))  # a ring alone pickles too, its cache left behind
    assert ring._generation is None and torch.equal(ring.weight, rpg.rings(model)["global"].weight)

    other = rpg.convert(small_resnet(), 3000, seed=2).eval()
    other.get_submodule(first).weight.sum()  # the old maps' generation, half used
    other.load_state_dict(model.state_dict())
    assert torch.equal(other(x), expected)

    model.get_submodule(first).weight.sum()
    assert torch.allclose(model.double()(x.double()), expected.double(), atol=1e-5)
    assert rpg.rings(model)["global"]._plan.dtype == torch.double
    assert model(x.double()).dtype == torch.double


def test_a_layer_applied_twice_in_one_pass_gets_both_gradients():
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    model = nn.Sequential(conv, nn.ReLU(), conv)  # weight tying: one generated layer, used twice
    rpg.convert(model, 20, exclude=[])
    (ring,) = rpg.rings(model).values()
    x = torch.randn(1, 3, 5, 5)
    model(x).sum().backward()
    fused = ring.weight.grad.clone()
    ring.weight.grad = None
    dense = rpg.materialize(model)
    dense(x).sum().backward()
    expected = torch.zeros_like(ring.weight).index_add_(
        0, ring.idx.long(), dense[0].weight.grad.flatten() * ring.signs * ring.scales[0]
    )
    assert torch.allclose(fused, expected, rtol=1e-5, atol=1e-6)


def test_ring_std_sets_w_and_the_scales_but_not_the_initial_kernels():
    """At 1/8 of ResNet-18's widths the widest layer has 64 filters: the smallest layer std
    is sqrt(2/576), sqrt(8) times the official code's sqrt(2/4608), and "official" scales
    each layer up by as much. Either way each kernel starts where its layer's own would."""
    torch.manual_seed(0)
    base = small_resnet()
    torch.manual_seed(1)  # W is drawn from the global generator: the same draw for both
    smallest = rpg.convert(copy.deepcopy(base), 20_000)
    torch.manual_seed(1)
    official = rpg.convert(copy.deepcopy(base), 20_000, ring_std="official")
    w_small, w_official = (next(iter(rpg.rings(m).values())) for m in (smallest, official))
    assert w_official.std == pytest.approx(OFFICIAL_STD)
    assert w_small.std / w_official.std == pytest.approx(8**0.5, rel=0.03)
    assert min(w_official.scales) == pytest.approx(8**0.5, rel=0.03) and min(w_small.scales) == 1.0
    for name, kernel in generated_weights(smallest).items():
        torch.testing.assert_close(kernel, generated_weights(official)[name], rtol=1e-5, atol=1e-7)
    fixed = rpg.convert(copy.deepcopy(base), 20_000, ring_std=0.5)
    assert next(iter(rpg.rings(fixed).values())).std == 0.5


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "largest", None])
def test_ring_std_refuses_what_is_not_a_rule_or_a_positive_std(bad):
    with pytest.raises(ValueError, match="ring_std must be"):
        rpg.convert(small_resnet(), 20_000, ring_std=bad)
