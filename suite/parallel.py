"""Several cells at once (``--jobs N``): one worker process per device, one cell per worker.

On CUDA worker k owns ``cuda:k``, so N cells that each fit one GPU train side by side on
N GPUs. On the CPU the N workers share the cores (each gets cores / N threads), which
helps only where one cell cannot keep every core busy. Workers are spawned, not forked (a
CUDA context does not survive a fork), load the data once each, and return each cell's
record to the parent, which alone writes records. A worker that dies (killed, out of
memory) costs only its cell: that cell is recorded as failed and a new worker takes the
device's next cell. Workers draw no bars of their own; the parent's one bar counts cells and
shows each running cell's last finished epoch, read from the cell's log (OUT/logs/<key>.log),
so no channel between the processes is needed and a killed worker breaks nothing.
"""

from __future__ import annotations

import multiprocessing
import re
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import torch
from tqdm import tqdm

from suite import measurements, pipeline, quiet, tasks
from suite.cells import Cell, checkpoint, data_key, now
from suite.errors import UsageError

_data: dict[tuple[str, bool], tasks.Splits] = {}  # per worker process: the splits it has loaded


def devices(device: torch.device, jobs: int) -> list[torch.device]:
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if jobs > count:
            raise UsageError(f"--jobs {jobs}: only {count} CUDA device(s) here; one job runs per device")
        return [torch.device("cuda", k) for k in range(jobs)]
    return [torch.device("cpu")] * jobs


def _start(threads: int) -> None:
    torch.set_num_threads(threads)


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
        record = pipeline.run_cell(
            cell, _data[key], device, False, onnx, checkpoint, out / measurements.FOLDER, compiled
        )
    record["jobs"] = jobs
    return record


def _lost(cell: Cell, error: BaseException) -> dict:
    """The record of a cell whose worker failed outside the cell's own error handling."""
    what = "its worker process died (killed, or out of memory?)" if isinstance(error, BrokenProcessPool) else ""
    return {
        "key": cell.key(),
        "config": cell.config(),
        "status": "failed",
        "started": None,
        "finished": now(),
        "error": f"{type(error).__name__}: {what or error}",
        "worker_lost": isinstance(error, BrokenProcessPool),  # its checkpoint is kept for the rerun
        "traceback": "".join(traceback.format_exception(error)),
    }


EPOCH = re.compile(rb"epoch (\d+)/(\d+):")  # the line suite.train logs after each epoch


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
    total = torch.get_num_threads()  # what a serial run has, and what a measurement gets (suite.quiet)
    threads = max(1, total // jobs) if device.type == "cpu" else total
    context = multiprocessing.get_context("spawn")

    def worker() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=context, initializer=_start, initargs=(threads,))

    pools = [worker() for _ in slots]
    # Seed 0 of every shape first: cells side by side are then mostly of different shapes,
    # so one measures while the other trains, rather than one waiting for the other's
    # measurement of their shared shape (suite.measurements); the later seeds reuse it.
    todo = sorted(cells, key=lambda c: c.seed)
    running: dict[Future, tuple[Cell, int]] = {}
    try:
        while todo or running:
            for slot in set(range(len(slots))) - {s for _, s in running.values()}:
                if todo:
                    cell = todo.pop(0)
                    args = (cell, data_root, str(slots[slot]), onnx, checkpoint(out, cell), jobs, total, compiled)
                    running[pools[slot].submit(_work, *args)] = (cell, slot)
            ended, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            logs = {c: out / pipeline.LOGS / f"{c.key()}.log" for c, _ in running.values()}
            bar.set_postfix_str(", ".join(f"{c.label()} {epoch(log)}" for c, log in logs.items()))
            for future in ended:
                cell, slot = running.pop(future)
                try:
                    record = future.result()
                except BrokenProcessPool as e:
                    record = _lost(cell, e)
                    pools[slot].shutdown(cancel_futures=True)
                    pools[slot] = worker()
                except Exception as e:  # unpicklable results and the like: recorded, never lost
                    record = _lost(cell, e)
                finish(cell, record)
    finally:
        for pool in pools:
            pool.shutdown(cancel_futures=True)
