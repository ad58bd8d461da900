"""The runner: expand a suite into cells (suite.cells), run each once (suite.run.pipeline),
record each, skip recorded ones; several at once with --jobs (suite.run.parallel)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from suite import methods, records, tasks
from suite.cells import RECORD_VERSION, Cell, checkpoint, data_key, now
from suite.data import root
from suite.errors import UsageError
from suite.measure import cache
from suite.run import parallel, pipeline
from suite.suites.budgets import Budgets
from suite.suites.spec import Suite
from suite.system import distributed, stopping
from suite.system import progress as bars
from suite.tasks import recipes

__all__ = ["Cell", "check", "checkpoint", "data_key", "expand", "load_data", "now", "run"]


def expand(
    suite: Suite, profile: str, seeds: int | None = None, only: list[str] | None = None, sets: dict | None = None
) -> list[Cell]:
    """The suite's cells at ``profile``; ``sets`` are what the command line changes: recipe
    fields in every experiment (after the suite's own overrides), each checked against the
    recipe, and ``<method>.<knob>`` in that method's cells, checked by its knobs."""
    knobs = _knobs({k: v for k, v in (sets or {}).items() if "." in k})
    sets = {k: v for k, v in (sets or {}).items() if "." not in k}
    cells = []
    for e in suite.experiments:
        task_profile = e.profile(profile)
        changes = dict(e.overrides) | sets
        if sets:
            where = f"--set {', '.join(f'{k}={v}' for k, v in sets.items())} (experiment {e.name})"
            recipes.override(tasks.get(e.task).profiles[task_profile], changes, where)
        overrides = recipes.freeze(changes)
        budgets = Budgets(e, task_profile, overrides)
        for arch, method, budget in budgets.runs():
            if only and method not in only:
                continue
            count = budgets.count(arch, budget)
            width = budgets.net(arch).width
            for seed in range(seeds or e.seeds):
                cell = Cell(
                    suite.name, e.name, e.task, arch, width, method, count, seed, task_profile, overrides,
                    knobs.get(method, ()),
                )  # fmt: skip
                cells.append(cell)
    return list(dict.fromkeys(cells))


def _knobs(sets: dict) -> dict[str, tuple]:
    """``--set <method>.<knob>=value`` pairs by method, each method's checked by its knobs."""
    by_method: dict[str, dict] = {}
    for name, value in sets.items():
        method, _, knob = name.partition(".")
        by_method.setdefault(method, {})[knob] = value
    return {
        method: methods.check_knobs(
            method, values, f"--set {', '.join(f'{method}.{k}={v}' for k, v in values.items())}"
        )
        for method, values in by_method.items()
    }


def default_jobs(suite: Suite, device: torch.device | None, cells: int) -> int:
    """How many cells run at once without --jobs: one, except on a CPU for a suite whose
    cells keep only ``threads_per_cell`` threads busy, where the CPU's threads are shared
    out among cells instead (one cell of the embedded default runs 1.5x slower on one
    thread than on two, so two side by side finish sooner). Under torchrun, one."""
    if device is None or device.type != "cpu" or suite.threads_per_cell is None or distributed.launched():
        return 1
    return max(1, min(torch.get_num_threads() // suite.threads_per_cell, cells))


def check(cells: list[Cell]) -> None:
    """Raise UsageError for any cell that cannot even start (an unreachable budget)."""
    for cell in {(c.method, c.net(), c.budget): c for c in cells}.values():
        methods.check_budget(methods.get(cell.method), cell.net(), cell.budget)


def run(
    cells: list[Cell],
    out: Path,
    device: torch.device,
    data_root: str | None,
    *,
    progress: bool = True,
    meta: dict | None = None,
    onnx: bool = True,
    jobs: int = 1,
    compiled: bool = False,
) -> list[dict]:
    """Run every cell without an ok record in ``out``; return the records of all cells.

    With ``jobs`` > 1, that many cells run at once, each in a worker process of its own
    device (suite.run.parallel). Under torchrun every rank calls this with the same cells;
    rank 0 alone holds the lock, reads and writes records, and returns them (the other
    ranks return an empty list).
    """
    data_root = root.resolve(data_root)
    # Data first: a missing data root is bad input, found before anything is written.
    # Parallel workers load their own copy on their own device; here it is only checked.
    data = load_data(cells, device if jobs == 1 else torch.device("cpu"), data_root)
    main = distributed.is_main()
    with contextlib.ExitStack() as stack:
        done = _open(stack, out, cells, meta, main)
        results = dict(done)
        todo = [c for c in cells if c.key() not in done]
        bar = bars.bar(total=len(cells), initial=len(done), desc="cells", unit="cell", disable=not (progress and main))

        def finish(cell: Cell, record: dict) -> None:
            with stopping.deferred():  # a record and its checkpoints' removal go together
                if main:
                    _record(out, cell, record)
                    results[cell.key()] = record
                bar.update()

        try:
            if jobs > 1:
                parallel.run(todo, out, device, data_root, jobs, onnx, finish, bar, compiled)
            else:
                _serially(todo, data, out, device, finish, bar, progress and main, onnx, compiled)
        except stopping.Stopped as e:  # SIGTERM or Ctrl-C: what the one line says (suite.cli)
            e.done, e.total = sum(r["status"] == "ok" for r in results.values()), len(cells)
            raise
        finally:
            bar.close()
    return [results[c.key()] for c in cells] if main else []


def _open(stack: contextlib.ExitStack, out: Path, cells: list[Cell], meta: dict | None, main: bool) -> dict[str, dict]:
    """Take ``out`` for this run (rank 0: its lock, held until ``stack`` closes) and return
    the ok records of ``cells`` already there; rank 0 also writes the run's ``meta``. Every
    rank gets the records, or the error that stopped rank 0."""
    folder = out / records.RECORDS
    done = None
    if main:
        try:
            stack.enter_context(records.lock(out))
            done = _done(cells, folder)
        except Exception as e:  # noqa: BLE001 - handed to every rank, so none waits for a rank 0 that stopped
            done = e
    done = distributed.broadcast(done)
    if isinstance(done, Exception):
        raise done
    if main:
        older = records.older(folder, RECORD_VERSION)
        if older:
            print(
                f"rpg-bench: {folder} holds {older} records of an older record format (this rpg-bench writes "
                f"version {RECORD_VERSION}): they are kept, but not reused; their cells run again",
                file=sys.stderr,
            )
        folder.mkdir(parents=True, exist_ok=True)
        if meta is not None:
            records.write_json(out / records.RUN, meta)
    return done


def _record(out: Path, cell: Cell, record: dict) -> None:
    """Write a finished cell's record; the cell is then done, so its checkpoints go (IMP
    keeps one file per round beside it), unless its worker was killed (a rerun resumes it)."""
    records.write_record(out, record)
    if not record.get("worker_lost"):
        for path in checkpoint(out, cell).parent.glob(f"{cell.key()}*.pt"):
            path.unlink(missing_ok=True)
    if record["status"] != "ok":
        bars.write(f"cell failed: {cell.label()}: {record['error']}")


def _serially(
    todo: list[Cell],
    data: dict,
    out: Path,
    device: torch.device,
    finish: Callable[[Cell, dict], None],
    bar,
    progress: bool,
    onnx: bool,
    compiled: bool,
) -> None:
    """Run ``todo`` one cell after another in this process (under torchrun: every rank together)."""
    for cell in todo:
        bar.set_postfix_str(cell.label())
        splits = data[data_key(cell)]
        shared = out / cache.FOLDER
        finish(cell, pipeline.run_cell(cell, splits, device, progress, onnx, checkpoint(out, cell), shared, compiled))
        distributed.barrier()  # the next cell starts on every rank together


def load_data(cells: list[Cell], device: torch.device | None, data_root: str | None) -> dict:
    """Each data set the cells need, loaded once on ``device`` (None: the CPU), by data key:
    profiles of one task share its real (or generated) data."""
    device = device or torch.device("cpu")
    data_root = root.resolve(data_root)  # --data-root, else $RPG_BENCH_DATA_ROOT, else the user's cache
    data: dict[tuple[str, bool], tasks.Splits] = {}
    for c in cells:
        if data_key(c) not in data:
            data[data_key(c)] = tasks.get(c.task).load(data_root, device, c.profile)
    return data


def _done(cells: list[Cell], folder: Path) -> dict[str, dict]:
    """The ok records already in ``folder`` by key, read (and a corrupt one refused) before
    anything is written."""
    done = {}
    for cell in cells:
        path = folder / f"{cell.key()}.json"
        if path.exists():
            old = records.read(path)
            if old["key"] != cell.key():
                raise UsageError(f"results record {path} belongs to another cell (key {old['key']})")
            if old["status"] == "ok":
                done[cell.key()] = old
    return done
