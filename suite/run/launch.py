"""Slurm through submitit (``--launcher slurm``): one job array, one task per shard, then a merge.

``rpg-bench --suite S --launcher slurm --slurm-partition P`` partitions the run's cells into
``--shards N`` exactly as ``--shard K/N`` does (balanced by counted compute) and submits one
job array: task K runs ``rpg-bench run ... --shard K/N --out OUT/shards/K-of-N`` on its own
node with its GPUs (``--jobs G`` for G GPUs). A second job, started once every task has
ended (``afterany``), merges the shards into OUT and renders the report; a shard that never
wrote its folder makes that merge refuse, naming it, as ``rpg-bench merge`` always does.

Runs resume, as everywhere: the same command again resubmits only the shards with cells
still unrecorded (each skips its finished cells, and the cell it was in resumes from its
last epoch); a task that reaches its time limit is requeued by submitit with the same
command and resumes the same way. ``--launcher local`` runs the same array with submitit's
local executor (processes on this machine, the cores split between them) and waits for it:
how this path is tried, and tested, without a cluster.

Tasks run the command line itself (``python -m suite run ...``), so what a task ran is the
command its shard's run.json records, and nothing here imports the CLI back.

Nothing outlives the run (suite.system.lifeline): a task's rpg-bench gets SIGTERM, a clean stop,
when its task process dies, and a task passes SIGTERM and SIGINT on to it and waits. Locally
the task processes also die with the rpg-bench that launched them (submitit's controller
between them is not ours to change: each task watches the launcher itself), and a launcher
stopped by SIGTERM or Ctrl-C stops its tasks and waits for every process it started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from suite import records, report
from suite.cells import Cell
from suite.errors import UsageError
from suite.run import shards
from suite.system import lifeline, stopping

DEFAULT_SHARDS = 8
DEFAULT_TIME = "24:00:00"
SHARDS = "shards"  # OUT/shards/K-of-N: one folder per task, on the file system every node sees
LOGS = "submitit"  # OUT/submitit: submitit's pickles and each task's stdout and stderr
# A suite runs for days; Slurm's time limits are hours. Each timeout requeues the task, which
# resumes from its records and checkpoints, so a generous count loses nothing.
MAX_TIMEOUTS = 50
LAUNCHER = "RPG_BENCH_LAUNCHER"  # in a local task's environment: the launcher it dies with
STOP_SECONDS = 50.0  # how long a stopped local launcher waits for its processes to end


def arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("launching on a cluster (submitit; pip install 'rpg-bench[slurm]')")
    g.add_argument(
        "--launcher",
        choices=["slurm", "local"],
        help="submit the run as one job array of --shards tasks and a merge job (local: the same, as processes here)",
    )
    g.add_argument(
        "--shards", type=int, metavar="N", help=f"tasks in the array (default {DEFAULT_SHARDS}, at most the cells)"
    )
    g.add_argument("--slurm-partition", metavar="P", help="the partition the tasks run in (default: Slurm's)")
    g.add_argument("--slurm-gpus-per-node", type=int, metavar="G", help="GPUs per task (default 1); --jobs G on each")
    g.add_argument(
        "--slurm-time", metavar="T", help=f"each task's time limit, [D-]HH:MM[:SS] or minutes (default {DEFAULT_TIME})"
    )
    g.add_argument("--slurm-cpus-per-task", type=int, metavar="C", help="CPU cores per task (default 8 per GPU)")
    g.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option, repeatable (--slurm-option account=A --slurm-option qos=Q)",
    )
    g.add_argument("--wait", action="store_true", help="wait for the merge job and print the report's path")


# The run options a task receives, as (flag, the argparse dest): everything that chooses the
# cells or how they train. --out, --shard, progress and the browser are the launcher's.
FORWARDED = (
    ("--suite", "suite"),
    ("--profile", "profile"),
    ("--data-root", "data_root"),
    ("--device", "device"),
    ("--seeds", "seeds"),
    ("--methods", "methods"),
    ("--experiments", "experiments"),
    ("--claims", "claims"),
    ("--set", "set"),
    ("--precision", "precision"),
    ("--no-onnx", "no_onnx"),
    ("--compile", "compile"),
    ("--jobs", "jobs"),
)
OWN = ("launcher", "shards", "slurm_partition", "slurm_gpus_per_node", "slurm_time", "slurm_cpus_per_task")
OWN += ("slurm_option", "wait", "out", "shard", "no_progress", "open", "command")


def check(args: argparse.Namespace) -> None:
    """Refuse launcher options that cannot go together, before anything is built."""
    slurm_only = [f"--{k.replace('_', '-')}" for k in OWN if k.startswith("slurm_") and getattr(args, k, None)]
    if not args.launcher:
        if args.shards is not None or args.wait or slurm_only:
            given = slurm_only + (["--shards"] if args.shards is not None else []) + (["--wait"] if args.wait else [])
            raise UsageError(f"{', '.join(given)}: only with --launcher slurm (or local)")
        return
    if args.shard:
        raise UsageError("--launcher makes the shards itself: leave out --shard (use --shards N for how many)")
    if args.launcher == "local" and slurm_only:
        raise UsageError(f"{', '.join(slurm_only)}: only with --launcher slurm")
    if args.shards is not None and args.shards < 1:
        raise UsageError(f"--shards must be at least 1, got {args.shards}")
    if args.slurm_gpus_per_node is not None and args.slurm_gpus_per_node < 0:
        raise UsageError(f"--slurm-gpus-per-node must be 0 or more, got {args.slurm_gpus_per_node}")
    if args.slurm_cpus_per_task is not None and args.slurm_cpus_per_task < 1:
        raise UsageError(f"--slurm-cpus-per-task must be at least 1, got {args.slurm_cpus_per_task}")
    minutes(args.slurm_time or DEFAULT_TIME)
    options(args.slurm_option)
    _submitit()
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if args.launcher == "slurm" and missing:
        raise UsageError(
            f"--launcher slurm: no Slurm here ({' and '.join(missing)} not found): run it where jobs are submitted "
            "(a login node), or try --launcher local"
        )


def minutes(text: str) -> int:
    """A Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]) in whole minutes, at least 1."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise UsageError(f"--slurm-time {text}: write minutes, HH:MM:SS or D-HH:MM:SS (e.g. 24:00:00)")
    days, a, b, c = (int(x) if x else None for x in match.groups())
    if days is None and b is None:
        total = a * 60  # "90": minutes
    elif days is None and c is None:
        total = a * 60 + b  # "MM:SS"
    else:
        total = (days or 0) * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if total < 60:
        raise UsageError(f"--slurm-time {text}: a task needs at least a minute")
    return total // 60


def options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not re.fullmatch(r"[a-z][a-z0-9_-]*", key.strip()):
            raise UsageError(f"--slurm-option {pair}: write KEY=VALUE with an sbatch option's name (account=A)")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _submitit():
    try:
        import submitit
    except ImportError:
        raise UsageError("--launcher needs submitit, which is not installed: pip install 'rpg-bench[slurm]'") from None
    return submitit


def task_argv(args: argparse.Namespace, k: int, n: int, folder: Path) -> list[str]:
    """The command line of shard k of n, written to ``folder``."""
    argv = ["run"]
    for flag, dest in FORWARDED:
        value = getattr(args, dest)
        if dest == "suite" and Path(value).is_file():
            value = str(Path(value).resolve())  # a task may start in another folder
        if dest == "jobs" and value in (None, 1) and args.launcher == "slurm":
            value = _gpus(args)  # one worker per GPU of the node
        if value is None or value is False or value == [] or (dest == "jobs" and value <= 1):
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [x for item in value for x in (flag, item)]
        else:
            argv += [flag, str(value)]
    return [*argv, "--shard", f"{k}/{n}", "--out", str(folder), "--no-progress", "--no-open"]


def _gpus(args: argparse.Namespace) -> int:
    return 1 if args.slurm_gpus_per_node is None else args.slurm_gpus_per_node


def folder(out: Path, k: int, n: int) -> Path:
    return out / SHARDS / f"{k}-of-{n}"


def finished(cells: list[Cell], shard: Path) -> bool:
    """Whether every one of ``cells`` has an ok record in the shard's folder."""
    return recorded(cells, shard) == len(cells)


def recorded(cells: list[Cell], shard: Path) -> int:
    """How many of ``cells`` have an ok record in the shard's folder."""
    count = 0
    for cell in cells:
        path = shard / records.RECORDS / f"{cell.key()}.json"
        count += path.is_file() and records.read(path)["status"] == "ok"
    return count


def _run(argv: list[str], env: dict[str, str] | None = None) -> int:
    """One task's body: rpg-bench itself, in this task's Python; it dies with this process
    (SIGTERM: it stops cleanly), and gets the stop signals this process gets."""
    env = {**os.environ, **(env or {}), **lifeline.child_environment()}
    env.pop(LAUNCHER, None)
    proc = subprocess.Popen([sys.executable, "-m", "suite", *argv], env=env)
    # submitit ignores SIGTERM in a task (Slurm sends it to every process of the job, and
    # the requeue needs the task alive): passed on here, so a local launcher can stop its
    # tasks; SIGINT too, which would otherwise kill rpg-bench with SIGKILL (subprocess.run).
    before = {sig: signal.signal(sig, lambda sig, frame: proc.send_signal(sig)) for sig in stopping.SIGNALS}
    try:
        code = proc.wait()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if code in (128 + signal.SIGTERM, 128 + signal.SIGINT):  # suite.system.stopping's codes
        raise RuntimeError(f"rpg-bench {shlex.join(argv)} was stopped ({code}): the same command resumes it")
    if code not in (0, 1):  # 1: some cell failed, which its record and the report say
        raise RuntimeError(f"rpg-bench {shlex.join(argv)} exited {code}: see this task's log")
    return code


def _bound(env: dict[str, str] | None) -> None:
    """A local task dies with its controller (its parent) and with the launcher, two
    generations up, which it watches (its death takes the task's rpg-bench with it)."""
    launcher = (env or {}).get(LAUNCHER)
    if launcher is None or os.environ.get("SUBMITIT_EXECUTOR") != "local":
        return
    lifeline.die_with_parent(int(os.environ["SUBMITIT_LOCAL_JOB_ID"]))  # the controller's pid
    lifeline.watch(lambda: lifeline.alive(launcher))


class Task:
    """A submitted command. submitit calls ``checkpoint`` when the task hits its time limit
    or is preempted: the same command is requeued, and resumes from the shard's folder."""

    def __call__(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        _bound(env)
        return _run(argv, env)

    def checkpoint(self, argv: list[str], env: dict[str, str] | None = None):
        return _submitit().helpers.DelayedSubmission(Task(), argv, env)


def submit(args: argparse.Namespace, cells: list[Cell], out: Path) -> int:
    """Submit the run's shards (those not finished) and their merge; local runs wait for both."""
    submitit = _submitit()
    n = min(args.shards or DEFAULT_SHARDS, len(cells))
    parts = shards.partition(cells, n)
    folders = [folder(out, k, n) for k in range(1, n + 1)]
    todo = [k for k in range(1, n + 1) if not finished(parts[k - 1], folders[k - 1])]
    executor = submitit.AutoExecutor(out / LOGS, cluster=args.launcher, slurm_max_num_timeout=MAX_TIMEOUTS)
    name = f"rpg-bench-{Path(args.suite).stem}"
    env: dict[str, str] = {}
    if args.launcher == "local":
        # The tasks run at once on this machine's cores: split them, as --jobs does.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, len(todo))))
        env[LAUNCHER] = lifeline.identity(os.getpid())  # what each task watches (_bound)
        executor.update_parameters(timeout_min=minutes(DEFAULT_TIME), name=name)
    else:
        gpus = _gpus(args)
        executor.update_parameters(
            name=name,
            timeout_min=minutes(args.slurm_time or DEFAULT_TIME),
            nodes=1,
            tasks_per_node=1,
            gpus_per_node=gpus,
            cpus_per_task=args.slurm_cpus_per_task or max(2, 8 * gpus),
            slurm_partition=args.slurm_partition,
            slurm_array_parallelism=n,
            slurm_additional_parameters=options(args.slurm_option),
        )
    print(f"rpg-bench: {len(cells)} cells in {n} shards under {out / SHARDS}/; {n - len(todo)} already finished")
    jobs = []
    if todo:
        with stopping.deferred(), executor.batch():  # a stop signal lets the submission finish
            jobs = [executor.submit(Task(), task_argv(args, k, n, folders[k - 1]), env) for k in todo]
        array = jobs[0].job_id.split("_")[0]
        print(f"submitted {len(jobs)} tasks ({args.launcher}): job {array}; their logs in {out / LOGS}/")
    merge_argv = ["merge", *map(str, folders), "--out", str(out)]
    if args.launcher == "local":
        try:
            return _merge_here(jobs, folders, out)
        except stopping.Stopped as e:
            _stop(jobs)
            e.done, e.total = sum(recorded(p, f) for p, f in zip(parts, folders, strict=True)), len(cells)
            raise
    after = {"dependency": f"afterany:{array}"} if jobs else {}
    merger = submitit.AutoExecutor(out / LOGS, cluster="slurm")  # no GPU: the merge only reads and renders
    merger.update_parameters(
        name=f"{name}-merge",
        timeout_min=60,
        nodes=1,
        tasks_per_node=1,
        cpus_per_task=2,
        slurm_partition=args.slurm_partition,
        slurm_additional_parameters=options(args.slurm_option) | after,
    )
    merge = merger.submit(Task(), merge_argv)
    print(f"merge job {merge.job_id}: writes {out / 'index.html'} (by hand: rpg-bench {shlex.join(merge_argv)})")
    return merge.result() if args.wait else 0


def _stop(jobs: list) -> None:
    """Stop the local tasks (their controllers pass SIGTERM on to them, and they to their
    rpg-bench) and wait for every process this one started (``STOP_SECONDS`` at most, then
    they are killed): a stopped launcher leaves nothing running."""
    started = [lifeline.identity(pid) for pid in lifeline.descendants(os.getpid())]
    for job in jobs:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(job.job_id), signal.SIGTERM)  # a local job's id is its controller's pid
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and any(lifeline.alive(p) for p in started):
        time.sleep(0.2)
    for ident in started:
        if lifeline.alive(ident):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(ident.partition(":")[0]), signal.SIGKILL)


def _merge_here(jobs: list, folders: list[Path], out: Path) -> int:
    """Wait for the local tasks, then merge their folders into ``out`` and render the report."""
    failed = 0
    for job in jobs:
        try:
            failed += job.result() != 0
        except Exception as e:  # noqa: BLE001 - a task's failure is reported, the merge still tells what is there
            failed += 1
            print(f"task {job.job_id} failed: {str(e).strip().splitlines()[-1]}", file=sys.stderr)
    written = shards.merge(out, folders, [*map(str, folders), "--out", str(out)])
    path, _, _ = report.render(out)
    results = records.read_run(out)[1]
    bad = sum(r["status"] != "ok" for r in results)
    print(f"report: {path}  ({written} records from {len(folders)} shards: {len(results) - bad} ok, {bad} failed)")
    return 1 if failed or bad else 0
