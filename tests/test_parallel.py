"""Cells side by side (--jobs) and one cell across processes (torchrun): real processes.

Every process here runs one thread (OMP_NUM_THREADS=1), so runs of different shapes can be
compared bit for bit: the floating-point order of a CPU kernel depends on its threads.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from suite import cells, tasks
from suite.training.train import fit

BIN = Path(sys.executable).parent
EXE = str(BIN / "rpg-bench")
SUITE = """name = "par"
[[experiment]]
name = "par"
task = "digits"
methods = ["rpg"]
budgets = ["20K", "80K"]
seeds = 1
"""
ARGS = ["--profile", "smoke", "--no-progress", "--no-open", "--no-onnx"]
# Every progress update a line (a captured stderr is a log: one line every 30 s by default).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RPG_BENCH_PROGRESS_SECONDS": "0"}


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}


def _essence(record: dict) -> dict:
    return {k: record[k] for k in ("key", "config", "status", "metrics", "ledger", "setting", "training")}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The suite run one cell at a time: what every other shape of run must reproduce."""
    folder = tmp_path_factory.mktemp("parallel")
    suite = folder / "par.toml"
    suite.write_text(SUITE)
    out = folder / "serial"
    subprocess.run([EXE, "--suite", str(suite), "--out", str(out), *ARGS], check=True, timeout=600, env=ENV)
    return suite, _records(out)


def test_jobs_run_cells_side_by_side_with_the_results_of_a_serial_run(serial, tmp_path):
    suite, expected = serial
    out = tmp_path / "jobs"
    shown = [a for a in ARGS if a != "--no-progress"]  # the parent's one bar, with each running cell's epoch
    done = subprocess.run(
        [EXE, "--suite", str(suite), "--out", str(out), "--jobs", "2", *shown],
        check=True, timeout=600, env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    told = set(re.findall(r"par rpg@(\d+) seed 0 epoch (\d+)/(\d+)", done.stderr))
    assert {budget for budget, _, _ in told} == {"20000", "80000"}, done.stderr[-2000:]  # both cells' epochs
    got = _records(out)
    assert {k: _essence(r) for k, r in got.items()} == {k: _essence(r) for k, r in expected.items()}
    assert json.loads((out / "run.json").read_text())["jobs"] == 2
    assert (out / "index.html").exists()
    # Both rings deploy the same dense network: measured once, by one worker, whichever
    # reached it first (the other waits for its figures; suite.measure.cache).
    assert len({r["measured_by"]["deployed"] for r in got.values()}) == 1, [r["measured_by"] for r in got.values()]

    # Measured with the other worker standing still (suite.system.quiet): the serial run's latency,
    # within the noise of a smoke profile's short timing.
    def latency(r: dict) -> float:
        return r["latency"]["deployed"]["batchN"]["median_ms"]

    for k, r in got.items():
        assert 0.5 < latency(r) / latency(expected[k]) < 2.0, (k, latency(r), latency(expected[k]))


def _workers(pid: int) -> list[int]:
    """The spawned worker processes among ``pid``'s children."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_a_killed_worker_costs_only_its_cell_and_the_rerun_completes_it(serial, tmp_path):
    suite, expected = serial
    out = tmp_path / "killed"
    proc = subprocess.Popen([EXE, "--suite", str(suite), "--out", str(out), "--jobs", "2", *ARGS], env=ENV)
    checkpoints = out / cells.CHECKPOINTS
    deadline = time.time() + 300
    while not (checkpoints.is_dir() and any(checkpoints.glob("*.pt"))) and time.time() < deadline:
        time.sleep(0.01)
    victims = _workers(proc.pid)
    assert victims, "no worker process found"
    os.kill(victims[0], signal.SIGKILL)  # what the kernel's OOM killer does
    assert proc.wait(timeout=600) == 1, "a failed cell makes the run exit 1"
    got = _records(out)
    assert set(got) == set(expected), "every cell has a record, the lost one too"
    failed = [r for r in got.values() if r["status"] != "ok"]
    assert len(failed) == 1 and "worker process died" in failed[0]["error"]

    subprocess.run([EXE, "--suite", str(suite), "--out", str(out), *ARGS], check=True, timeout=600, env=ENV)
    assert {k: _essence(r) for k, r in _records(out).items()} == {k: _essence(r) for k, r in expected.items()}


def test_torchrun_trains_each_cell_across_ranks_and_rank_0_records_it(serial, tmp_path):
    suite, expected = serial
    out = tmp_path / "ddp"
    torchrun = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "suite"]
    subprocess.run([*torchrun, "--suite", str(suite), "--out", str(out), *ARGS], check=True, timeout=600, env=ENV)
    got = _records(out)
    assert set(got) == set(expected)
    two = {"world_size": 2, "sync_batchnorm": False}
    assert all(r["status"] == "ok" and r["distributed"] == two for r in got.values())
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    assert not list((out / cells.CHECKPOINTS).glob("*.pt"))
    assert (out / "index.html").exists()


def test_torchrun_refuses_jobs(tmp_path):
    torchrun = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "suite"]
    proc = subprocess.run(
        [*torchrun, "--jobs", "2", "--out", str(tmp_path / "x"), *ARGS], capture_output=True, text=True, env=ENV
    )
    assert proc.returncode != 0 and "under torchrun the GPUs already share each cell" in proc.stderr


DDP_SCRIPT = """
import sys, torch
from torch import nn
from suite import tasks
from suite.system import distributed
from suite.training.train import fit
device = distributed.setup(torch.device("cpu"))
task = tasks.get(sys.argv[2])
splits = task.load(None, device, "smoke")
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
model(splits.head("train", 1)[0])
fit(model, task, splits, tasks.Recipe(epochs=1, batch_size=101, lr=0.1), seed=0, progress=False)
if distributed.is_main():
    torch.save(model.state_dict(), sys.argv[1])
distributed.teardown()
"""


@pytest.mark.parametrize("task_name", ["digits", "imagenet"])
def test_data_parallel_training_takes_the_global_batch_gradient(task_name, tmp_path):
    """Two ranks with uneven slices (a batch of 101) train the weights one process trains:
    in-memory data sliced from the global batch, and ImageNet's stream, where each rank
    decodes only its share."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    torchrun = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"]
    subprocess.run([*torchrun, str(script), str(tmp_path / "ddp.pt"), task_name], check=True, timeout=300, env=ENV)
    distributed_state = torch.load(tmp_path / "ddp.pt", weights_only=True)

    task = tasks.get(task_name)
    splits = task.load(None, torch.device("cpu"), "smoke")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
    model(splits.head("train", 1)[0])
    before = model[1].weight.detach().clone()
    fit(model, task, splits, tasks.Recipe(epochs=1, batch_size=101, lr=0.1), seed=0, progress=False)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(distributed_state[name], value, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(model[1].weight, before, atol=1e-2), "training should move the weights"


def test_a_suite_of_small_cells_runs_them_side_by_side_on_a_cpu_by_default(tmp_path):
    """A suite whose cells keep one thread busy (threads_per_cell = 1, as digits says):
    without --jobs, a CPU with two threads runs two at once; a CPU of one thread runs one."""
    suite = tmp_path / "small.toml"
    suite.write_text("threads_per_cell = 1\n" + SUITE)
    for threads, jobs in (("2", 2), ("1", 1)):
        out = tmp_path / threads
        argv = [EXE, "--suite", str(suite), "--out", str(out), *ARGS]
        subprocess.run(argv, check=True, timeout=600, env={**ENV, "OMP_NUM_THREADS": threads})
        assert json.loads((out / "run.json").read_text())["jobs"] == jobs
        records = _records(out).values()
        assert len(records) == 2 and all(r["status"] == "ok" for r in records)
        assert all(r.get("jobs", 1) == jobs for r in records)


def test_default_jobs_follow_the_suite_the_device_and_the_threads(monkeypatch):
    from suite.run import runner
    from suite.suites import spec

    digits, cifar = spec.load("digits"), spec.load("cifar")
    assert digits.threads_per_cell == 1 and cifar.threads_per_cell is None
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert runner.default_jobs(digits, cpu, 24) == 8
    assert runner.default_jobs(digits, cpu, 3) == 3  # never more workers than cells
    assert runner.default_jobs(cifar, cpu, 24) == 1
    assert runner.default_jobs(digits, torch.device("cuda"), 24) == 1  # a GPU: one cell per device, as asked
    assert runner.default_jobs(digits, None, 24) == 1  # a launcher: each task decides on its node


@pytest.mark.parametrize("value", ["0", "true", '"2"', "1.5"])
def test_threads_per_cell_must_be_a_positive_integer(value, tmp_path):
    from suite.errors import UsageError
    from suite.suites import spec

    path = tmp_path / "bad.toml"
    path.write_text(f"threads_per_cell = {value}\n" + SUITE)
    with pytest.raises(UsageError, match="threads_per_cell must be a positive integer"):
        spec.load(str(path))
