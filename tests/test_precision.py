"""--precision bf16: the training step under autocast (on the CPU too), recorded in the
cell's recipe and key, and named as a stand-in in every verdict judged on it."""

import json

import pytest

from suite import cli

SUITE = """name = "digits"  # the name the claims file gives the digits experiments
[[experiment]]
name = "digits-resnet18"
task = "digits"
arch = "resnet18-cifar"
width = 0.25
methods = ["rpg", "plain"]
budgets = ["20K"]
seeds = 1
"""


def _records(out):
    return {
        json.loads(p.read_text())["config"]["method"]: json.loads(p.read_text()) for p in out.glob("records/*.json")
    }


@pytest.mark.slow
def test_a_bf16_cell_trains_under_autocast_and_says_so(tmp_path):
    suite = tmp_path / "one.toml"
    suite.write_text(SUITE)
    common = ["--suite", str(suite), "--profile", "smoke", "--no-progress", "--no-open", "--no-onnx"]
    assert cli.main([*common, "--out", str(tmp_path / "fp32")]) == 0
    assert cli.main([*common, "--out", str(tmp_path / "bf16"), "--precision", "bf16"]) == 0
    fp32, bf16 = _records(tmp_path / "fp32"), _records(tmp_path / "bf16")
    for method in ("rpg", "plain"):
        a, b = fp32[method], bf16[method]
        assert b["status"] == "ok" and b["config"]["recipe"]["precision"] == "bf16"
        assert a["config"]["recipe"]["precision"] == "fp32" and a["key"] != b["key"]
        # The same seed and data: only the step's arithmetic differs, and it shows.
        assert a["training"]["history"][0]["train_loss"] != b["training"]["history"][0]["train_loss"]
        first, last = (epoch["train_loss"] for epoch in b["training"]["history"])
        assert last < 0.8 * first  # it learns (two smoke epochs: RPG's test accuracy is not yet off chance)
    assert bf16["plain"]["metrics"]["top1"] > 30  # chance is 10%
    claims = json.loads((tmp_path / "bf16" / "claims.json").read_text())["claims"]
    judged = [c for c in claims if c["verdict"] in ("reproduced", "not reproduced", "inconclusive")]
    assert judged and all("precision: bf16 training" in " ".join(c["judged_on"]) for c in judged)
    fp32_claims = json.loads((tmp_path / "fp32" / "claims.json").read_text())["claims"]
    assert not any("precision" in " ".join(c.get("judged_on", [])) for c in fp32_claims)
