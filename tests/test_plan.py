"""rpg-bench plan: counted compute per cell, and hours from an assumed or a measured rate."""

import pytest
import torch

from suite import cli, plan, records, runner, spec, tasks


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


def test_calibrating_on_a_run_predicts_that_run_s_recorded_seconds(smoke_run, capsys):
    out, _ = smoke_run
    run, recs = records.read_run(out)
    rate = plan.calibrate(out)
    cells = [runner.Cell.from_config(r["config"]) for r in recs]
    hours = plan.summarise(cells, rate)[-1]["hours"]
    assert hours * 3600 == pytest.approx(sum(r["seconds"] for r in recs), rel=1e-9)
    assert cli.main(["plan", "--profile", "smoke", "--seeds", "1", "--calibrate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"as run in {out}" in printed and "total" in printed


@pytest.mark.parametrize(
    "args, message",
    [(["--tflops", "0"], "--tflops must be positive"), (["--calibrate", "/nonexistent"], "holds no rpg-bench records")],
)
def test_bad_plan_input_is_one_line_and_exit_2(args, message, capsys):
    assert cli.main(["plan", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_each_training_precision_has_its_own_assumed_rate(capsys):
    """bf16 cells are costed at bf16's assumed rate: the same FLOPs, fewer hours."""
    totals = {}
    for precision in ("fp32", "bf16"):
        assert cli.main(["plan", "--suite", "digits", "--precision", precision]) == 0
        out = capsys.readouterr().out
        assert plan.assumed() in out
        total = next(line.split() for line in out.splitlines() if line.strip().startswith("total"))
        totals[precision] = (float(total[2]), float(total[3]))
    (flops32, hours32), (flops16, hours16) = totals["fp32"], totals["bf16"]
    ratio = plan.ASSUMED_TFLOPS["bf16"] / plan.ASSUMED_TFLOPS["fp32"]
    assert flops32 == flops16 and hours32 == pytest.approx(ratio * hours16, rel=0.01)
