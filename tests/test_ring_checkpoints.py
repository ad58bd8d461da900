"""Checkpoints that cannot silently change meaning, and whole-model pickles."""

import io
import pickle
import re
import warnings

import pytest
import torch
from torch import nn

import rpg
from baselines.plain import ResNet
from rpg import maps

EXTRA = "conv1.parametrizations.weight.0.ring._extra_state"  # the global ring's, under the stem conv


def small_resnet() -> ResNet:
    return ResNet(18, (8, 16, 32, 64), stem="cifar", num_classes=10)


def trained(seed: int = 0) -> ResNet:
    torch.manual_seed(seed)
    model = rpg.convert(small_resnet(), 4000, seed=seed)
    model.train()
    model(torch.randn(8, 3, 16, 16)).square().mean().backward()
    with torch.no_grad():
        rpg.rings(model)["global"].weight.sub_(rpg.rings(model)["global"].weight.grad)
    return model.eval()


def saved(state: dict) -> dict:
    """``state`` through torch.save and a weights_only torch.load, as a checkpoint travels."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_checkpoint_holds_the_fingerprint_of_its_maps_and_reloads_exactly():
    model = trained()
    (ring,) = rpg.rings(model).values()
    state = saved(model.state_dict())
    extra = state[EXTRA]
    assert extra["fingerprint"] == maps.fingerprint(ring.idx, ring.signs)
    assert re.fullmatch("[0-9a-f]{16}", extra["fingerprint"])
    assert extra["torch"] == str(torch.__version__) and extra["size"] == 4000
    fresh = rpg.convert(small_resnet(), 4000, seed=7).eval()  # other seeds, other maps: the checkpoint's win
    assert rpg.rings(fresh)["global"].fingerprint() != extra["fingerprint"]
    fresh.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(fresh(x), model(x))
    assert saved(fresh.state_dict())[EXTRA] == extra  # and saves the same again


def change_even(monkeypatch):
    even = maps.INDEX["even"]

    def swapped(sizes, n, gen):  # a generator that draws one transposition differently
        idx = even(sizes, n, gen)
        first = int((idx != idx[0]).nonzero()[0])
        idx[[0, first]] = idx[[first, 0]]
        return idx

    monkeypatch.setitem(maps.INDEX, "even", swapped)


def change_signs(monkeypatch):
    random = maps.SIGN["random"]
    monkeypatch.setitem(maps.SIGN, "random", lambda sizes, gen: random(sizes, gen) * torch.tensor(-1, dtype=torch.int8))


@pytest.mark.parametrize("change", [change_even, change_signs])
def test_a_checkpoint_this_torch_would_regenerate_other_maps_for_is_refused(monkeypatch, change):
    state = saved(trained().state_dict())
    state[EXTRA]["torch"] = "2.13.0"  # written by an older torch...
    change(monkeypatch)  # ...whose generator drew differently from this one's
    fresh = rpg.convert(small_resnet(), 4000, seed=7)
    (ring,) = rpg.rings(fresh).values()
    idx, signs, seeds = ring.idx.clone(), ring.signs.clone(), (ring.index_seed, ring.sign_seed)
    message = (
        rf"ring 'global': the checkpoint's maps \(fingerprint {state[EXTRA]['fingerprint']}, built by torch 2\.13\.0\) "
        rf"differ from the maps torch {re.escape(str(torch.__version__))} regenerates from the same seeds .* "
        "would load as a different network"
    )
    with pytest.raises(RuntimeError, match=message) as refused:
        fresh.load_state_dict(state)
    assert "\n" not in str(refused.value)
    # Refused before anything changed: the ring still has its own maps and seeds.
    assert torch.equal(ring.idx, idx) and torch.equal(ring.signs, signs)
    assert (ring.index_seed, ring.sign_seed) == seeds


def test_a_checkpoint_from_before_the_fingerprint_loads_quietly():
    model = trained()
    state = saved(model.state_dict())
    del state[EXTRA]["fingerprint"], state[EXTRA]["torch"], state[EXTRA]["size"]
    fresh = rpg.convert(small_resnet(), 4000, seed=7).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(fresh(x), model(x))


def test_a_checkpoint_loaded_into_a_meta_model_is_checked_too(monkeypatch):
    model = trained()
    state = saved(model.state_dict())
    with torch.device("meta"):
        fresh = rpg.convert(small_resnet(), 4000, seed=7)
    fresh.load_state_dict(saved(model.state_dict()), assign=True)  # the usual way to load a model built on meta
    fresh.eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(fresh(x), model(x))

    with torch.device("meta"):
        late = rpg.convert(small_resnet(), 4000, seed=7)
    with warnings.catch_warnings():  # torch's: copying into meta tensors is a no-op
        warnings.simplefilter("ignore", UserWarning)
        late.load_state_dict(state)  # W stays on meta: the maps are checked once they exist
    assert rpg.rings(late)["global"].weight.is_meta
    assert rpg.rings(late)["global"].fingerprint() == state[EXTRA]["fingerprint"]
    change_even(monkeypatch)
    with pytest.raises(RuntimeError, match="would load as a different network"):
        late.to_empty(device="cpu")


def test_a_converted_model_pickles_and_torch_saves_whole_and_round_trips_exactly():
    model = trained()
    x = torch.randn(2, 3, 16, 16)
    copy = pickle.loads(pickle.dumps(model))
    assert torch.equal(copy(x), model(x))
    assert list(copy.state_dict()) == list(model.state_dict())
    (ring,) = rpg.rings(copy).values()
    assert torch.equal(ring.idx, rpg.rings(model)["global"].idx)  # the maps travel in a pickle
    # One ring still, read by every layer, and training reaches it.
    assert sum(p.numel() for p in copy.parameters()) == sum(p.numel() for p in model.parameters())
    assert rpg.generated_layers(copy) == rpg.generated_layers(model)
    copy.train()
    copy(x).square().mean().backward()
    assert ring.weight.grad.abs().sum() > 0
    assert torch.equal(pickle.loads(pickle.dumps(copy)).eval()(x), copy.eval()(x))  # and pickles again

    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    assert torch.equal(torch.load(buffer, weights_only=False)(x), model(x))


def in_layout(w: torch.Tensor, ring: rpg.Ring, layout: str) -> torch.Tensor:
    """A per-element tensor of today's W (blocked order) in an older layout's order."""
    seed_idx = maps.INDEX[ring.index](ring.sizes, ring.size, maps.generator(ring.index_seed))
    _, order = maps.blocked_order(seed_idx, ring.size)
    seed = torch.empty_like(w)
    seed[order] = w  # W_blocked = W_seed[order]
    return seed if layout == "seed" else seed[maps.LAYOUTS[layout](seed_idx, ring.size)[1]]


def legacy(state: dict, ring: rpg.Ring, layout: str) -> dict:
    """``state`` as a checkpoint of an older layout: "seed" (from before layouts were written:
    W in the seeds' order, no layout key) or "first-read" (maps.first_read_order)."""
    state = {k: v.clone() if torch.is_tensor(v) else dict(v) for k, v in state.items()}
    key = EXTRA.replace("_extra_state", "weight")
    state[key] = in_layout(state[key], ring, layout)
    old_idx = maps.INDEX[ring.index](ring.sizes, ring.size, maps.generator(ring.index_seed))
    if layout == "seed":
        del state[EXTRA]["layout"]
    else:
        old_idx = maps.LAYOUTS[layout](old_idx, ring.size)[0]
        state[EXTRA]["layout"] = layout
    state[EXTRA]["fingerprint"] = maps.fingerprint(old_idx, ring.signs)
    return state


def sgd_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()
    model(torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(5))).square().mean().backward()
    optimizer.step()


@pytest.mark.parametrize("layout", ["seed", "first-read"])
def test_training_resumed_from_an_older_layout_with_its_optimizer_state_goes_on_as_before(layout):
    model = trained().train()
    (ring,) = rpg.rings(model).values()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sgd_step(model, optimizer)
    old = legacy(saved(model.state_dict()), ring, layout)
    old_optimizer = optimizer.state_dict()
    old_optimizer["state"] = dict(old_optimizer["state"])
    position = [p is ring.weight for p in model.parameters()].index(True)
    momentum = old_optimizer["state"][position]["momentum_buffer"]
    old_optimizer["state"][position] = {"momentum_buffer": in_layout(momentum, ring, layout)}

    fresh = rpg.convert(small_resnet(), 4000, seed=7).train()
    fresh.load_state_dict(old)
    resumed = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    resumed.load_state_dict(old_optimizer)
    rpg.reorder_optimizer(fresh, resumed)
    sgd_step(model, optimizer)
    sgd_step(fresh, resumed)
    assert torch.equal(rpg.rings(fresh)["global"].weight, ring.weight)
    rpg.reorder_optimizer(fresh, resumed)  # applied once: a second call changes nothing
    assert torch.equal(resumed.state_dict()["state"][position]["momentum_buffer"], momentum_of(optimizer, ring))


def momentum_of(optimizer: torch.optim.Optimizer, ring: rpg.Ring) -> torch.Tensor:
    return optimizer.state[ring.weight]["momentum_buffer"]


@pytest.mark.parametrize("layout", ["seed", "first-read"])
def test_a_checkpoint_of_an_older_layout_loads_as_the_same_network(layout):
    model = trained()
    (ring,) = rpg.rings(model).values()
    state = saved(model.state_dict())
    assert state[EXTRA]["layout"] == "blocked"
    old = legacy(state, ring, layout)
    assert not torch.equal(old[EXTRA.replace("_extra_state", "weight")], ring.weight.detach())
    fresh = rpg.convert(small_resnet(), 4000, seed=7).eval()
    fresh.load_state_dict(old)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(fresh(x), model(x))
    assert saved(fresh.state_dict())[EXTRA] == state[EXTRA]  # saved again in today's layout


@pytest.mark.parametrize("layout", ["seed", "first-read"])
def test_a_checkpoint_of_an_older_layout_is_still_checked_against_its_own_maps(monkeypatch, layout):
    model = trained()
    old = legacy(saved(model.state_dict()), rpg.rings(model)["global"], layout)
    change_even(monkeypatch)
    fresh = rpg.convert(small_resnet(), 4000, seed=7)
    (ring,) = rpg.rings(fresh).values()
    idx, seeds = ring.idx.clone(), (ring.index_seed, ring.sign_seed)
    with pytest.raises(RuntimeError, match="would load as a different network"):
        fresh.load_state_dict(old)
    assert torch.equal(ring.idx, idx) and (ring.index_seed, ring.sign_seed) == seeds  # refused before any change
