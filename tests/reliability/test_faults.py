"""The fault battery: a --jobs 2 run killed or stopped the ways CI runners, the OOM killer
and ``docker stop`` do, run directly and under ``--launcher local`` (submitit's controller
and task processes between the command and its rpg-bench). Real processes on the digits
smoke profile, three cells.

Which processes belong to a run is read from /proc, never from the code under test: every
process the run starts inherits a marker in its environment (the command's, the workers',
the memory probes', submitit's), and /proc/<pid>/environ keeps it. Whatever a test asserts,
its ``finally`` kills every marked process, so a failing test leaves nothing behind either.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads processes from /proc"),
]

EXE = str(Path(sys.executable).with_name("rpg-bench"))
MARK = "RPG_BENCH_FAULT_TEST"
SUITE = """name = "faults"
[[experiment]]
name = "ring"
task = "digits"
methods = ["rpg"]
budgets = ["20K"]
seeds = 1
[[experiment]]
name = "plain"
task = "digits"
methods = ["plain"]
budgets = ["20K", "80K"]
seeds = 1
"""
# One thread per process: the clean run and every resumed one train on the same threads,
# so their metrics can be compared bit for bit (a CPU kernel's sums depend on its threads).
ARGS = ["--profile", "smoke", "--no-progress", "--no-open", "--no-onnx", "--jobs", "2"]
LAUNCHED = ["--launcher", "local", "--shards", "1"]  # one task: its rpg-bench runs --jobs 2
FIELDS = ("key", "config", "status", "metrics", "ledger", "setting", "training")


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}


def _essence(out: Path) -> dict[str, dict]:
    return {key: {f: r[f] for f in FIELDS} for key, r in _records(out).items()}


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _marked(marker: str) -> list[int]:
    """The living processes whose environment carries ``marker`` (zombies have none)."""
    needle = f"{MARK}={marker}".encode()
    return [pid for pid in _pids() if needle in _read(Path(f"/proc/{pid}/environ")).split(b"\0")]


def _holding(folder: Path) -> dict[int, list[str]]:
    """The processes with a file (or their working folder) under ``folder``, and which."""
    found = {}
    for pid in _pids():
        held = []
        for link in [Path(f"/proc/{pid}/cwd"), *Path(f"/proc/{pid}/fd").glob("*")]:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target == str(folder) or target.startswith(f"{folder}/"):
                held.append(target)
        if held:
            found[pid] = held
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Run:
    """One rpg-bench command in its own session, with the marker; ``close`` kills whatever
    of it is left."""

    def __init__(self, suite: Path, out: Path, extra: list[str] = ()) -> None:
        self.marker = uuid.uuid4().hex
        env = {**os.environ, MARK: self.marker, "OMP_NUM_THREADS": "1"}
        argv = [EXE, "--suite", str(suite), "--out", str(out), *ARGS, *extra]
        self.err = out.with_name(f"{out.name}-{self.marker[:8]}.err")  # a file: a pipe nobody reads could fill
        with self.err.open("w") as err:
            self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        self.out = out
        self.logs = out / "shards" / "1-of-1" / "logs" if "--launcher" in extra else out / "logs"

    def wait(self, timeout: float) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        return code, self.err.read_text()

    def training(self, deadline: float = 600) -> str:
        """Wait until a cell is past its first epoch and not yet tested: its key."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert self.proc.poll() is None, "the run ended before a cell was seen training"
            for log in self.logs.glob("*.log"):
                text = _read(log)
                if b"epoch 1/" in text and b"tested:" not in text:
                    return log.stem
            time.sleep(0.05)
        raise AssertionError("no cell was seen training")

    def worker_of(self, key: str) -> int | None:
        """The worker process running cell ``key`` (it holds the cell's log open)."""
        held = _holding(self.out)
        for pid in _marked(self.marker):
            logs = [target for target in held.get(pid, []) if target.endswith(f"/logs/{key}.log")]
            if logs and b"spawn_main" in _read(Path(f"/proc/{pid}/cmdline")):
                return pid
        return None

    def close(self) -> None:
        _kill([self.proc.pid, *_marked(self.marker)])
        self.proc.wait()


def _gone(run: Run, seconds: float) -> None:
    """Within ``seconds``: no process of the run left, none holding its folder."""
    end = time.monotonic() + seconds
    while (_marked(run.marker) or _holding(run.out)) and time.monotonic() < end:
        time.sleep(0.2)
    assert not _marked(run.marker), f"processes of the run left: {_marked(run.marker)}"
    assert not _holding(run.out), f"processes holding the output folder: {_holding(run.out)}"


def _again(suite: Path, out: Path, extra: list[str]) -> int:
    """The same command again, to its end."""
    run = Run(suite, out, extra)
    try:
        return run.wait(900)[0]
    finally:
        run.close()


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The suite run from start to end: what every interrupted run must come back to."""
    folder = tmp_path_factory.mktemp("faults")
    suite = folder / "faults.toml"
    suite.write_text(SUITE)
    out = folder / "clean"
    assert _again(suite, out, []) == 0
    return suite, _essence(out)


@pytest.mark.parametrize("extra", [[], LAUNCHED], ids=["jobs", "launcher-local"])
def test_sigkill_of_the_parent_leaves_nothing_running_and_the_rerun_equals_a_clean_run(extra, clean, tmp_path):
    suite, expected = clean
    out = tmp_path / "out"
    run = Run(suite, out, extra)
    try:
        run.training()
        os.kill(run.proc.pid, signal.SIGKILL)  # what a CI runner's hard kill and subprocess timeouts do
        run.wait(60)
        _gone(run, 20)
    finally:
        run.close()
    assert _again(suite, out, extra) == 0
    assert _essence(out) == expected


@pytest.mark.parametrize("extra", [[], LAUNCHED], ids=["jobs", "launcher-local"])
def test_sigterm_stops_within_a_minute_with_its_workers_and_the_rerun_equals_a_clean_run(extra, clean, tmp_path):
    suite, expected = clean
    out = tmp_path / "out"
    run = Run(suite, out, extra)
    try:
        key = run.training()
        os.kill(run.proc.pid, signal.SIGTERM)
        code, err = run.wait(60)
        assert code == 143, err
        lines = err.strip().splitlines()
        assert lines[-1].startswith("rpg-bench: stopped by SIGTERM: ") and lines[-1].endswith(
            "of 3 cells done, run the same command to resume"
        ), err
        assert "Traceback" not in err, err
        _gone(run, 5)
    finally:
        run.close()
    shard = out / "shards" / "1-of-1" if extra else out
    assert (shard / "checkpoints" / f"{key}.pt").is_file(), "the cell in training wrote its checkpoint"
    assert key not in _records(shard), "a stopped cell has no record"
    if not extra:  # the task's rpg-bench resumes as this one does: the battery's minutes go elsewhere
        assert _again(suite, out, extra) == 0
        assert _essence(out) == expected


@pytest.mark.parametrize("extra", [[], LAUNCHED], ids=["jobs", "launcher-local"])
def test_a_worker_killed_while_training_is_one_failed_cell_naming_its_signal(extra, clean, tmp_path):
    suite, expected = clean
    out = tmp_path / "out"
    run = Run(suite, out, extra)
    try:
        end = time.monotonic() + 600
        while (victim := run.worker_of(key := run.training())) is None:
            assert time.monotonic() < end, "no worker found holding a training cell's log"
        os.kill(victim, signal.SIGKILL)  # what the kernel's OOM killer does
        code, err = run.wait(900)
        assert code == 1, err  # a failed cell's exit
        _gone(run, 5)
    finally:
        run.close()
    got = _records(out)
    assert set(got) == set(expected), "every cell has a record"
    assert got[key]["status"] == "failed" and "killed by SIGKILL" in got[key]["error"], got[key]
    assert all(r["status"] == "ok" for k, r in got.items() if k != key), "the other cells completed"
    assert _again(suite, out, extra) == 0  # the same command reruns the lost cell
    assert _essence(out) == expected
