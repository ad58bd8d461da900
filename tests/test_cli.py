"""The command line end to end: real runs, real records, real reports, real errors."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from suite import cli
from suite.run import pipeline, runner
from suite.suites import spec
from suite.training import train

# ONNX export is checked on the shared smoke run (conftest); these runs leave it out.
# --jobs 1: the digits suite would otherwise run its cells in worker processes, which the
# stand-ins below (monkeypatch) do not reach.
SMOKE = ["--profile", "smoke", "--seeds", "1", "--no-progress", "--no-open", "--no-onnx", "--jobs", "1"]


def records(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}


@pytest.mark.slow
def test_smoke_run_records_every_cell_and_renders_the_report(smoke_run):
    out, code = smoke_run
    assert code == 0
    recs = records(out)
    suite = spec.load("digits")
    assert len(recs) == len(runner.expand(suite, "smoke", seeds=1))
    for r in recs.values():
        assert r["status"] == "ok", r.get("error")
        assert 0 <= r["metrics"]["top1"] <= 100
        assert r["budget_met"] and abs(r["ledger"]["backbone"] / r["config"]["budget"] - 1) <= 0.005
        assert r["latency"]["deployed"]["batch1"]["median_ms"] > 0
        # A smoke run times once, briefly: it checks that timing runs, not how fast.
        assert r["latency"]["deployed"]["batch1"]["repeats"] >= pipeline.QUICK_TIMING["min_repeats"]
        assert r["latency"]["deployed"]["batch1"]["attempts"] == 1
        assert r["env"]["torch"] and r["data"]["fingerprint"]
        assert r["training"]["best_epoch"] >= 1
        assert r["flops"]["forward_flops"] > 0
        for workload in ("inference", "train_step"):
            assert r["memory"][workload]["kind"] == "cpu-rss-isolated", r["memory"]
            assert r["memory"][workload]["peak_mb"] > 0
        assert r["onnx"]["status"] == "ok" and r["onnx"]["matches"], r["onnx"]
        assert r["onnx"]["provider"] == "CPUExecutionProvider"
    html = (out / "index.html").read_text()
    assert "Leaderboard at" in html and "rpg" in html and "plain" in html
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == len(recs) and set(csv["method"]) == {"rpg", "plain"}


@pytest.mark.slow
def test_a_second_run_skips_recorded_cells(smoke_run, tmp_path):
    out, _ = smoke_run
    before = {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert cli.main([*SMOKE, "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")} == before


@pytest.mark.slow
def test_report_rerenders_from_records(smoke_run, tmp_path):
    out = tmp_path / "copy"  # a copy: the shared run's report stays as other tests found it
    shutil.copytree(smoke_run[0], out)
    (out / "index.html").unlink()
    assert cli.main(["report", str(out)]) == 0
    assert "Leaderboard at" in (out / "index.html").read_text()


@pytest.mark.slow
def test_a_failing_cell_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch):
    real_fit = train.fit
    smallest = min(spec.load("digits").experiments[0].budgets)

    def fit(model, task, splits, recipe, seed, **kw):
        if f" plain@{smallest} " in kw.get("desc", ""):
            raise RuntimeError("boom <script>")
        return real_fit(model, task, splits, recipe, seed, **kw)

    monkeypatch.setattr(train, "fit", fit)
    out = tmp_path / "out"
    code = cli.main([*SMOKE, "--out", str(out), "--methods", "plain"])
    assert code == 1
    statuses = sorted(r["status"] for r in records(out).values())
    assert statuses == ["failed", "ok", "ok", "ok"]
    failed = next(r for r in records(out).values() if r["status"] == "failed")
    assert "boom" in failed["error"] and "Traceback" in failed["traceback"]
    html = (out / "index.html").read_text()
    assert "Failed cells" in html and "boom &lt;script&gt;" in html and "boom <script>" not in html
    # The failed cell is retried on the next run; the finished ones are not.
    monkeypatch.setattr(train, "fit", real_fit)
    assert cli.main([*SMOKE, "--out", str(out), "--methods", "plain"]) == 0
    assert sorted(r["status"] for r in records(out).values()) == ["ok"] * 4


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert cli.main([*SMOKE, "--out", str(out), "--methods", "rpg"]) == 0
    metrics = [{k: r["metrics"] for k, r in records(out).items()} for out in (a, b)]
    assert metrics[0] == metrics[1]


def test_ledger_command_prints_json(capsys):
    assert cli.main(["ledger", "--arch", "resnet18", "--method", "rpg", "--budget", "2M"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backbone"] == 2_000_000 and data["setting"]["ring_size"] < 2_000_000
    assert data["dense"] == 11_689_512  # the deployed model is a full ResNet-18


def test_list_names_suites_tasks_methods(capsys):
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    for word in ("digits", "rpg", "plain", "resnet18-cifar"):
        assert word in text


BAD = [
    (["--suite", "nope"], "unknown suite 'nope'"),
    (["--methods", "nope"], "unknown method 'nope'"),
    (["--profile", "nope"], "unknown profile 'nope'"),
    (["--device", "cuda"], "no CUDA device"),
    (["--seeds", "0"], "--seeds must be between 1 and 1000, got 0"),
    (["plan", "--seeds", "10000000"], "--seeds must be between 1 and 1000, got 10000000"),
    (["--bogus"], "unrecognized arguments"),
    # No abbreviations: a near-miss is refused with the option meant, not silently expanded.
    (["--seed", "2"], "unrecognized arguments: --seed 2; did you mean --seeds? `rpg-bench run --help`"),
    (["--claim", "t2.*"], "did you mean --claims?"),
    (["run", "--data", "x"], "did you mean --data-root?"),
    (["plan", "--tflop", "3"], "did you mean --tflops? `rpg-bench plan --help`"),
    (["report", "x", "--compar", "y"], "did you mean --compare?"),
    (["claims", "--suit", "digits"], "did you mean --suite?"),
    (["ledger", "--arch", "resnet18", "--method", "rpg", "--budget", "10"], "rpg cannot reach"),
    (["ledger", "--arch", "resnet18", "--method", "rpg", "--budget", "lots"], "not a parameter count"),
    (["report", "/nonexistent/folder"], "holds no rpg-bench records"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if args[0] not in ("report", "ledger", "plan") and "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out")]
    if "--device" in args and __import__("torch").cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rpg-bench: error:") and message in err
    assert list(tmp_path.iterdir()) == []


def test_no_parser_reads_abbreviations():
    top = cli.parser()
    subs = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = [top, *subs[0].choices.values()]
    assert len(parsers) == len(cli.COMMANDS) + 1 and not any(p.allow_abbrev for p in parsers)


def test_malformed_suite_files_name_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[experiment]]\nname = "e"\ntask = digits\n')
    assert cli.main(["--suite", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 4" in err
    bad.write_text('name = "x"\n[[experiment]]\nname = "e"\ntask = "digits"\nmethods = ["rpg"]\nbudgets = ["1K"]\n')
    assert cli.main(["--suite", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "rpg cannot reach 1K" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("experiment = 5\n", "no [[experiment]] tables"),
        ('[[experiment]]\nname = "e"\ntask = "digits"\nmethods = ["rpg"]\nbudgets = 5000\n', "budgets must be"),
        ('[[experiment]]\nname = "e"\ntask = "digits"\nmethods = ["rpg"]\nbudgets = []\n', "budgets must be"),
        ('[[experiment]]\nname = "e"\ntask = "digits"\nmethods = "rpg"\nbudgets = ["5K"]\n', "methods must be"),
        ('[[experiment]]\nname = "e"\ntask = "nope"\nmethods = ["rpg"]\nbudgets = ["5K"]\n', "unknown task"),
        (
            '[[experiment]]\nname = "e"\ntask = "digits"\narch = "vgg"\nmethods = ["rpg"]\nbudgets = ["5K"]\n',
            "unknown architecture",
        ),
    ],
)
def test_suite_files_of_the_wrong_shape_exit_2(body, message, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n' + body)
    assert cli.main(["--suite", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(bad) in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_corrupt_record_stops_the_run_before_anything_is_written(smoke_run, tmp_path, capsys):

    out = tmp_path / "out"
    shutil.copytree(smoke_run[0], out)
    victim = next((out / "records").glob("*.json"))
    victim.write_text(victim.read_text()[:100])  # truncated
    before = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}
    assert cli.main([*SMOKE, "--out", str(out)]) == 2
    assert "truncated" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (out / "records").glob("*.json")} == before


@pytest.mark.slow
def test_the_console_script_runs(tmp_path):
    exe = Path(sys.executable).with_name("rpg-bench")
    result = subprocess.run([str(exe), "list"], capture_output=True, text=True, env={**os.environ}, timeout=300)
    assert result.returncode == 0 and "digits" in result.stdout
    result = subprocess.run([str(exe), "--suite", "nope"], capture_output=True, text=True, timeout=300)
    known = "cifar, digits, fashion, imagenet, multitask, pose, pruning"
    expected = f"rpg-bench: error: unknown suite 'nope'; known: {known}"
    assert result.returncode == 2 and result.stderr.strip() == expected


def test_speed_rejects_bad_flags_in_one_line(capsys):
    assert cli.main(["speed", "--batch", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch" in err


@pytest.mark.slow
def test_the_image_s_environment_sets_the_data_root_and_the_reports_folder(tmp_path, monkeypatch, capsys):
    """What the Dockerfile relies on (RPG_BENCH_DATA_ROOT=/data, RPG_BENCH_REPORTS=/reports),
    checked outside the image: the data root reaches the reader, the run lands under it."""
    from suite.data import cifar

    cifar.write_generated(tmp_path / "data", "cifar100")  # present, but not the real files
    monkeypatch.setenv("RPG_BENCH_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("RPG_BENCH_REPORTS", str(tmp_path / "reports"))
    assert cli.main(["--suite", "cifar", "--profile", "full"]) == 2
    err = capsys.readouterr().err
    assert f"not found or corrupt under {tmp_path / 'data'}" in err and "cifar-100-python" in err
    assert cli.main([*SMOKE, "--methods", "rpg"]) == 0
    assert (tmp_path / "reports" / "digits" / "index.html").is_file()


@pytest.mark.slow
def test_every_cell_keeps_a_log_of_its_epochs(smoke_run):
    out, _ = smoke_run
    for record in records(out).values():
        key = record["key"]
        lines = (out / "logs" / f"{key}.log").read_text().splitlines()
        epochs = [line for line in lines if " epoch " in line]
        assert len(epochs) == len(record["training"]["history"]) > 0, key
        assert any("tested:" in line for line in lines) and any("measured" in line for line in lines)


def test_python_dash_m_suite_is_the_command_line(monkeypatch, capsys):
    """``python -m suite`` (the form torchrun launches) is rpg-bench itself."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["python -m suite", "list"])
    with pytest.raises(SystemExit) as ended:
        runpy.run_module("suite", run_name="__main__")
    assert ended.value.code in (0, None)
    assert "suites:" in capsys.readouterr().out


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`rpg-bench list | head -1`: the closed pipe ends the command with 141, not an error line."""
    import subprocess

    child = subprocess.Popen(
        [sys.executable, "-m", "suite", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    child.stdout.close()  # before it writes: its first write meets a closed pipe
    assert child.wait(timeout=120) == 141
    assert child.stderr.read() == ""
