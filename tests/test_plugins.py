"""A method, a task and an architecture from outside the package: modules that another
distribution names in the ``rpg_bench.methods``, ``rpg_bench.tasks`` and ``rpg_bench.archs``
entry-point groups register them, and a suite naming all three runs end to end
(README: "Adding a method")."""

import json
import sys
import textwrap

import pytest

from suite import archs, cli, methods, tasks

# Each shows the contract, not a new idea: a plain network, the digits and a ResNet-10,
# under names of their own, registered from outside rpg-bench.
MODULES = {
    "toy_method": """
from dataclasses import dataclass

from suite import methods
from suite.methods.widths import Widths


@methods.register
@dataclass
class Toy(Widths):
    name: str = "toy-widths"
    description: str = "a plain network registered from outside rpg-bench"
""",
    "toy_task": """
from pathlib import Path

from suite import tasks
from suite.tasks import recipes
from suite.tasks.digits import Digits

HERE = Path(__file__).parent  # the plugin's recipes live beside it: toy-digits.toml


@tasks.register
class ToyDigits(Digits):
    name = "toy-digits"
    description = "the 8x8 digits under a plugin's name"
    arch = "toy-resnet10"
    profiles = recipes.load("toy-digits", HERE)
    devices = recipes.devices("toy-digits", HERE)
""",
    "toy_arch": """
from suite import archs

archs.register(archs.Arch("toy-resnet10", 10, "cifar", "ResNet-10 under a plugin's name"))
""",
}
ENTRY_POINTS = "".join(
    f"[rpg_bench.{group}]\ntoy = toy_{kind}\n"
    for group, kind in [("methods", "method"), ("tasks", "task"), ("archs", "arch")]
)
REGISTRIES = (methods.METHODS, tasks.TASKS, archs.ARCHS)
# The plugin task's own recipe file: one epoch at a learning rate no built-in profile uses.
RECIPE = """
[profile.smoke]
device = "cpu"
epochs = 1
batch_size = 64
lr = 0.07
momentum = 0.9
weight_decay = 0.0005
schedule = "cosine"
optimizer = "sgd"
milestones = []
gamma = 0.1
eval_batch_size = 256
width_scale = 1.0
"""


def _install(folder, name: str, entry_points: str) -> None:
    """An installed distribution: its dist-info in a folder on sys.path."""
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def fresh_registries(monkeypatch):
    """The registries are global: each test loads plugins afresh, and leaves them as found."""
    before = [dict(r) for r in REGISTRIES]
    for r in REGISTRIES:
        monkeypatch.setattr(r, "plugins", None)
    yield
    for r, items in zip(REGISTRIES, before, strict=True):
        r.clear()
        r.update(items)
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def plugin(tmp_path, monkeypatch, fresh_registries):
    for name, text in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    (tmp_path / "toy-digits.toml").write_text(RECIPE)
    _install(tmp_path, "toy-plugin", ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.slow
def test_a_method_task_and_architecture_from_another_package_run_in_a_suite(plugin, tmp_path, capsys):
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "toy-widths" in listed and "toy-digits" in listed and "toy-resnet10" in listed
    suite = tmp_path / "toy.toml"
    suite.write_text(
        textwrap.dedent(
            """
            name = "toy"
            default_profile = "smoke"  # the plugin's recipe file has no other
            [[experiment]]
            name = "toy"
            task = "toy-digits"
            width = 0.25
            methods = ["toy-widths", "rpg"]
            budgets = ["20K"]
            """
        )
    )
    out = tmp_path / "out"
    args = ["--suite", str(suite), "--profile", "smoke", "--out", str(out), "--no-progress", "--no-open", "--no-onnx"]
    assert cli.main([*args, "--jobs", "2"]) == 0  # on spawned workers, which load the plugins too
    found = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert {r["config"]["method"] for r in found} == {"toy-widths", "rpg"}
    for r in found:  # the plugin's task, and its default network: the plugin's architecture
        assert r["status"] == "ok" and r["budget_met"]
        assert (r["config"]["task"], r["config"]["arch"]) == ("toy-digits", "toy-resnet10")
        assert (r["config"]["recipe"]["lr"], r["config"]["recipe"]["epochs"]) == (0.07, 1)  # its own recipe file
    assert "toy-widths" in (out / "index.html").read_text()


@pytest.mark.parametrize(("group", "kind"), [("methods", "method"), ("tasks", "task"), ("archs", "architecture")])
def test_a_plugin_that_fails_to_load_is_one_line(group, kind, tmp_path, monkeypatch, capsys, fresh_registries):
    _install(tmp_path, "broken", f"[rpg_bench.{group}]\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{kind} plugin broken (no_such_module_here) does not load" in err


def test_a_name_registered_twice_is_refused(fresh_registries):
    with pytest.raises(ValueError, match="architecture 'resnet18' is already registered"):
        archs.register(archs.Arch("resnet18", 18, "cifar", "a second resnet18"))
