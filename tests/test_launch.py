"""--launcher: the run's shards as one submitit job array and a merge. End to end with
submitit's local executor (real processes training digits cells); the Slurm submission
against a stand-in `sbatch` that keeps the scripts it is given; bad input."""

import os
import stat
import sys

import pytest

from suite import cli, records
from suite.run import launch, runner, shards
from suite.suites import spec

SMOKE = ["--suite", "digits", "--profile", "smoke", "--seeds", "1", "--no-onnx", "--no-open"]


@pytest.mark.slow
def test_a_local_job_array_trains_every_shard_merges_them_and_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([*SMOKE, "--launcher", "local", "--shards", "2", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "0 already finished" in said and "submitted 2 tasks (local)" in said
    cells = runner.expand(spec.load("digits"), "smoke", 1)
    run, merged = records.read_run(out)
    assert sorted(r["key"] for r in merged) == sorted(c.key() for c in cells)
    assert all(r["status"] == "ok" for r in merged) and (out / "index.html").is_file()
    assert run["merged_from"] == [str(launch.folder(out, k, 2)) for k in (1, 2)]
    for k, part in enumerate(shards.partition(cells, 2), 1):  # each task ran its shard, as --shard K/2 would
        shard_run, shard_records = records.read_run(launch.folder(out, k, 2))
        assert shard_run["shard"] == f"{k}/2" and {r["key"] for r in shard_records} == {c.key() for c in part}
        assert "--launcher" not in shard_run["command"] and f"--shard {k}/2" in shard_run["command"]
    before = {p.name: p.read_text() for p in (out / records.RECORDS).iterdir()}
    # The same command again: both shards are finished, nothing is submitted, the merge is the same.
    assert cli.main([*SMOKE, "--launcher", "local", "--shards", "2", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 already finished" in said and "submitted" not in said
    assert {p.name: p.read_text() for p in (out / records.RECORDS).iterdir()} == before


@pytest.fixture
def sbatch(tmp_path, monkeypatch):
    """A stand-in sbatch on PATH: keeps each script it is given and answers with a job id."""
    bin_, kept = tmp_path / "bin", tmp_path / "scripts"
    bin_.mkdir()
    kept.mkdir()
    script = bin_ / "sbatch"
    script.write_text(
        f'#!/bin/sh\nn=$(ls "{kept}" | wc -l)\ncp "$1" "{kept}/$n.sh"\necho "Submitted batch job $((4200 + n))"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    srun = bin_ / "srun"  # named in the task's script; never run here
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(script.stat().st_mode)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    return kept


@pytest.mark.slow
def test_slurm_submits_one_array_of_shards_and_a_merge_that_waits_for_it(tmp_path, sbatch, capsys):
    out = tmp_path / "out"
    argv = [*SMOKE, "--launcher", "slurm", "--shards", "3", "--slurm-partition", "gpu", "--slurm-gpus-per-node", "2"]
    argv += ["--slurm-time", "1-12:00:00", "--slurm-option", "account=lab", "--set", "epochs=1", "--out", str(out)]
    assert cli.main(argv) == 0
    said = capsys.readouterr().out
    assert "submitted 3 tasks (slurm): job 4200" in said and "merge job 4201" in said
    array, merge = (sbatch / "0.sh").read_text(), (sbatch / "1.sh").read_text()
    assert "#SBATCH --array=0-2%3" in array and "#SBATCH --partition=gpu" in array
    assert "#SBATCH --gpus-per-node=2" in array and "#SBATCH --time=2160" in array
    assert "#SBATCH --account=lab" in array and "--cpus-per-task=16" in array
    assert "#SBATCH --dependency=afterany:4200" in merge and "--gpus-per-node" not in merge
    # What each task runs: its shard, its folder, one worker per GPU, every choice of cells.
    pickled = sorted((out / launch.LOGS).glob("*_submitted.pkl"))
    assert len(pickled) == 4  # three tasks and the merge
    args = cli.parser().parse_args(["run", *argv])
    first = launch.task_argv(args, 1, 3, launch.folder(out, 1, 3))
    assert first[first.index("--jobs") + 1] == "2" and first[first.index("--set") + 1] == "epochs=1"
    assert first[-6:] == ["--shard", "1/3", "--out", str(launch.folder(out, 1, 3)), "--no-progress", "--no-open"]
    assert not (out / records.RECORDS).exists()  # nothing trained or merged here


def test_every_run_option_is_forwarded_to_the_tasks_or_is_the_launchers_own():
    run = next(a for a in cli.parser()._subparsers._group_actions[0].choices.items() if a[0] == "run")[1]
    dests = {a.dest for a in run._actions} - {"help"}
    forwarded = {dest for _, dest in launch.FORWARDED}
    assert dests == forwarded | (set(launch.OWN) & dests), dests - forwarded - set(launch.OWN)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--slurm-partition", "gpu"], "--slurm-partition: only with --launcher slurm"),
        (["--wait"], "--wait: only with --launcher slurm"),
        (["--launcher", "local", "--shard", "1/2"], "leave out --shard"),
        (["--launcher", "local", "--slurm-time", "10"], "--slurm-time: only with --launcher slurm"),
        (["--launcher", "slurm", "--slurm-time", "soon"], "--slurm-time soon: write minutes"),
        (["--launcher", "slurm", "--slurm-time", "0:30"], "at least a minute"),
        (["--launcher", "slurm", "--slurm-option", "account"], "--slurm-option account: write KEY=VALUE"),
        (["--launcher", "local", "--shards", "0"], "--shards must be at least 1"),
        (["--launcher", "slurm"], "--launcher slurm: no Slurm here (sbatch and srun not found)"),
    ],
)
def test_launcher_options_that_cannot_be_are_one_line_and_exit_2(extra, message, tmp_path, capsys):
    assert cli.main([*SMOKE, *extra, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_without_submitit_the_launcher_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # an import of it fails, as when not installed
    assert cli.main([*SMOKE, "--launcher", "local", "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'rpg-bench[slurm]'" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "minutes"), [("90", 90), ("24:00:00", 1440), ("1-12:00:00", 2160), ("30:00", 30)])
def test_slurm_time_limits_read_as_slurm_writes_them(text, minutes):
    assert launch.minutes(text) == minutes


def test_the_missing_data_root_is_found_before_anything_is_submitted(tmp_path, sbatch, capsys):
    argv = ["--suite", "cifar", "--launcher", "slurm", "--out", str(tmp_path / "out")]
    assert cli.main([*argv, "--data-root", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not list(sbatch.iterdir()) and not (tmp_path / "out").exists()
