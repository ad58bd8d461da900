"""Measurement: FLOPs, timing stability, isolated peak memory, ONNX Runtime, NVML."""

import time

import torch
from torch import nn

import rpg
from suite import methods, tasks
from suite.measure import runtime
from suite.run import runner
from suite.system import env, nvml


def test_flops_count_a_convolution_exactly():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    result = runtime.flops(conv, torch.randn(4, 3, 8, 8))
    assert result["forward_flops"] == 2 * (8 * 3 * 9) * (8 * 8)  # per image, multiply-add = 2


def test_unstable_timings_are_retried_and_flagged():
    calls = []

    def jittery():
        calls.append(None)
        time.sleep(0.0005 if len(calls) % 3 else 0.006)

    result = runtime.time_calls(jittery, 1, torch.device("cpu"), warmup=0, min_repeats=12, min_seconds=0)
    assert result["attempts"] == 3 and not result["stable"] and result["spread"] > runtime.SPREAD

    steady = runtime.time_calls(lambda: time.sleep(0.002), 1, torch.device("cpu"), warmup=1, min_repeats=10)
    assert steady["p90_ms"] >= steady["median_ms"] >= 1.5


def _cell(method: str) -> runner.Cell:
    return runner.Cell("t", "t", "digits", "resnet18-cifar", 0.25, method, 20_000, 0, "smoke")


def _model(cell: runner.Cell) -> nn.Module:
    return methods.build(methods.get(cell.method), cell.net(), cell.budget, cell.seed).model


def test_peak_memory_is_measured_in_isolation_and_grows_with_the_batch():
    cell = _cell("rpg")
    model = _model(cell)
    deployed = rpg.materialize(model)
    loss = tasks.get("digits").loss

    def peaks(n):
        x, y = torch.randn(n, 1, 8, 8), torch.randint(10, (n,))
        setting = methods.get(cell.method).setting(cell.net(), cell.budget)
        return {
            w: runtime.memory(w, cell.config(), setting, model, deployed, (x, y), loss)
            for w in ("inference", "train_step")
        }

    small, large = peaks(8), peaks(2048)
    for m in (small, large):
        assert m["inference"]["kind"] == m["train_step"]["kind"] == "cpu-rss-isolated"
    # 2048 images of 16 x 8 x 8 float activations per stage-1 layer: several MiB more.
    assert large["inference"]["peak_mb"] > small["inference"]["peak_mb"] + 2
    # Training keeps activations for backward; inference frees them as it goes.
    assert large["train_step"]["peak_mb"] > large["inference"]["peak_mb"]


def test_onnx_runtime_agrees_with_torch():
    deployed = rpg.materialize(_model(_cell("rpg"))).eval()
    x = torch.randn(16, 1, 8, 8)
    result = runtime.onnx(deployed, x[:1], x)
    assert result["status"] == "ok", result
    assert result["matches"] and result["max_abs_diff"] < 1e-3
    assert result["provider"] == "CPUExecutionProvider"
    assert result["batch1"]["median_ms"] > 0 and result["batchN"]["batch"] == 16


def test_onnx_traces_a_dense_network_but_never_a_data_dependent_one():
    """Tracing freezes one path through a model: a loop whose count depends on the data
    (MDEQ's solver) must not be exported by tracing, where it would silently be wrong."""

    class Halve(nn.Module):
        def forward(self, x):
            while x.abs().max() > 1:  # as many halvings as this input needs
                x = x / 2
            return x

    x = torch.randn(8, 1, 8, 8)
    dense = runtime.onnx(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval(), x[:1], x)
    assert dense["status"] == "ok" and dense["exporter"] == "torchscript" and dense["matches"], dense
    halve = runtime.onnx(Halve(), x[:1] / 100, x * 100)
    assert halve.get("exporter") != "torchscript", halve
    assert halve["status"] == "failed" or halve["matches"], halve


def test_onnx_exports_cifar_inputs_with_a_dynamic_batch():
    # CIFAR's reader once kept images channels-last; a channels-last batch of one made
    # torch.export pin the batch size, and every CIFAR cell recorded a failed export.
    splits = tasks.get("cifar10").load(None, torch.device("cpu"), "smoke")
    x = splits.tensors["test"][0][:8]
    assert x.is_contiguous()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)).eval()
    for example in (x[:1], x[:1].contiguous(memory_format=torch.channels_last)):
        result = runtime.onnx(model, example, x)
        assert result["status"] == "ok", result


def test_nvml_says_na_without_a_gpu():
    cpu = torch.device("cpu")
    assert nvml.used_mb(cpu) is None  # a number NVML cannot give is null
    assert nvml.fingerprint(cpu) == {"nvml": "not available"}


def test_an_installed_copy_records_the_commit_its_image_was_built_from(monkeypatch):
    """The image holds no .git: the commit comes from the build (RPG_BENCH_GIT_COMMIT)."""
    monkeypatch.setattr(env, "_git", lambda *args: None)
    monkeypatch.setenv("RPG_BENCH_GIT_COMMIT", "0123abc")
    env.code_version.cache_clear()
    try:
        assert env.code_version()["git_commit"] == "0123abc"
        monkeypatch.delenv("RPG_BENCH_GIT_COMMIT")
        env.code_version.cache_clear()
        assert env.code_version()["git_commit"] is None
    finally:
        env.code_version.cache_clear()
