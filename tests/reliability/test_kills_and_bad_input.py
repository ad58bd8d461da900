"""Runs survive kills and bad input, lose nothing, and repeat exactly: real processes."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from suite import cells, cli, tasks
from suite.run import pipeline, runner

EXE = str(Path(sys.executable).with_name("rpg-bench"))
SUITE = """name = "kill"
[[experiment]]
name = "kill"
task = "digits"
methods = ["rpg"]
budgets = ["80K"]
seeds = 1
"""
ARGS = ["--profile", "smoke", "--no-progress", "--no-open", "--no-onnx", "--jobs", "1"]  # stand-ins: one process


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]


def _essence(record: dict) -> dict:
    """What must repeat exactly: everything but timings, timestamps and the machine."""
    return {k: record[k] for k in ("key", "config", "status", "metrics", "ledger", "setting", "training")}


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_equals_an_uninterrupted_run(tmp_path):
    suite = tmp_path / "kill.toml"
    suite.write_text(SUITE)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run([EXE, "--suite", str(suite), "--out", str(clean), *ARGS], check=True, timeout=600)

    proc = subprocess.Popen([EXE, "--suite", str(suite), "--out", str(killed), *ARGS])
    checkpoints = killed / cells.CHECKPOINTS
    deadline = time.time() + 300
    while not (checkpoints.is_dir() and any(checkpoints.glob("*.pt"))) and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list(checkpoints.glob("*.pt")), "the kill should land after the first epoch's checkpoint"
    assert _records(killed) == [], "the kill should land before the cell's record"

    subprocess.run([EXE, "--suite", str(suite), "--out", str(killed), *ARGS], check=True, timeout=600)
    assert [_essence(r) for r in _records(killed)] == [_essence(r) for r in _records(clean)]
    assert not list(checkpoints.glob("*.pt")), "a finished cell leaves no checkpoint"
    assert not [p for p in (killed / "records").iterdir() if p.name.startswith(".")], "no partial temp files"


def test_a_second_process_on_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write("pid 424242")
        f.flush()
        assert (
            cli.main(["--profile", "smoke", "--out", str(out), "--no-progress", "--methods", "rpg", "--jobs", "1"]) == 2
        )
    err = capsys.readouterr().err
    assert "in use by another rpg-bench (pid 424242)" in err and err.count("\n") == 1
    assert not (out / "records").exists()


@pytest.mark.slow
def test_a_diverging_cell_fails_with_its_reason_and_the_suite_goes_on(tmp_path, monkeypatch, capsys):
    real = tasks.get("digits").loss

    def loss(output, target):
        value = real(output, target)
        # The plain cells diverge at once; the rpg cells train normally.
        return value * float("nan") if _plain[0] else value

    _plain = [False]
    real_build = runner.methods.build

    def build(method, net, budget, seed, *rest):
        _plain[0] = method.name == "plain"
        return real_build(method, net, budget, seed, *rest)

    monkeypatch.setattr(tasks.get("digits"), "loss", loss)
    monkeypatch.setattr(runner.methods, "build", build)
    out = tmp_path / "out"
    code = cli.main([*ARGS, "--seeds", "1", "--out", str(out)])
    assert code == 1
    recs = _records(out)
    failed = [r for r in recs if r["status"] == "failed"]
    assert {r["config"]["method"] for r in failed} == {"plain"}
    assert all("Diverged: loss became nan at epoch 1" in r["error"] for r in failed)
    assert {r["config"]["method"] for r in recs if r["status"] == "ok"} == {"rpg"}
    assert "Failed cells" in (out / "index.html").read_text()


@pytest.mark.slow
def test_checkpoints_load_without_unpickling_code(tmp_path):
    """A checkpoint is tensors and plain containers: torch.load(weights_only=True) reads it."""
    cell = runner.Cell("t", "t", "digits", "resnet18-cifar", 0.25, "rpg", 20_000, 0, "smoke")
    splits = tasks.get("digits").load(None, torch.device("cpu"), "full")
    path = tmp_path / "c.pt"
    pipeline.run_cell(cell, splits, torch.device("cpu"), progress=False, onnx=False, checkpoint=path)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == cell.recipe().epochs and set(state) >= {"model", "optimizer", "scheduler", "shuffle"}


@pytest.mark.slow
def test_sigint_stops_cleanly_and_the_rerun_finishes_the_same(tmp_path):
    suite = tmp_path / "kill.toml"
    suite.write_text(SUITE)
    clean, stopped = tmp_path / "clean", tmp_path / "stopped"
    subprocess.run([EXE, "--suite", str(suite), "--out", str(clean), *ARGS], check=True, timeout=600)
    # A job started in the background of a shell without job control inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler: give the run the
    # default disposition, as a terminal's Ctrl-C would find it.
    proc = subprocess.Popen(
        [EXE, "--suite", str(suite), "--out", str(stopped), *ARGS],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    checkpoints = stopped / cells.CHECKPOINTS
    deadline = time.time() + 300
    while not (checkpoints.is_dir() and any(checkpoints.glob("*.pt"))) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "stopped by SIGINT: 0 of 1 cells done, run the same command to resume" in err and "Traceback" not in err
    subprocess.run([EXE, "--suite", str(suite), "--out", str(stopped), *ARGS], check=True, timeout=600)
    assert [_essence(r) for r in _records(stopped)] == [_essence(r) for r in _records(clean)]


def test_corrupt_embedded_data_is_refused_by_its_checksum(tmp_path, monkeypatch, capsys):
    import sklearn.datasets
    from sklearn.datasets import load_digits

    def corrupt():
        data = load_digits()
        data.images[3, 4, 4] += 1.0
        data.data[3, 36] += 1.0
        return data

    monkeypatch.setattr(sklearn.datasets, "load_digits", corrupt)  # suite.data.digits imports it when it reads
    out = tmp_path / "out"
    assert cli.main([*ARGS, "--out", str(out)]) == 2
    assert "known checksum" in capsys.readouterr().err
    assert not out.exists()


def test_an_out_that_cannot_be_a_folder_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main([*ARGS, "--out", str(blocker / "out")]) == 2
    assert "is not a writable folder" in capsys.readouterr().err


@pytest.mark.slow
def test_a_malformed_claims_file_is_named(tmp_path, monkeypatch, smoke_run, capsys):
    from suite import claims

    folder = tmp_path / "pkg"
    (folder / "claims").mkdir(parents=True)
    (folder / "claims" / "bad.toml").write_text('[[claim]]\nid = "x"\nkind = \n')
    monkeypatch.setattr(claims.schema.resources, "files", lambda package: folder)
    out = tmp_path / "out"
    import shutil

    shutil.copytree(smoke_run[0], out)
    assert cli.main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml is malformed" in err and "line 3" in err


SHARDED = """name = "sharded"
[[experiment]]
name = "sharded"
task = "digits"
methods = ["rpg", "plain"]
budgets = ["5K", "20K"]
seeds = 1
"""


@pytest.mark.slow
def test_shards_partition_the_cells_and_merge_to_an_unsharded_run(tmp_path, capsys):
    suite = tmp_path / "sharded.toml"
    suite.write_text(SHARDED)
    whole, one, two, merged = (tmp_path / n for n in ("whole", "one", "two", "merged"))
    assert cli.main(["--suite", str(suite), "--out", str(whole), *ARGS]) == 0
    assert cli.main(["--suite", str(suite), "--out", str(one), "--shard", "1/2", *ARGS]) == 0
    assert cli.main(["--suite", str(suite), "--out", str(two), "--shard", "2/2", *ARGS]) == 0
    assert len(_records(one)) + len(_records(two)) == 4 and _records(one) and _records(two)
    assert not {r["key"] for r in _records(one)} & {r["key"] for r in _records(two)}
    assert cli.main(["merge", str(one), str(two), "--out", str(merged)]) == 0
    assert [_essence(r) for r in _records(merged)] == [_essence(r) for r in _records(whole)]
    assert (merged / "index.html").is_file()
    assert sorted(json.loads((merged / "run.json").read_text())["keys"]) == sorted(
        json.loads((whole / "run.json").read_text())["keys"]
    )
    capsys.readouterr()

    # A shard missing: refused, unless --partial, which lists its cells as not recorded.
    assert cli.main(["merge", str(one), "--out", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "missing shards: 2/2" in err and err.count("\n") == 1
    assert not (tmp_path / "nowhere").exists()
    partial = tmp_path / "partial"
    assert cli.main(["merge", "--partial", str(one), "--out", str(partial)]) == 0
    assert "missing shards: 2/2" in capsys.readouterr().err
    assert sorted(json.loads((partial / "run.json").read_text())["keys"]) == sorted(
        json.loads((whole / "run.json").read_text())["keys"]
    )
    html = (partial / "index.html").read_text()
    unrecorded = len(_records(two))
    assert f"{unrecorded} not recorded" in html and "shards 2/2 were not merged" in html

    # Shards of two different commands (another seed count lists other cells) do not merge.
    other = tmp_path / "other-command"
    shutil.copytree(two, other)
    run = json.loads((other / "run.json").read_text())
    run["run_keys"] = run["run_keys"][:-1]
    (other / "run.json").write_text(json.dumps(run))
    assert cli.main(["merge", str(one), str(other), "--out", str(tmp_path / "nowhere")]) == 2
    assert "shards of different commands" in capsys.readouterr().err

    # A cell both shards recorded with different results: refused, nothing written.
    clash = tmp_path / "clash"
    shutil.copytree(one, clash)
    record = next((clash / "records").glob("*.json"))
    data = json.loads(record.read_text())
    data["metrics"]["top1"] += 1.0
    record.write_text(json.dumps(data))
    assert cli.main(["merge", str(one), str(clash), "--out", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "conflicting shards" in err and err.count("\n") == 1
    assert not (tmp_path / "nowhere").exists()

    # Shards of different profiles do not merge.
    other = tmp_path / "other"
    shutil.copytree(two, other)
    run = json.loads((other / "run.json").read_text())
    run["profile"] = "full"
    (other / "run.json").write_text(json.dumps(run))
    assert cli.main(["merge", str(one), str(other), "--out", str(tmp_path / "nowhere")]) == 2
    assert "different profiles" in capsys.readouterr().err


@pytest.mark.parametrize(("shard", "message"), [("5/4", "out of range"), ("0/3", "out of range"), ("two", "write K/N")])
def test_a_shard_out_of_range_is_refused(shard, message, tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path / "out"), "--shard", shard, *ARGS]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
