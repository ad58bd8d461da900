"""Table 5: the depth and normal errors, the four variants of a reused SharpNet sub-network,
the generated scenes, and the 2D-3D-S reader."""

import math

import numpy as np
import pytest
import torch

import rpg
from suite import archs, methods, tasks
from suite.data import s3dis, scenes
from suite.errors import UsageError
from suite.run import runner
from suite.suites import spec
from suite.tasks import geometry

TASK = tasks.get("s3dis")


def pack(depth, normals):
    """(N, 4, H, W) targets from (N, H, W) depths and (N, 3, H, W) normals."""
    return torch.cat([torch.as_tensor(depth, dtype=torch.float32)[:, None], torch.as_tensor(normals).float()], 1)


def test_the_errors_on_hand_computed_pixels():
    # Three pixels in a row: depth 1 m predicted 2 m; 3 m exact; missing, wildly wrong.
    # Normals: y predicted as x (90 degrees off); z exact; missing.
    depth = [[[1.0, 3.0, 0.0]]]
    normals = [[[[0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]]]
    target = pack(depth, normals)
    prediction = torch.tensor(
        [[[[math.log(2), math.log(3), 9.0]], [[5.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]], [[0.0, 7.0, 1.0]]]]
    )
    got = geometry.finish(geometry.sums(prediction, target))
    assert got["depth_rmse"] == pytest.approx(100 * math.sqrt((1**2 + 0**2) / 2))  # relative errors 1 and 0
    assert got["depth_rmse_m"] == pytest.approx(math.sqrt((1**2 + 0**2) / 2))
    # A predicted normal's length does not count: (5, 0, 0) is x. Squared differences 2 and 0 over 2 x 3 components.
    assert got["normal_rmse"] == pytest.approx(100 * math.sqrt(2 / 6))
    assert got["normal_angle"] == pytest.approx((90 + 0) / 2)


def test_a_uniform_angular_error_gives_its_component_rmse_and_batches_add_up():
    angle = math.radians(40)
    target = pack(torch.ones(4, 2, 2), torch.tensor([0.0, 0.0, 1.0])[None, :, None, None].expand(4, 3, 2, 2))
    tilted = torch.tensor([math.sin(angle), 0.0, math.cos(angle)])[None, :, None, None].expand(4, 3, 2, 2)
    prediction = torch.cat([torch.zeros(4, 1, 2, 2), tilted], 1)
    whole = geometry.finish(geometry.sums(prediction, target))
    assert whole["normal_rmse"] == pytest.approx(100 * math.sqrt((2 - 2 * math.cos(angle)) / 3))
    assert whole["normal_angle"] == pytest.approx(40, abs=1e-3)
    assert whole["depth_rmse"] == pytest.approx(0, abs=1e-5)
    parts = [geometry.sums(prediction[i : i + 1], target[i : i + 1]) for i in range(4)]
    summed = {k: sum(p[k] for p in parts) for k in parts[0]}
    assert geometry.finish(summed) == pytest.approx(whole)


def test_the_loss_is_zero_when_exact_and_blind_to_missing_pixels():
    data = scenes.generate(4, 16, seed=3)
    target = pack(data["depth"], data["normals"])
    exact = torch.cat([target[:, :1].clamp_min(1e-3).log(), 3 * target[:, 1:]], 1)
    assert geometry.loss(exact, target) == pytest.approx(0, abs=1e-5)
    depth_ok, normal_ok = geometry.masks(target)
    assert (~depth_ok).any(), "the generated scenes have holes"
    noise = torch.randn_like(exact)
    moved = exact + noise * (~depth_ok & ~normal_ok)[:, None]
    assert geometry.loss(moved, target) == pytest.approx(0, abs=1e-5)
    assert geometry.loss(exact + noise, target) > 0.1


def test_generated_scenes_are_planar_facing_the_camera_with_holes_in_both_targets():
    data = scenes.generate(6, 32, seed=0)
    again = scenes.generate(6, 32, seed=0)
    assert all(np.array_equal(data[k], again[k]) for k in data)
    size = 32
    centres = (np.arange(size) + 0.5) / size - 0.5
    u, v = np.meshgrid(centres, centres)
    rays = np.stack([u / scenes.FOCAL, -v / scenes.FOCAL, np.ones_like(u)])  # camera frame, z = 1
    for depth, normals in zip(data["depth"], data["normals"], strict=True):
        valid = depth > 0
        assert np.array_equal(valid, np.linalg.norm(normals, axis=0) > 0)  # holes in both
        assert np.allclose(np.linalg.norm(normals[:, valid], axis=0), 1, atol=1e-5)
        points = rays * depth  # back-projected: depth is the camera-frame z
        offsets = (normals * points).sum(0)[valid]
        assert (offsets < 0).all()  # every surface faces the camera
        # Pixels sharing a normal lie on a few planes (the room's, and boxes' parallel faces).
        keys = np.round(normals[:, valid].T, 4)
        for key in np.unique(keys, axis=0):
            same = np.all(keys == key, axis=1)
            assert len(np.unique(np.round(offsets[same], 2))) <= 4


def net(width=1 / 8):
    return archs.Net(archs.get("sharpnet"), width, TASK.in_channels, TASK.num_classes)


def build(method, budget_of=None):
    m = methods.get(method)
    return methods.build(m, net(), methods.get(budget_of or method).natural(net()), seed=0)


def test_the_four_variants_share_as_table_5_says_at_one_subnetworks_parameters():
    noreuse, reuse, reuse_bn = (build(m) for m in ("noreuse", "reuse", "reuse-bn"))
    rpg_ = build("rpg", "reuse-bn")
    count = {k: b.ledger["backbone"] for k, b in [("no", noreuse), ("re", reuse), ("bn", reuse_bn), ("rpg", rpg_)]}
    first = reuse_bn.model.subnetworks[0]
    bn = sum(p.numel() for m in first.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters())
    assert count["no"] == count["re"] and count["bn"] == count["rpg"] == count["no"] + bn
    x = torch.randn(2, 3, 32, 32)
    assert noreuse.model.eval()(x).shape == (1, 2, 4, 32, 32)
    for built in (reuse, reuse_bn, rpg_):
        assert built.model.eval()(x).shape == (2, 2, 4, 32, 32)
    assert len(reuse.model.subnetworks) == 1  # one module, applied twice
    a, b = reuse_bn.model.subnetworks
    assert a.enc2.conv1.weight is b.enc2.conv1.weight and a.enc2.bn1.weight is not b.enc2.bn1.weight
    a, b = rpg_.model.subnetworks
    # Block-level rings: the two copies of a block read one ring, through different permutations and signs.
    rings = rpg.plan(rpg_.model, archs.get("sharpnet").rpg_scope())
    assert rings["enc2"] == ["subnetworks.0.enc2.conv1", "subnetworks.0.enc2.conv2", "subnetworks.0.enc2.skip.0"] + [
        "subnetworks.1.enc2.conv1",
        "subnetworks.1.enc2.conv2",
        "subnetworks.1.enc2.skip.0",
    ]
    assert "stem.0" not in rpg.generated_layers(rpg_.model)  # outside every sub-network: dense
    rings_of = rpg.rings(rpg_.model)
    assert rings_of["enc2"].size == sum(a.enc2.get_submodule(n).weight.numel() for n in ("conv1", "conv2", "skip.0"))
    assert not torch.equal(a.enc2.conv1.weight, b.enc2.conv1.weight)
    assert a.enc2.bn1.weight is not b.enc2.bn1.weight


def test_the_suite_matches_rpg_to_reuse_with_new_bn():
    cells = {c.method: c.budget for c in runner.expand(spec.load("multitask"), "smoke", seeds=1)}
    scaled = archs.Net(archs.get("sharpnet"), TASK.profiles["smoke"].width_scale, 3, 4)
    assert cells["rpg"] == cells["reuse-bn"] == methods.get("reuse-bn").natural(scaled)
    assert cells["noreuse"] == cells["reuse"] < cells["rpg"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return s3dis.write_generated(tmp_path_factory.mktemp("s3dis") / "s3dis", per_area=4, size=24)


def test_the_reader_decodes_depth_and_normals_and_holds_out_area_5_and_whole_rooms(release):
    found = s3dis.frames(release)
    assert sorted(found) == ["area_1", "area_2", "area_5a"] and all(len(v) == 4 for v in found.values())
    carved = s3dis.carve(found)
    assert {a for a, _ in carved["test"]} == {"area_5a"} and len(carved["test"]) == 4
    rooms = {k: {(a, s3dis.room(f)) for a, f in v} for k, v in carved.items()}
    assert rooms["val"] and not rooms["val"] & rooms["train"]
    splits = s3dis.splits(release, torch.device("cpu"), workers=0, size=24)
    x, y = splits.head("test", 4)
    assert x.shape == (4, 3, 24, 24) and y.shape == (4, 4, 24, 24)
    truth = scenes.generate(12, 24, seed=0)  # what write_generated wrote, area_5a's being the last four
    depth, normals = truth["depth"][8:], truth["normals"][8:]
    torch.testing.assert_close(y[:, 0], torch.from_numpy(depth), atol=1 / 1024, rtol=0)
    valid = torch.from_numpy(depth > 0)
    assert torch.equal(valid, geometry.masks(y)[1])  # missing normals decode as missing
    torch.testing.assert_close(y[:, 1:] * valid[:, None], torch.from_numpy(normals), atol=1 / 127, rtol=0)
    torch.testing.assert_close(x + 0.5, torch.from_numpy(truth["images"][8:]), atol=1 / 255, rtol=0)


def test_missing_or_partial_data_names_the_layout(tmp_path):
    with pytest.raises(UsageError, match="s3dis needs --data-root"):
        s3dis.locate(None)
    with pytest.raises(UsageError, match="area_<k>/data"):
        s3dis.locate(str(tmp_path))
    only_training = s3dis.write_generated(tmp_path / "s3dis", per_area=2, size=8)
    for frame in (only_training / "area_5a" / "data" / "rgb").iterdir():
        frame.unlink()
    with pytest.raises(UsageError, match="needs area 5"):
        s3dis.carve(s3dis.frames(s3dis.locate(str(tmp_path))))


def test_sharpnets_polynomial_decay_reaches_zero_at_the_last_step():
    from suite.training import train

    recipe = TASK.profiles["full"]
    assert recipe.schedule == "poly"
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=recipe.lr)
    steps = 5
    scheduler = train._scheduler(optimizer, recipe, steps)
    total = recipe.epochs * steps
    for k in range(1, total + 1):
        optimizer.step()
        scheduler.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(recipe.lr * (1 - k / total) ** 0.9, abs=1e-12)
    assert optimizer.param_groups[0]["lr"] == 0
