"""One contract for every method the registry holds (suite.methods.base.Method says what it
promises). The tests iterate the registry itself, plugins included, so a method registered
tomorrow is held to the contract without touching this file:

- its setting meets every budget the built-in suites ask of it, on their networks as their
  smoke profiles shrink them (5% to 100% of a small network for a method no suite runs),
  within the ledger's tolerance, each budget in its reach; a budget beyond its reach is
  refused in one line naming the range;
- the ledger counts exactly the scalars the built model stores and trains: every counted
  parameter is in its state dict and gets a gradient, and nothing else trains;
- it builds, runs a forward and a backward on a small input, and is deterministic given
  its seed;
- its deployed form (rpg.materialize) computes what the model computes, with no
  parametrization left.

A method whose budget is met only by training (the pruning methods, learned SSN groups,
int8) is held here on its build path: the model it builds and the model its ledger counts
(``Method.pruned``). Their training is tested in test_imp, test_knapsack and
test_field_methods. Networks are the smallest of each family, so the file runs in about a
minute.
"""

from __future__ import annotations

import functools
import json
import sys
import types
import typing

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import rpg
from suite import archs, methods
from suite.counting import solver
from suite.counting.ledger import ledger
from suite.errors import BudgetError, UsageError
from suite.suites import spec
from suite.suites.budgets import Budgets
from suite.tasks.base import Recipe
from suite.training import train

methods.METHODS.load_plugins()

# The smallest network of each family: (arch, width, input channels, classes, input side).
SMALL = [
    ("resnet10-cifar", 0.125, 3, 10, 16),
    ("mdeq-tiny", 0.25, 3, 10, 16),
    ("hourglass-2x", 1 / 16, 3, 16, 64),
    ("sharpnet", 0.25, 3, 4, 32),
]
# Budgets as shares of a small network's plain backbone (fashion's 5/15/50%, IMP's 30%, the
# ceiling's 100%): for a method no suite runs, and for the tests below the first.
SHARES = (0.05, 0.15, 0.3, 0.5, 1.0)
NAMES = sorted(methods.METHODS)


def small(method: methods.Method) -> tuple[archs.Net, int]:
    """The first small network the method runs on, and its input side."""
    for arch, width, channels, classes, side in SMALL:
        net = archs.Net(archs.get(arch), width, channels, classes)
        try:
            method.reach(net)
        except UsageError:
            continue
        return net, side
    raise AssertionError(f"{method.name} runs on none of {[s[0] for s in SMALL]}")


@functools.cache
def asked() -> dict[str, list[tuple[archs.Net, int]]]:
    """Per method, every (network, budget) the built-in suites ask of it at their smoke
    profile: the suites' own budgets on their networks, shrunk as a smoke run shrinks them
    (a paper-scale network at full width would make this file take minutes)."""
    out: dict[str, set] = {}
    for path in spec.builtin().values():
        suite = spec.load(str(path))
        for e in suite.experiments:
            counts = Budgets(e, e.profile("smoke"), e.overrides)
            for arch, method, budget in counts.runs():
                out.setdefault(method, set()).add((counts.net(arch), counts.count(arch, budget)))
    return {m: sorted(asks, key=lambda a: (a[0].arch.name, a[1])) for m, asks in out.items()}


def budgets(method: methods.Method, net: archs.Net) -> list[int]:
    """Shares of the small network's plain backbone in the method's reach (or its natural size)."""
    lo, hi = method.reach(net)
    if lo == hi:  # no knob: its natural size
        return [lo]
    return [b for b in (round(s * methods.plain_backbone(net)) for s in SHARES) if lo <= b <= hi]


def middle(method: methods.Method, net: archs.Net) -> int:
    inside = budgets(method, net)
    assert inside, f"{method.name}: no budget the suites ask lies in its reach {method.reach(net)}"
    return inside[len(inside) // 2]


def example(net: archs.Net, side: int) -> torch.Tensor:
    return torch.randn(2, net.in_channels, side, side, generator=torch.Generator().manual_seed(0))


def scalar(out) -> torch.Tensor:
    """A scalar depending on every output (a network may return a tuple or dict of them)."""
    if isinstance(out, torch.Tensor):
        return out.float().square().mean()
    parts = out.values() if isinstance(out, dict) else out
    return sum(scalar(p) for p in parts)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_setting_meets_every_budget_the_suites_ask(name):
    method = methods.get(name)
    net, _ = small(method)
    asks = asked().get(name) or [(net, b) for b in budgets(method, net)]
    for where, budget in asks:
        lo, hi = method.reach(where)
        assert 0 < lo <= budget <= hi, (name, where, budget)  # the suite's budgets lie in its reach
        built = methods.build(method, where, budget, seed=0)
        assert abs(built.deviation) <= solver.TOLERANCE, (name, where, budget, built.ledger["backbone"])
    lo, hi = method.reach(net)
    with pytest.raises(BudgetError, match=rf"{name} cannot reach .* it reaches .*\({lo}\) to .*\({hi}\)"):
        methods.build(method, net, hi + max(1, hi // 10), seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_the_ledger_counts_what_the_model_stores_and_trains(name):
    method = methods.get(name)
    net, side = small(method)
    built = methods.build(method, net, middle(method, net), seed=0)
    model = method.pruned(built.model, built.setting)  # what the ledger counted
    model.train()
    scalar(model(example(net, side))).backward()
    stored = {id(t) for t in model.state_dict(keep_vars=True).values()}
    masks = dict(model.named_buffers())
    counted = 0
    for pname, p in model.named_parameters():  # each shared tensor once
        if not p.requires_grad:
            continue
        assert id(p) in stored, f"{name}: {pname} trains but is not stored"
        assert p.grad is not None, f"{name}: {pname} is counted but no gradient reaches it"
        if getattr(p, "ledger_proxy", False):
            continue
        mask = masks.get(pname.removesuffix("_orig") + "_mask") if pname.endswith("_orig") else None
        counted += int(mask.count_nonzero()) if mask is not None else p.numel()
    assert ledger(model, net.arch.head)["learned"] == counted
    assert built.ledger["backbone"] == ledger(model, net.arch.head)["backbone"]
    # What the optimizer steps is exactly the trainable parameters (weight decay or not).
    optimizer = train._optimizer(model, Recipe(epochs=1, batch_size=2, lr=0.1))
    stepped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert stepped == {id(p) for p in model.parameters() if p.requires_grad}


@pytest.mark.parametrize("name", NAMES)
def test_builds_runs_and_is_deterministic_given_its_seed(name):
    method = methods.get(name)
    net, side = small(method)
    budget = middle(method, net)
    first, second = (methods.build(method, net, budget, seed=3) for _ in range(2))
    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
        assert same, f"{name}: {key} differs between two builds with seed 3"
    x = example(net, side)
    first.model.eval(), second.model.eval()
    with torch.no_grad():
        assert torch.equal(scalar(first.model(x)), scalar(second.model(x)))
    first.model.train()
    scalar(first.model(x)).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in first.model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_the_deployed_form_computes_what_the_model_computes(name):
    method = methods.get(name)
    net, side = small(method)
    model = methods.build(method, net, middle(method, net), seed=0).model.eval()
    deployed = rpg.materialize(model).eval()
    assert not any(parametrize.is_parametrized(m) for m in deployed.modules())
    assert not rpg.rings(deployed)
    x = example(net, side)
    with torch.no_grad():
        torch.testing.assert_close(scalar(deployed(x)), scalar(model(x)), rtol=1e-4, atol=1e-5)
    assert ledger(deployed, net.arch.head)["dense"] == sum(p.numel() for p in deployed.parameters())
    assert isinstance(deployed, nn.Module)


@pytest.mark.parametrize("name", NAMES)
def test_the_setting_is_the_json_its_typed_dict_declares(name):
    """A setting is recorded as JSON and read back by ``rebuild``: what ``setting`` (and the
    method's knobs, by ``tuned``) gives is JSON-able, and of the TypedDict it declares."""
    method = methods.get(name)
    net, _ = small(method)
    setting = methods.build(method, net, middle(method, net), seed=0).setting
    defined = type(method).setting
    declared = typing.get_type_hints(defined, vars(sys.modules[defined.__module__]))["return"]
    assert json.loads(json.dumps(setting)) == json.loads(json.dumps(setting, sort_keys=True))  # JSON-able
    if not typing.is_typeddict(declared):  # a plugin may return a plain dict
        assert declared is dict and isinstance(setting, dict), (name, declared)
        return
    assert declared.__required_keys__ <= set(setting) <= declared.__required_keys__ | declared.__optional_keys__
    for key, wanted in typing.get_type_hints(declared).items():
        if key in setting:
            plain = typing.get_origin(wanted)
            kind = wanted if plain in (None, types.UnionType, typing.Union) else plain
            assert isinstance(setting[key], kind), (name, key, setting[key], wanted)
