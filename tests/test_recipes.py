"""Recipes as data: the TOML profiles, a suite's overrides and --set, each checked and each
part of the cell's key; and the command line's commands."""

import json

import pytest
import torch

from suite import cli, tasks
from suite.errors import UsageError
from suite.run import plan, runner
from suite.suites import spec
from suite.tasks import recipes

SUITE = """name = "x"
[[experiment]]
name = "e"
task = "digits"
methods = ["rpg"]
budgets = ["20K"]
"""


def test_every_profile_is_read_from_its_toml_with_every_field_checked():
    cifar = tasks.get("cifar100").profiles["full"]
    assert (cifar.epochs, cifar.lr, cifar.milestones, cifar.schedule) == (200, 0.1, (60, 120, 160), "step")
    assert tasks.get("cifar10").profiles is tasks.get("cifar100").profiles  # one file for both
    with pytest.raises(UsageError, match="here: epochs: Input should be a valid integer"):
        recipes.check({"epochs": 2.5, "batch_size": 8, "lr": 0.1}, "here")
    with pytest.raises(UsageError, match="here: schedule: Input should be 'cosine', 'step' or 'poly'"):
        recipes.check({"epochs": 2, "batch_size": 8, "lr": 0.1, "schedule": "linear"}, "here")
    with pytest.raises(UsageError, match="here: batch_size: Input should be a valid integer"):
        recipes.check({"epochs": 2, "batch_size": "8", "lr": 0.1}, "here")
    with pytest.raises(UsageError, match="here: epoch: Extra inputs are not permitted"):
        recipes.check({"epochs": 2, "batch_size": 8, "lr": 0.1, "epoch": 3}, "here")


def test_a_suite_overrides_its_recipe_and_the_override_changes_the_key(tmp_path):
    plain, changed = tmp_path / "plain.toml", tmp_path / "changed.toml"
    plain.write_text(SUITE)
    changed.write_text(SUITE + "[experiment.recipe]\nepochs = 3\nlr = 0.05\n")
    (a,) = runner.expand(spec.load(str(plain)), "full", seeds=1)
    (b,) = runner.expand(spec.load(str(changed)), "full", seeds=1)
    assert b.recipe().epochs == 3 and b.recipe().lr == 0.05 and a.recipe().epochs == 20
    assert a.key() != b.key() and b.config()["recipe_overrides"] == {"epochs": 3, "lr": 0.05}
    assert "recipe_overrides" not in a.config()  # no override: the key of before recipes were data
    assert runner.Cell.from_config(b.config()) == b  # a record's config gives its cell back
    # --set changes every experiment after the suite's own changes.
    (c,) = runner.expand(spec.load(str(changed)), "full", seeds=1, sets={"epochs": 4})
    assert (c.recipe().epochs, c.recipe().lr) == (4, 0.05)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "[experiment.recipe]\nepochs = 0\n",
            "experiment 1 ('e'), recipe (profile full): epochs: Input should be greater than 0",
        ),
        ("[experiment.recipe]\nlearning_rate = 0.1\n", "unknown recipe field(s) learning_rate"),
        ('[experiment.recipe]\nfamily = "nope"\n', "task digits has no recipe 'nope'"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_experiment(body, message, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(SUITE + body)
    assert cli.main(["--suite", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(bad) in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_set_is_checked_and_recorded(tmp_path, capsys):
    assert cli.main(["plan", "--suite", "digits", "--set", "optimizer=lbfgs"]) == 2
    assert "optimizer: Input should be 'sgd', 'adam' or 'rmsprop'" in capsys.readouterr().err
    assert cli.main(["plan", "--suite", "digits", "--set", "epochs"]) == 2
    assert "write field=value" in capsys.readouterr().err
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    args = ["--suite", str(suite), "--profile", "smoke", "--out", str(out), "--no-progress", "--no-open", "--no-onnx"]
    assert cli.main([*args, "--set", "epochs=1", "--set", "lr=0.02"]) == 0
    (record,) = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert record["config"]["recipe"]["epochs"] == 1 and record["config"]["recipe_overrides"] == {
        "epochs": 1,
        "lr": 0.02,
    }
    run = json.loads((out / "run.json").read_text())
    assert run["recipe_overrides"] == {"epochs": 1, "lr": 0.02} and "--set epochs=1" in run["command"]


def test_the_command_line_lists_its_commands_and_knows_its_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in cli.COMMANDS)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    from importlib import metadata

    assert capsys.readouterr().out.strip() == f"rpg-bench {metadata.version('rpg-bench')}"
    assert cli.main(["reprot", "out"]) == 2
    assert "did you mean `rpg-bench report`" in capsys.readouterr().err
    assert cli.main(["ledger", "--arch", "resnet18-cifar", "--method", "rpg", "--budget", "50%"]) == 0
    half = json.loads(capsys.readouterr().out)
    assert cli.main(["ledger", "--arch", "resnet18-cifar", "--method", "plain", "--budget", "100%"]) == 0
    assert half["budget"] == round(0.5 * json.loads(capsys.readouterr().out)["budget"])
    assert cli.main(["ledger", "--arch", "hourglass-2x", "--method", "rpg", "--budget", "cpm"]) == 0
    assert json.loads(capsys.readouterr().out)["deviation"] == pytest.approx(0, abs=0.005)


@pytest.mark.slow
def test_a_method_s_ring_std_reaches_its_rings_and_the_rebuild(tmp_path):
    """--set <method>.ring_std=official starts that method's rings' W at the official
    constant (rpg, random, hash, and the ring inside rpg-imp), leaves the other methods'
    cells alone, is in the setting that a rebuild reads, and changes the cell's key."""
    import rpg
    from rpg.convert import OFFICIAL_STD
    from suite import methods

    path = tmp_path / "s.toml"
    path.write_text(SUITE.replace('methods = ["rpg"]', 'methods = ["rpg", "random", "hash", "rpg-imp", "plain"]')
                    .replace('budgets = ["20K"]', 'budgets = ["30%"]'))  # fmt: skip
    suite = spec.load(str(path))
    default = {c.method: c for c in runner.expand(suite, "smoke", seeds=1)}
    sets = {f"{m}.ring_std": "official" for m in ("rpg", "random", "hash", "rpg-imp")}
    official = {c.method: c for c in runner.expand(suite, "smoke", seeds=1, sets=sets)}
    assert official["plain"] == default["plain"]
    del official["plain"]
    for name, cell in official.items():
        assert cell.key() != default[name].key() and cell.knobs == (("ring_std", "official"),)
        method = methods.get(name)
        built = methods.build(method, cell.net(), cell.budget, cell.seed, dict(cell.knobs))
        before = methods.build(method, cell.net(), cell.budget, cell.seed)
        stds = [r.std for r in rpg.rings(built.model).values()]
        assert stds and all(s == pytest.approx(OFFICIAL_STD) for s in stds)
        assert all(r.std > OFFICIAL_STD for r in rpg.rings(before.model).values())  # narrow: smallest is larger
        again = method.rebuild(cell.net(), built.setting, cell.seed, built.model.state_dict())
        assert [r.std for r in rpg.rings(again).values()] == stds
        x = torch.randn(2, *tasks.get(cell.task).input_size)
        built.model.eval(), again.eval()
        assert torch.equal(built.model(x), again(x))
    only_rpg = {c.method: c for c in runner.expand(suite, "smoke", seeds=1, sets={"rpg.ring_std": 0.01})}
    assert only_rpg["rpg"].knobs == (("ring_std", 0.01),) and only_rpg["random"] == default["random"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"rpg.ring_std": "largest"}, r"--set rpg.ring_std=largest: ring_std.*'smallest' or 'official'"),
        ({"rpg.ring_sdt": "official"}, "method rpg has no knob ring_sdt; its knobs are ring_std"),
        ({"plain.ring_std": "official"}, "method plain has no knob ring_std; it has no knobs"),
        ({"rgp.ring_std": "official"}, "unknown method 'rgp'; known: .*rpg"),
        ({"ring_std": "official"}, r"unknown recipe field\(s\) ring_std; .* <method>.<knob>"),
    ],
)
def test_a_bad_knob_is_one_line_naming_what_exists(sets, message, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE)
    with pytest.raises(UsageError, match=message):
        runner.expand(spec.load(str(path)), "smoke", seeds=1, sets=sets)


def test_a_cell_s_knobs_are_read_back_from_its_config():
    """A knob that was a recipe field (ring_std) is written as one in the key, as before;
    the cell comes back from its config with the knob, and with the same key."""
    from suite.cells import Cell

    cell = Cell("s", "e", "digits", "resnet18-cifar", 0.25, "rpg", 20_000, 0, "smoke", (("epochs", 3),),
                (("ring_std", "official"),))  # fmt: skip
    config = cell.config()
    assert config["recipe"]["ring_std"] == "official" and config["recipe"]["epochs"] == 3
    assert config["recipe_overrides"] == {"epochs": 3, "ring_std": "official"}
    assert Cell.from_config(config) == cell and Cell.from_config(config).key() == cell.key()
    plain = Cell("s", "e", "digits", "resnet18-cifar", 0.25, "plain", 20_000, 0, "smoke")
    assert plain.config()["recipe"]["ring_std"] == "smallest" and "recipe_overrides" not in plain.config()
    # A knob that never was a recipe field has its own place in the config, and comes back.
    other = Cell("s", "e", "digits", "resnet18-cifar", 0.25, "rpg", 20_000, 0, "smoke", (), (("depth", 2),))
    assert other.config()["knobs"] == {"depth": 2} and "recipe_overrides" not in other.config()
    assert Cell.from_config(other.config()) == other and other.key() != Cell.from_config(config).key()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("cifar", marks=pytest.mark.slow),  # costing the cifar night builds each of its networks
        "pruning",
        pytest.param("pose", marks=pytest.mark.slow),
        "multitask",
        "imagenet",
    ],
)
def test_a_night_costs_at_most_a_tenth_of_the_paper_s_recipe(name):
    """#28: every GPU suite has a nightly profile at <= 1/10 of full's compute as plan counts
    it, on the real data (never generated), with the seeds of full, in bf16 except MDEQ's."""
    suite = spec.load(name)
    cells = {p: runner.expand(suite, p) for p in ("full", "nightly")}
    assert len(cells["nightly"]) == len(cells["full"])  # every cell, every seed
    total = {p: sum(plan.cell_flops(c) for c in cs) for p, cs in cells.items()}
    assert total["nightly"] <= total["full"] / 10, total
    for cell in cells["nightly"]:
        assert cell.profile not in tasks.get(cell.task).generated_profiles
        assert cell.recipe().precision == ("fp32" if cell.profile.startswith("mdeq-") else "bf16")
