"""Several cells at once (``--jobs N``): one worker process per device, one cell per worker.

On CUDA worker k owns ``cuda:k``, so N cells that each fit one GPU train side by side on
N GPUs. On the CPU the N workers share the cores (each gets cores / N threads), which
helps only where one cell cannot keep every core busy. Workers are spawned, not forked (a
CUDA context does not survive a fork), load the data once each, and return each cell's
record to the parent, which alone writes records (suite.run.workers). A worker that dies
(killed, out of memory) costs only its cell: that cell is recorded as failed, naming the
signal that killed it, and a new worker takes the device's next cell; its checkpoint is
kept, so the same command again reruns it from there. Workers die with the parent, whatever
kills it (suite.system.lifeline). A stop signal (SIGTERM, Ctrl-C) reaches the parent, which passes
it on: each worker's cell writes its checkpoint and stops (suite.system.stopping), cells finished
meanwhile are recorded, and a worker still there after ``STOP_SECONDS`` is killed.

Workers draw no bars of their own; the parent's one bar counts cells and shows each running
cell's last finished epoch, read from the cell's log (OUT/logs/<key>.log), so no channel
between the processes is needed and a killed worker breaks nothing.
"""

from __future__ import annotations

import multiprocessing
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from suite import registry, tasks
from suite.cells import Cell, checkpoint, data_key, now
from suite.errors import UsageError
from suite.measure import cache
from suite.run import pipeline, workers
from suite.system import quiet, stopping

_data: dict[tuple[str, bool], tasks.Splits] = {}  # per worker process: the splits it has loaded
# How long stopping workers may take to checkpoint and end before they are killed: the
# run must end within a minute of a stop signal (a CI runner's or docker stop's grace).
STOP_SECONDS = 40.0


def devices(device: torch.device, jobs: int) -> list[torch.device]:
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if jobs > count:
            raise UsageError(f"--jobs {jobs}: only {count} CUDA device(s) here; one job runs per device")
        return [torch.device("cuda", k) for k in range(jobs)]
    return [torch.device("cpu")] * jobs


def _setup(threads: int) -> None:
    """A worker's start: its share of the threads. It draws no bars, so tqdm's lock can be a
    thread's, not the named semaphore tqdm makes by default, which a killed worker would
    leave for multiprocessing's resource tracker to warn about on stderr. Then the plugins'
    methods, tasks and architectures, as the command line loaded them."""
    torch.set_num_threads(threads)
    tqdm.set_lock(threading.RLock())
    registry.load_plugins()  # a spawned process starts with only rpg-bench's own names


def _work(
    cell: Cell,
    data_root: str | None,
    device: str,
    onnx: bool,
    checkpoint: Path,
    jobs: int,
    threads: int,
    compiled: bool = False,
) -> dict:
    device = torch.device(device)
    out = checkpoint.parent.parent  # OUT/checkpoints/<key>.pt -> OUT
    quiet.join(out, threads)  # measure while the other workers stand still, with every thread
    if device.type == "cuda":
        torch.cuda.set_device(device)
    key = data_key(cell)
    if key not in _data:
        _data[key] = tasks.get(cell.task).load(data_root, device, cell.profile)
    with quiet.cell():  # counted as training from here: a measurement elsewhere waits for our next step
        record = pipeline.run_cell(cell, _data[key], device, False, onnx, checkpoint, out / cache.FOLDER, compiled)
    record["jobs"] = jobs
    return record


def _lost(cell: Cell, answer: tuple, seconds: float) -> dict:
    """The record of a cell whose worker failed outside the cell's own error handling: it
    raised (``("failed", error, traceback)``) or died (``("died", how)``)."""
    died = answer[0] == "died"
    return {
        "key": cell.key(),
        "config": cell.config(),
        "status": "failed",
        "started": None,
        "finished": now(),
        "seconds": seconds,
        "error": f"WorkerLost: its worker process died: {answer[1]}" if died else answer[1],
        "worker_lost": died,  # its checkpoint is kept for the rerun
        "traceback": "" if died else answer[2],
    }


EPOCH = re.compile(rb"epoch (\d+)/(\d+):")  # the line training logs after each epoch (suite.training.callbacks)


def epoch(log: Path) -> str:
    """Where a running cell is, from the last epoch line of its log ("starting" before one)."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            found = EPOCH.findall(f.read())
    except OSError:
        found = []
    return f"epoch {found[-1][0].decode()}/{found[-1][1].decode()}" if found else "starting"


def run(
    cells: list[Cell],
    out: Path,
    device: torch.device,
    data_root: str | None,
    jobs: int,
    onnx: bool,
    finish: Callable[[Cell, dict], None],
    bar: tqdm,
    compiled: bool = False,
) -> None:
    """Run ``cells`` on ``jobs`` workers; hand each cell's record to ``finish`` as it ends."""
    slots = devices(device, jobs)
    total = torch.get_num_threads()  # what a serial run has, and what a measurement gets (suite.system.quiet)
    threads = max(1, total // jobs) if device.type == "cpu" else total
    context = multiprocessing.get_context("spawn")

    def worker() -> workers.Worker:
        return workers.Worker(context, _setup, (threads,))

    # Seed 0 of every shape first: cells side by side are then mostly of different shapes,
    # so one measures while the other trains, rather than one waiting for the other's
    # measurement of their shared shape (suite.measure.cache); the later seeds reuse it.
    todo = sorted(cells, key=lambda c: c.seed)
    pool: list[workers.Worker] = []
    try:
        with stopping.deferred():  # a stop signal: the workers stop their cells first (_stop)
            pool.extend(worker() for _ in slots)
            while todo or any(w.task for w in pool):
                if stopping.requested() is not None:
                    _stop(pool, finish)
                    break
                for slot, w in enumerate(pool):
                    if w.task is None and todo:
                        cell = todo.pop(0)
                        args = (cell, data_root, str(slots[slot]), onnx, checkpoint(out, cell), jobs, total, compiled)
                        w.give(cell, _work, *args)
                workers.wait(pool, 0.5)
                _show(bar, pool, out)
                _collect(pool, finish, worker)
    finally:
        _close(pool)


def _show(bar: tqdm, pool: list[workers.Worker], out: Path) -> None:
    """Each running cell's last finished epoch, on the bar."""
    logs = {w.task: out / pipeline.LOGS / f"{w.task.key()}.log" for w in pool if w.task}
    bar.set_postfix_str(", ".join(f"{c.label()} {epoch(log)}" for c, log in logs.items()))


def _collect(
    pool: list[workers.Worker], finish: Callable[[Cell, dict], None], worker: Callable[[], workers.Worker]
) -> None:
    """Hand every answered cell's record to ``finish``: a finished cell's, or, outside a stop,
    a failed worker's (a dead worker is replaced by ``worker()``). A worker stopped by a
    signal of its own stops the run."""
    for slot, w in enumerate(pool):
        cell, seconds = w.task, time.monotonic() - w.since
        answer = w.answer()
        if answer is None:
            continue
        if answer[0] == "done":
            finish(cell, answer[1])
        elif answer[0] == "stopped":  # a stop signal sent to this worker alone stops the run
            stopping.request(answer[1])
        elif stopping.requested() is None:  # while stopping, a failure is the stop's: not recorded
            if answer[0] == "died":
                w.close(0)
                pool[slot] = worker()
            finish(cell, _lost(cell, answer, seconds))


def _close(pool: list[workers.Worker]) -> None:
    """End the workers: after a stop at once; otherwise (the parent failed) their cells
    checkpoint and stop first."""
    stopped = stopping.requested() is not None
    for w in pool:
        if w.task is not None and not stopped:  # the parent failed: its workers' cells checkpoint and stop
            w.signal(signal.SIGTERM)
    for w in pool:
        w.close(0 if stopped and w.task is not None else 10)  # one a stop did not end within its time: killed


def _stop(pool: list[workers.Worker], finish: Callable[[Cell, dict], None]) -> None:
    """Pass the stop signal on to the busy workers and wait for them (``STOP_SECONDS`` at
    most): a cell that finished meanwhile is recorded; a stopped one, or one whose worker
    ended otherwise, is not (its checkpoint is where the rerun starts)."""
    for w in pool:
        if w.task is not None:
            w.signal(stopping.requested())
    deadline = time.monotonic() + STOP_SECONDS
    while any(w.task for w in pool) and time.monotonic() < deadline:
        workers.wait(pool, 0.5)
        for w in pool:
            cell = w.task
            answer = w.answer()
            if answer is not None and answer[0] == "done":
                finish(cell, answer[1])
