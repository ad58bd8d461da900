"""Each measured thing is measured once: cells of one shape carry one measurement, byte for
byte, and say whose; networks of different shapes never share one."""

import json

import pytest

from suite import cli

SUITE = """name = "shapes"
[[experiment]]
name = "shapes"
task = "digits"
arch = "resnet18-cifar"
width = 0.25
methods = ["rpg", "rpg-perm-only", "plain", "plain@100%"]
budgets = ["20K"]
seeds = 2
"""


@pytest.mark.slow
def test_cells_of_one_shape_carry_one_measurement_and_other_shapes_their_own(tmp_path):
    suite = tmp_path / "shapes.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    args = ["--suite", str(suite), "--profile", "smoke", "--out", str(out), "--no-progress", "--no-open"]
    assert cli.main(args) == 0
    found = {}
    for path in (out / "records").glob("*.json"):
        r = json.loads(path.read_text())
        found[(r["config"]["method"], r["config"]["budget"], r["config"]["seed"])] = r
    (full,) = {b for m, b, _ in found if m == "plain" and b > 20_000}

    def deployed(r):
        return json.dumps([r["latency"]["deployed"], r["flops"], r["memory"]["inference"], r["onnx"]], sort_keys=True)

    def training(r):
        return json.dumps([r["latency"]["training"], r["memory"]["train_step"]], sort_keys=True)

    first, second = found[("rpg", 20_000, 0)], found[("rpg", 20_000, 1)]
    # Seeds of one method at one budget: one network shape in both forms, measured once.
    assert first["measured_by"] == {"deployed": first["key"], "training": first["key"]}
    assert second["measured_by"] == {"deployed": first["key"], "training": first["key"]}
    assert deployed(second) == deployed(first) and training(second) == training(first)
    assert second["metrics"] != first["metrics"] or second["key"] != first["key"]  # accuracy stays its own
    # Another ring (no signs): the same dense network deployed, another generator in training.
    perm = found[("rpg-perm-only", 20_000, 0)]
    assert perm["measured_by"] == {"deployed": first["key"], "training": perm["key"]}
    # The plain network at its natural size deploys RPG's dense network too; shrunk to 20K it does not.
    natural, shrunk = found[("plain", full, 0)], found[("plain", 20_000, 0)]
    assert natural["measured_by"]["deployed"] == first["key"] and natural["measured_by"]["training"] == natural["key"]
    assert shrunk["measured_by"] == {"deployed": shrunk["key"], "training": shrunk["key"]}
    assert shrunk["flops"] != first["flops"]
    # Every measurement is kept once, by shape, for a rerun to reuse.
    assert len(list((out / "measurements").glob("*.json"))) == len(
        {r["measured_by"]["deployed"] for r in found.values()}
    ) + len({r["measured_by"]["training"] for r in found.values()})
