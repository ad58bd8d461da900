"""A method from outside the package: a module that another distribution names in the
``rpg_bench.methods`` entry-point group registers it, and a suite runs it end to end
(README: "Adding a method")."""

import json
import sys
import textwrap

import pytest

from suite import cli, methods

TOY = '''
"""A toy comparator: the plain network under a name of its own, registered from outside
rpg-bench (it shows the contract, not a new idea)."""
from dataclasses import dataclass

from suite import methods
from suite.methods.widths import Widths


@dataclass
class Toy(Widths):
    name: str = "toy-widths"
    description: str = "a plain network registered from outside rpg-bench"


methods.register(Toy())
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed distribution (its dist-info on sys.path) whose entry point names the toy module."""
    (tmp_path / "toy_plugin.py").write_text(TOY)
    info = tmp_path / "toy_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rpg_bench.methods]\ntoy = toy_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(methods, "METHODS", methods.METHODS)  # restored below: the registry is global
    methods.load_plugins.cache_clear()
    yield
    methods.METHODS.pop("toy-widths", None)
    sys.modules.pop("toy_plugin", None)
    methods.load_plugins.cache_clear()


@pytest.mark.slow
def test_a_method_registered_by_another_package_runs_in_a_suite(plugin, tmp_path):
    suite = tmp_path / "toy.toml"
    suite.write_text(
        textwrap.dedent(
            """
            name = "toy"
            [[experiment]]
            name = "toy"
            task = "digits"
            arch = "resnet18-cifar"
            width = 0.25
            methods = ["toy-widths", "rpg"]
            budgets = ["20K"]
            """
        )
    )
    out = tmp_path / "out"
    args = ["--suite", str(suite), "--profile", "smoke", "--out", str(out), "--no-progress", "--no-open", "--no-onnx"]
    assert cli.main(args) == 0
    found = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    toy = next(r for r in found if r["config"]["method"] == "toy-widths")
    assert toy["status"] == "ok" and toy["budget_met"]
    assert "toy-widths" in (out / "index.html").read_text()


def test_a_plugin_that_fails_to_load_is_one_line(tmp_path, monkeypatch, capsys):
    info = tmp_path / "broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rpg_bench.methods]\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    methods.load_plugins.cache_clear()
    try:
        assert cli.main(["list"]) == 2
    finally:
        methods.load_plugins.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "method plugin broken (no_such_module_here) does not load" in err
