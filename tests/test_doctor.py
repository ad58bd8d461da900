"""rpg-bench doctor on a machine without a GPU: every CPU path runs and passes, every GPU
path is skipped with its reason, and a path that misbehaves is caught and recorded."""

import json

import pytest
import torch

from suite import cli
from suite.cli import doctor
from suite.measure import runtime

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only verdicts")


@pytest.mark.slow
def test_every_cpu_path_passes_and_every_gpu_path_says_why_it_was_skipped(tmp_path, capsys):
    out = tmp_path / "doctor.json"
    assert cli.main(["doctor", "--out", str(out)]) == 0
    verdicts = {p["path"]: p for p in json.loads(out.read_text())["paths"]}
    assert set(verdicts) == {c.name for c in doctor.CHECKS}
    for name, v in verdicts.items():
        if name.endswith(".cpu"):
            assert v["status"] == "pass", v
        else:
            assert v["status"] == "skipped" and "CUDA device" in v["reason"], v
    assert verdicts["backward.cpu"]["figures"]["bitwise_identical"]
    assert verdicts["onnx.cpu"]["figures"]["provider"] == "CPUExecutionProvider"
    assert verdicts["bf16.cpu"]["figures"]["output_dtype"] == "torch.bfloat16"
    assert verdicts["torchrun.cpu"]["figures"]["records"][0]["distributed"]["world_size"] == 1
    assert verdicts["compile.cpu"]["figures"]["graphs"] == 1
    assert "9 passed, 0 failed, 10 skipped" in capsys.readouterr().out


def test_a_timer_that_disagrees_with_the_wall_clock_fails_its_path(tmp_path, monkeypatch, capsys):
    honest = runtime.timer

    def halved(device):
        time_one = honest(device)
        return lambda fn: time_one(fn) / 2

    monkeypatch.setattr(runtime, "timer", halved)
    out = tmp_path / "doctor.json"
    assert cli.main(["doctor", "--only", "timing.*", "--out", str(out)]) == 1
    (cpu, cuda) = json.loads(out.read_text())["paths"]
    assert cpu["status"] == "fail" and "of the wall clock" in cpu["reason"]
    assert 0.4 < cpu["figures"]["agreement"] < 0.6
    assert cuda["status"] == "skipped"


def test_a_pattern_that_matches_no_path_is_bad_input(tmp_path, capsys):
    assert cli.main(["doctor", "--only", "gpu-everything", "--out", str(tmp_path / "d.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rpg-bench: error: --only 'gpu-everything' matches no path") and "timing.cpu" in err
    assert not (tmp_path / "d.json").exists()
