"""One cell, start to end: build at the budget, train, test, measure, and the record that says so.

A cell that raises is recorded as failed with its error, and the suite goes on.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from pathlib import Path

import torch

import rpg
from suite import methods, tasks
from suite.cells import Cell, now
from suite.counting import solver
from suite.counting.ledger import ledger, storage, stored_bytes
from suite.errors import ENVIRONMENT
from suite.measure import cache, runtime, wrong_seeds
from suite.system import distributed, env, quiet, stopping
from suite.training import train

# What a quantised model's record says instead of numbers nobody measured.
INT8_FLOPS = "not counted: torch's flop counter does not see int8 kernels"
INT8_MEMORY = "not probed: the memory probe rebuilds float models only"
# A smoke run checks that everything runs, not how fast: one short timing attempt each
# (its report says its numbers are not comparable). Timing otherwise dominates a smoke cell.
QUICK_TIMING = {"warmup": 1, "min_repeats": 5, "min_seconds": 0.0, "attempts": 1}
LOGS = "logs"  # OUT/logs/<key>.log: each cell's own account, appended to when it resumes
log = logging.getLogger("rpg_bench.cell")


class _Handler(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        # A log line lost to a full disk is not worth a traceback on the user's terminal:
        # the cell's next checkpoint or record meets the same disk and stops the run plainly.
        pass


@contextlib.contextmanager
def _logged(path: Path | None):
    """The cell's log lines (and train.fit's) go to ``path`` meanwhile."""
    if path is None or not distributed.is_main():
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _Handler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def run_cell(
    cell: Cell,
    splits: tasks.Splits,
    device: torch.device,
    progress: bool,
    onnx: bool = True,
    checkpoint: Path | None = None,
    shared: Path | None = None,
    compiled: bool = False,
) -> dict:
    """The cell's record. ``shared``: the folder of measurements cells of one shape share
    (OUT/measurements; None measures every cell itself)."""
    recipe = cell.recipe()
    splits = splits.subset({"train": recipe.train_size, "val": recipe.val_size})
    record = {
        "key": cell.key(),
        "config": cell.config(),
        "status": "running",
        "started": now(),
        "env": env.fingerprint(device),
        "data": {"source": splits.source, "fingerprint": splits.fingerprint, "sizes": splits.sizes},
        "distributed": {"world_size": distributed.world(), "sync_batchnorm": distributed.sync_batchnorm(device)},
    }
    t0 = time.perf_counter()
    logfile = checkpoint.parent.parent / LOGS / f"{cell.key()}.log" if checkpoint is not None else None
    if compiled:
        record["compiled"] = True  # the training step ran through torch.compile (--compile)
    with _logged(logfile), train.compiling(compiled):
        _run(cell, splits, device, progress, onnx, checkpoint, shared, record)
    record["seconds"] = time.perf_counter() - t0
    record["finished"] = now()
    return record


def _run(cell: Cell, splits, device, progress: bool, onnx: bool, checkpoint, shared, record: dict) -> None:
    """Build, train, test and measure, into ``record``; a failure is recorded there."""
    recipe = cell.recipe()
    log.info("cell %s (%s): %s on %s, %d threads", cell.key(), cell.label(), cell.config(), device,
             torch.get_num_threads())  # fmt: skip
    try:
        method = methods.get(cell.method)
        built = methods.build(method, cell.net(), cell.budget, cell.seed, dict(cell.knobs))
        label = cell.label()
        log.info("built: %s", built.ledger)
        trained = method.train(
            built.model.to(device), tasks.get(cell.task), splits, recipe, cell.seed, built.setting,
            progress=progress, desc=label, checkpoint=checkpoint,
        )  # fmt: skip
        if distributed.is_main():  # the other ranks trained their share; rank 0 measures and records
            record |= _tested(cell, method, built, trained, splits)
            log.info("tested: %s", record["metrics"])
            record |= _measured(cell, built, trained, splits, onnx, cache.Shared(shared))
            log.info("measured (figures of %s)", record["measured_by"])
            record["status"] = "ok"
    except Exception as e:  # a failed cell is recorded, never lost; the suite goes on
        if stopping.requested() is not None:
            # Failed while the run stops: of the stop, most likely (a data loader's processes
            # take a terminal's Ctrl-C and end). Not the cell's failure: not recorded, rerun.
            raise stopping.Stopped(stopping.requested()) from e
        if isinstance(e, OSError) and e.errno in ENVIRONMENT:
            raise  # a full or read-only disk is the machine's, not the cell's: stop; the rerun resumes
        if distributed.world() > 1:
            # The other ranks may be inside a collective this rank will never join: stop the
            # process so torchrun tears the group down; a rerun resumes from the checkpoint.
            raise
        record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        log.info("failed: %s", record["traceback"])


def _tested(cell: Cell, method: methods.Method, built: methods.Built, trained: methods.Trained, splits) -> dict:
    """The trained model's metrics on test (and on train, with other seeds, before pruning
    or quantisation), its ledger and what its checkpoint holds."""
    task, recipe = tasks.get(cell.task), cell.recipe()
    batch = recipe.eval_batch_size
    model, head = trained.model, cell.net().arch.head

    def score(m, split: str = "test") -> float:
        return task.evaluate(m, splits, split, batch)

    # What the trained model holds: a pruning method meets its budget only now. A quantised
    # one counts as the float network it quantises, and is stored as itself.
    counted = ledger(trained.before[1] if trained.quantised else model, head)
    if trained.quantised:
        counted["stored_bytes"] = stored_bytes(model)
    for probe in trained.probes.values():
        probe()  # forget what the validation passes did: the record is about test
    scores, breakdown = task.metrics(model, splits, "test", batch)
    test = scores[task.metric]
    metrics = {**scores, f"val_{task.metric}": trained.val}
    out = {"metric": task.metric, "ledger": counted, "storage": storage(model), "setting": built.setting}
    out["training"] = {"best_epoch": trained.best_epoch, "history": trained.history}
    out |= {name: probe() for name, probe in trained.probes.items()}  # the method's, over the test pass
    if task.records_gap:  # Table 8: the metric on the training split (no augmentation) minus test's
        train = score(model, "train_eval" if "train_eval" in splits.streams else "train")
        metrics |= {f"train_{task.metric}": train, "train_minus_test": train - test}
    other = wrong_seeds.with_other_seeds(model)
    if other is not None:  # Section 5.6: the same ring and BN, other index and sign seeds
        metrics[f"wrong_seeds_{task.metric}"] = score(other)
    if breakdown is not None:  # the test metric's parts (PCKh per joint)
        out["breakdown"] = breakdown
    before = None
    if trained.before is not None:  # the model before it was pruned or quantised (Table 6, Appendix A)
        stage, previous = trained.before
        before, earlier = ledger(previous, head), score(previous)
        out["stages"] = {stage: {task.metric: earlier, "ledger": before}}
        metrics |= {f"{task.metric}_before": earlier, f"{task.metric}_drop": earlier - test}
    out |= trained.sections  # the method's own (a pruning's levels, a quantisation's scheme)
    # A method whose budget is its size before pruning (Table 7) is held to that.
    deviation = solver.deviation((before if method.budget_before_pruning else counted)["backbone"], cell.budget)
    return out | {"metrics": metrics, "deviation": deviation, "budget_met": abs(deviation) <= solver.TOLERANCE}


def _measured(
    cell: Cell, built: methods.Built, trained: methods.Trained, splits, onnx: bool, shared: cache.Shared
) -> dict:
    """Latency, FLOPs, peak memory and the ONNX check of the trained model's two forms, each
    measured once per shape (suite.measure.cache) and carried by every cell of that shape."""
    task, recipe = tasks.get(cell.task), cell.recipe()
    model = trained.model.eval()
    deployed = rpg.materialize(model)
    n = recipe.eval_batch_size
    x, y = splits.head("test", n)
    xt, yt = splits.head("train", recipe.batch_size)
    timing = QUICK_TIMING if cell.profile.endswith("smoke") else {}
    settings = {"timing": timing, "onnx": onnx, "quantised": trained.quantised}

    def memory(workload: str, batch: tuple) -> dict:
        return runtime.memory(workload, cell.config(), built.setting, model, deployed, batch, task.loss)

    # Under --jobs the other workers stand still while this one times a network (and only
    # then: exporting, counting FLOPs and the memory probes, one thread in a forked
    # process, do not depend on what else runs).
    def latency(m) -> dict:
        with quiet.measuring():
            return {"batch1": runtime.latency(m, x[:1], **timing), "batchN": runtime.latency(m, x[:n], **timing)}

    def deployed_figures() -> dict:
        out = {
            "latency": latency(deployed),
            "onnx": runtime.onnx(deployed, x[:1], x[:n], quiet=quiet.measuring) if onnx else {"status": "skipped"},
        }
        if trained.quantised:
            out["flops"] = {"forward_flops": None, "reason": INT8_FLOPS}
            out["memory"] = {"kind": "not measured", "peak_mb": None, "reason": INT8_MEMORY}
        else:
            out["flops"] = runtime.flops(deployed, x)
            out["memory"] = memory("inference", (x[:n], y[:n]))
        return out

    def training_figures() -> dict:
        out = {"latency": latency(model)}
        if trained.quantised:
            out["memory"] = {"kind": "not measured", "peak_mb": None, "reason": INT8_MEMORY}
        else:
            batch = (xt[: recipe.batch_size], yt[: recipe.batch_size])
            out["memory"] = memory("train_step", batch)
            with quiet.measuring():
                out["step"] = runtime.train_step(model, *batch, task.loss, **timing)
        return out

    shapes = {"test": tuple(x.shape), "train": tuple(xt[: recipe.batch_size].shape)}
    key = cell.key()
    d, d_by = shared.get(cache.signature("deployed", deployed, {"x": shapes["test"]}, settings), key, deployed_figures)
    t, t_by = shared.get(cache.signature("training", model, shapes, settings), key, training_figures)
    step = {"step": t["step"]} if t.get("step") else {}  # a quantised model does not train
    return step | {
        "latency": {"deployed": d["latency"], "training": t["latency"]},
        "onnx": d["onnx"],
        "flops": d["flops"],
        "memory": {"inference": d["memory"], "train_step": t["memory"]},
        "measured_by": {"deployed": d_by, "training": t_by},
    }
