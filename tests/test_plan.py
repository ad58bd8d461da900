"""rpg-bench plan: counted compute per cell, and hours from an assumed or a measured rate."""

import re

import pytest
import torch

from suite import cli, records, tasks
from suite.run import plan, runner
from suite.suites import spec


def test_digits_split_sizes_are_the_sizes_read():
    splits = tasks.get("digits").load(None, torch.device("cpu"), "full")
    assert splits.sizes == tasks.get("digits").split_sizes


def test_fashion_split_sizes_are_the_sizes_read_where_the_data_is_here():
    try:
        splits = tasks.get("fashion").load(None, torch.device("cpu"), "cpu")
    except Exception as e:  # noqa: BLE001 - the data set is an apt package, not everywhere
        pytest.skip(f"Fashion-MNIST is not installed here: {e}")
    assert splits.sizes == tasks.get("fashion").split_sizes


def test_a_cell_costs_epochs_times_three_forwards_per_training_example():
    cells = runner.expand(spec.load("digits"), "full", seeds=1, only=["rpg", "plain"])
    rpg = [c for c in cells if c.method == "rpg"]
    plain = [c for c in cells if c.method == "plain"]
    # rpg trains the reference network at every budget; plain shrinks with its budget.
    assert len({plan.cell_flops(c) for c in rpg}) == 1
    small, large = min(plain, key=lambda c: c.budget), max(plain, key=lambda c: c.budget)
    assert plan.cell_flops(small) < plan.cell_flops(large)
    assert plan.cell_flops(small) < plan.cell_flops(rpg[0])
    # Each epoch costs three forwards per training example and one per validation example;
    # the test split is passed once.
    full, smoke = rpg[0], runner.Cell(**{**rpg[0].__dict__, "profile": "smoke"})
    epoch = (plan.cell_flops(full) - plan.cell_flops(smoke)) / (full.recipe().epochs - smoke.recipe().epochs)
    test = plan.cell_flops(smoke) - smoke.recipe().epochs * epoch
    sizes = tasks.get("digits").split_sizes
    assert epoch / test == pytest.approx((3 * sizes["train"] + sizes["val"]) / sizes["test"])


@pytest.mark.slow
def test_calibrating_on_a_run_predicts_that_run_s_recorded_core_seconds(smoke_run, capsys):
    """A CPU run calibrates a rate per core: its cells' seconds times their threads."""
    out, _ = smoke_run
    run, recs = records.read_run(out)
    rate = plan.calibrate(out)
    assert rate.device == "cpu"
    cells = [runner.Cell.from_config(r["config"]) for r in recs]
    hours = plan.summarise(cells, rate)[-1]["hours"]
    assert list(hours) == ["CPU core-hours"]
    core_seconds = sum(r["seconds"] * r["env"]["cpu_threads"] for r in recs)
    assert hours["CPU core-hours"] * 3600 == pytest.approx(core_seconds, rel=1e-9)
    assert cli.main(["plan", "--profile", "smoke", "--seeds", "1", "--calibrate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"per CPU core (as run in {out})" in printed and "total" in printed and "CPU core-hours" in printed


@pytest.mark.parametrize(
    "args, message",
    [(["--tflops", "0"], "--tflops must be positive"), (["--calibrate", "/nonexistent"], "holds no rpg-bench records")],
)
def test_bad_plan_input_is_one_line_and_exit_2(args, message, capsys):
    assert cli.main(["plan", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


GPU_SUITE = """name = "g"
[[experiment]]
name = "g"
task = "fashion"
arch = "resnet10-cifar"
width = 0.125
methods = ["plain"]
budgets = ["50%"]
"""


def _total(out: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.strip().startswith("total"))


def test_each_training_precision_has_its_own_assumed_rate_on_a_gpu(tmp_path, capsys):
    """bf16 cells of a GPU profile are costed at bf16's assumed rate: the same FLOPs, fewer GPU-hours."""
    suite = tmp_path / "g.toml"
    suite.write_text(GPU_SUITE)
    totals = {}
    for precision in ("fp32", "bf16"):
        assert cli.main(["plan", "--suite", str(suite), "--profile", "full", "--precision", precision]) == 0
        out = capsys.readouterr().out
        assert f"{plan.assumed()} TFLOP/s per GPU (assumed)" in out and "GPU-hours" in out
        assert "CPU core" not in out
        total = _total(out)
        totals[precision] = (float(total[2]), float(total[3]))
    (flops32, hours32), (flops16, hours16) = totals["fp32"], totals["bf16"]
    ratio = plan.ASSUMED_TFLOPS["bf16"] / plan.ASSUMED_TFLOPS["fp32"]
    assert flops32 == flops16 and hours32 == pytest.approx(ratio * hours16, rel=0.01)


def test_a_cpu_profile_is_costed_in_core_hours_at_the_stated_core_rate(capsys):
    """digits' profiles are meant for a CPU: core-hours at the assumed GFLOP/s per core,
    whatever the precision, and the rate printed; --tflops states one core's rate."""
    cells = runner.expand(spec.load("digits"), "full")
    flops = sum(plan.cell_flops(c) for c in cells)
    for extra in ([], ["--precision", "bf16"]):
        assert cli.main(["plan", "--suite", "digits", *extra]) == 0
        out = capsys.readouterr().out
        assert f"{plan.ASSUMED_CORE_GFLOPS:g} GFLOP/s per CPU core (assumed" in out and "GPU" not in out
        assert out.splitlines()[1].endswith(" CPU core-hours")
        assert float(_total(out)[3]) == pytest.approx(flops / (plan.ASSUMED_CORE_GFLOPS * 1e9) / 3600, rel=0.01)
    assert cli.main(["plan", "--suite", "digits", "--tflops", "0.04"]) == 0
    out = capsys.readouterr().out
    assert "40 GFLOP/s per CPU core (given by --tflops)" in out
    assert float(_total(out)[3]) == pytest.approx(flops / 40e9 / 3600, rel=0.01)


def test_every_profile_names_its_device():
    for task in tasks.TASKS.values():
        assert set(task.devices) == set(task.profiles), task.name
        assert set(task.devices.values()) <= {"cpu", "gpu"}
        for profile in task.generated_profiles:  # generated data is for CPUs: smoke, and pose's cpu
            assert task.devices[profile] == "cpu", (task.name, profile)
        if "nightly" in task.profiles:
            assert task.devices["nightly"] == "gpu"


def test_claims_costs_each_profile_in_its_device_s_unit(capsys):
    assert cli.main(["claims", "--suite", "fashion"]) == 0
    out = capsys.readouterr().out
    assert "TFLOP/s per GPU" in out.splitlines()[0] and "GFLOP/s per CPU core" in out.splitlines()[0]
    costs = re.findall(r"^ {4}(\S+) +\d+ cells, [\d.e+-]+ (GPU-hours|CPU core-hours)", out, re.M)
    units = set(costs)
    assert units == {("full", "GPU-hours"), ("cpu", "CPU core-hours"), ("smoke", "CPU core-hours")}


@pytest.mark.parametrize("name", [n for n, t in tasks.TASKS.items() if "smoke" in t.generated_profiles])
def test_a_generated_profile_is_costed_at_the_size_of_the_data_it_generates(name):
    """The sizes plan counts for smoke are those of the data its task generates and reads,
    not the real data set's; so is the input's shape."""
    task = tasks.get(name)
    splits = task.load(None, torch.device("cpu"), "smoke")
    assert {k: splits.sizes[k] for k in ("train", "val", "test")} == task.sizes("smoke")
    assert task.sizes("smoke") != task.split_sizes
    assert tuple(splits.head("test", 1)[0].shape[1:]) == task.input_shape("smoke")


def test_a_smoke_cell_costs_the_generated_data_s_examples():
    (cell,) = runner.expand(spec.load("fashion"), "smoke", seeds=1, only=["plain"])[:1]
    sizes, recipe = tasks.get("fashion").sizes("smoke"), cell.recipe()
    expected = plan.forward_flops(cell) * (recipe.epochs * (3 * sizes["train"] + sizes["val"]) + sizes["test"])
    assert plan.cell_flops(cell) == expected
    assert sizes["train"] < tasks.get("fashion").split_sizes["train"] / 50


def test_a_plan_takes_the_subset_a_run_would(capsys):
    """--experiments and --methods cut the plan as they cut a run: the same cells, costed."""
    suite = spec.load("fashion")
    assert cli.main(["plan", "--suite", "fashion", "--experiments", "field", "--methods", "rpg,lowrank-cp"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    expected = [c for c in runner.expand(suite, "cpu") if c.experiment == "field" and c.method in ("rpg", "lowrank-cp")]
    assert [r[0] for r in rows] == ["field", "total"] and int(rows[0][1]) == len(expected) == 2 * 3 * 3
    assert float(rows[0][2]) == pytest.approx(sum(plan.cell_flops(c) for c in expected) / 1e15, rel=0.01)
    assert cli.main(["plan", "--suite", "fashion", "--experiments", "nope"]) == 2
    assert "suite fashion has sharing" in capsys.readouterr().err
