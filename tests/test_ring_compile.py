"""torch.compile, TorchScript, and a model that is itself one conv."""

import warnings

import pytest
import torch
import torch._dynamo.testing
import torchvision
from torch import nn

import rpg
from baselines.plain import ResNet


def small_resnet() -> nn.Module:
    torch.manual_seed(0)
    return rpg.convert(ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10), 3000)


def trainer(model: nn.Module, call):
    """One SGD step per call on the next fixed batch, through ``call`` (the model, or it compiled)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = torch.Generator().manual_seed(0)

    def step() -> torch.Tensor:
        x, y = torch.randn(4, 3, 16, 16, generator=data), torch.randint(10, (4,), generator=data)
        loss = nn.functional.cross_entropy(call(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    return step


@pytest.mark.slow
def test_torch_compile_trains_a_converted_resnet_without_graph_breaks_or_recompiles():
    """aot_eager: dynamo's graph capture and AOT autograd's backward, as inductor gets them,
    without inductor's C++ build (minutes on this CPU; it trains the same way)."""
    torch._dynamo.reset()
    model = small_resnet()
    explained = torch._dynamo.explain(model)(torch.randn(4, 3, 16, 16))
    assert explained.graph_break_count == 0 and explained.graph_count == 1

    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    step = trainer(model, torch.compile(model, backend=counter, fullgraph=True))
    losses = [step(), step(), step()]
    assert counter.frame_count == 1  # steps 2 and 3 ran the first step's graph: no recompile

    eager = small_resnet()
    eager_step = trainer(eager, eager)
    expected = [eager_step() for _ in range(3)]
    assert torch.allclose(torch.stack(losses), torch.stack(expected), rtol=1e-4)
    ring, eager_ring = rpg.rings(model)["global"], rpg.rings(eager)["global"]
    assert not torch.equal(ring.weight, rpg.rings(small_resnet())["global"].weight)  # it trained
    assert torch.allclose(ring.weight, eager_ring.weight, atol=1e-5)
    assert torch.allclose(ring.weight.grad, eager_ring.weight.grad, rtol=1e-3, atol=1e-5)
    # The eager cache is untouched by compiled passes: eager forwards after them agree.
    model.train(), eager.train()
    x = torch.randn(4, 3, 16, 16)
    assert torch.allclose(model(x), eager(x), rtol=1e-3, atol=1e-3)


def test_torchscript_is_refused_with_what_to_do_and_the_materialized_model_scripts():
    model = rpg.convert(torchvision.models.resnet18(num_classes=10), 50_000).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
        with pytest.raises(RuntimeError, match=r"script rpg\.materialize\(model\)"):
            torch.jit.script(model)
        scripted = torch.jit.script(rpg.materialize(model).eval())
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(scripted(x), model(x), atol=1e-6)


def test_a_model_that_is_one_conv_is_converted_listed_and_materialized():
    conv = nn.Conv2d(3, 4, 3)
    rpg.convert(conv, 50, exclude=[])
    assert rpg.generated_layers(conv) == [""]  # the root, as named_modules names it
    assert list(rpg.rings(conv)) == ["global"]
    x = torch.randn(1, 3, 5, 5)
    assert torch.equal(rpg.materialize(conv)(x), conv(x))
