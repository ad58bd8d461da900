"""Missing extras ([onnx], [gpu], [report]) are said, never raised: each optional module
blocked in turn (sys.modules[name] = None makes Python's import and find_spec see it
absent), the record and the report say "not installed" and go on."""

import json
import shutil
import sys

import pytest
import torch
from torch import nn

from suite import report
from suite.measure import runtime
from suite.system import env


def _absent(monkeypatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("module", ["onnx", "onnxscript", "onnxruntime"])
def test_without_an_onnx_part_the_measurement_says_not_installed(monkeypatch, module):
    _absent(monkeypatch, module)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    x = torch.randn(4, 1, 8, 8)
    model(x)
    result = runtime.onnx(model, x[:1], x)
    assert result["status"] == "not installed"
    assert module in result["reason"] and "rpg-bench[onnx]" in result["reason"]
    assert env.optional()[module] == "not installed"


def test_without_nvml_the_environment_record_says_not_installed(monkeypatch):
    _absent(monkeypatch, "pynvml")
    record = env.fingerprint(torch.device("cpu"))
    assert record["gpu"] == {"nvml": "not installed (pip install 'rpg-bench[gpu]')"}
    assert record["optional"]["pynvml"] == "not installed"
    assert record["optional"]["onnx"].startswith("onnx ")  # the others are still there, by version


def test_with_every_extra_the_environment_record_names_each_version():
    found = env.optional()
    assert set(found) == {"onnx", "onnxscript", "onnxruntime", "pynvml", "matplotlib"}
    assert all(v != "not installed" for v in found.values())  # the test env installs them all


@pytest.mark.slow
def test_without_matplotlib_the_report_says_why_it_has_no_figure(smoke_run, tmp_path, monkeypatch):
    source, _ = smoke_run
    out = tmp_path / "out"
    shutil.copytree(source, out)
    # A first render: a page drawn earlier from the same records would keep its figures.
    (out / "index.html").unlink()
    _absent(monkeypatch, "matplotlib")
    # As in a fresh process without matplotlib: suite.report.plots not imported yet.
    monkeypatch.delitem(sys.modules, "suite.report.plots", raising=False)
    monkeypatch.delattr(report, "plots", raising=False)
    report.render(out)
    html = (out / "index.html").read_text()
    assert report.NO_FIGURES.replace("'", "&#39;") in html and "<svg" not in html
    assert (out / "leaderboard.csv").stat().st_size > 0  # the rest of the report is whole


@pytest.mark.slow
def test_the_report_draws_each_experiments_learning_curves(smoke_run, tmp_path):
    """A panel per budget the run trained, a line per method (named in its legend)."""
    source, _ = smoke_run
    out = tmp_path / "out"
    shutil.copytree(source, out)
    report.render(out)
    html = (out / "index.html").read_text()
    assert "<h3>Learning curves</h3>" in html
    curves = html[html.index("<h3>Learning curves</h3>") :]
    curves = curves[: curves.index("</figure>")]
    assert "<svg" in curves and "validation" in curves
    for method in ("rpg", "plain"):
        assert f">{method}<" in curves
    budgets = sorted({json.loads(p.read_text())["config"]["budget"] for p in (out / "records").glob("*.json")})
    assert all(f"{b:,} backbone parameters" in curves for b in budgets)
