"""The runner: expand a suite into cells, run each once, record each, skip recorded ones.

A cell is (task, method, budget, seed, profile) within an experiment. Its record is
``OUT/records/<key>.json``, where the key hashes the cell's full configuration (recipe
included), so a changed recipe never reuses an old result. A cell that raises is recorded
as failed with its error, and the suite goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from tqdm import tqdm

import rpg
from suite import archs, distributed, env, keys, measure, methods, records, tasks
from suite.archs import Net
from suite.budgets import Budgets
from suite.errors import UsageError
from suite.ledger import ledger, storage, stored_bytes
from suite.spec import Suite

RECORD_VERSION = 2  # 2: recipes name their optimizer; experiments may name a recipe family
CHECKPOINTS = "checkpoints"  # per-epoch training state of unfinished cells, under OUT
# What a quantised model's record says instead of numbers nobody measured.
INT8_FLOPS = "not counted: torch's flop counter does not see int8 kernels"
INT8_MEMORY = "not probed: the memory probe rebuilds float models only"
# A smoke run checks that everything runs, not how fast: one short timing attempt each
# (its report says its numbers are not comparable). Timing otherwise dominates a smoke cell.
QUICK_TIMING = {"warmup": 1, "min_repeats": 5, "min_seconds": 0.0, "attempts": 1}


@dataclass(frozen=True)
class Cell:
    suite: str
    experiment: str
    task: str
    arch: str
    width: float
    method: str
    budget: int
    seed: int
    profile: str

    def recipe(self) -> tasks.Recipe:
        return tasks.get(self.task).profiles[self.profile]

    def config(self) -> dict:
        return {**asdict(self), "recipe": self.recipe().as_dict(), "record_version": RECORD_VERSION}

    def key(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def net(self) -> Net:
        task = tasks.get(self.task)
        return Net(archs.get(self.arch), self.width, task.in_channels, task.num_classes)

    @classmethod
    def from_config(cls, config: dict) -> Cell:
        """The cell a record's (or a request's) ``config`` describes."""
        return cls(**{k: config[k] for k in cls.__dataclass_fields__})

    def label(self) -> str:
        return f"{self.experiment} {self.method}@{self.budget} seed {self.seed}"


def expand(suite: Suite, profile: str, seeds: int | None = None, only: list[str] | None = None) -> list[Cell]:
    cells = []
    for e in suite.experiments:
        task_profile = e.profile(profile)
        budgets = Budgets(e, task_profile)
        for arch, method, budget in budgets.runs():
            if only and method not in only:
                continue
            count = budgets.count(arch, budget)
            width = budgets.net(arch).width
            for seed in range(seeds or e.seeds):
                cells.append(Cell(suite.name, e.name, e.task, arch, width, method, count, seed, task_profile))
    return list(dict.fromkeys(cells))


def check(cells: list[Cell]) -> None:
    """Raise UsageError for any cell that cannot even start (an unreachable budget)."""
    for cell in {(c.method, c.net(), c.budget): c for c in cells}.values():
        methods.check_budget(methods.get(cell.method), cell.net(), cell.budget)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_cell(
    cell: Cell,
    splits: tasks.Splits,
    device: torch.device,
    progress: bool,
    onnx: bool = True,
    checkpoint: Path | None = None,
) -> dict:
    task = tasks.get(cell.task)
    recipe = cell.recipe()
    splits = splits.subset({"train": recipe.train_size, "val": recipe.val_size})
    record = {
        "key": cell.key(),
        "config": cell.config(),
        "status": "running",
        "started": now(),
        "env": env.fingerprint(device),
        "data": {"source": splits.source, "fingerprint": splits.fingerprint, "sizes": splits.sizes},
        "distributed": {"world_size": distributed.world()},
    }
    t0 = time.perf_counter()
    try:
        method = methods.get(cell.method)
        net = cell.net()
        built = methods.build(method, net, cell.budget, cell.seed)
        model = built.model.to(device)
        training = method.train(
            model,
            task,
            splits,
            recipe,
            cell.seed,
            built.setting,
            progress=progress,
            desc=cell.label(),
            checkpoint=checkpoint,
        )
        if not distributed.is_main():
            return record  # trained its share; rank 0 measures and records
        # What the trained model holds: a pruning method meets its budget only now.
        head = net.arch.head
        built.ledger = ledger(model, head)
        if "final" in training:  # quantised: counted as the float model it quantises, stored as itself
            model = training.pop("final")
            built.ledger["stored_bytes"] = stored_bytes(model)
        if hasattr(model, "solver_record"):
            model.solver_record()  # forget the validation solves: the record is about test
        scores, breakdown = task.metrics(model, splits, "test", recipe.eval_batch_size)
        test = scores[task.metric]
        solver = model.solver_record() if hasattr(model, "solver_record") else None
        metrics = {**scores, f"val_{task.metric}": training["val"]}
        if task.records_gap:  # Table 8: the metric on the training split (no augmentation) minus test's
            split = "train_eval" if "train_eval" in splits.streams else "train"  # a stream crops train's at random
            train = task.evaluate(model, splits, split, recipe.eval_batch_size)
            metrics |= {f"train_{task.metric}": train, "train_minus_test": train - test}
        other = keys.with_other_seeds(model)
        if other is not None:  # Section 5.6: the same ring and BN, other index and sign seeds
            metrics[f"wrong_seeds_{task.metric}"] = task.evaluate(other, splits, "test", recipe.eval_batch_size)
        stages = {  # the model before it was pruned or quantised (Table 6, Appendix A)
            name: {task.metric: task.evaluate(m, splits, "test", recipe.eval_batch_size), "ledger": ledger(m, head)}
            for name, m in training.pop("stages", {}).items()
        }
        if stages:  # the metric before, and the drop
            (before,) = (stage[task.metric] for stage in stages.values())
            metrics |= {f"{task.metric}_before": before, f"{task.metric}_drop": before - test}
        # A method whose budget is its size before pruning (Table 7) is held to that.
        counted = stages["before-pruning"]["ledger"] if method.budget_before_pruning else built.ledger
        deviation = methods.solver.deviation(counted["backbone"], cell.budget)
        model.eval()
        deployed = rpg.materialize(model)
        n = recipe.eval_batch_size
        x, y = splits.head("test", n)
        xt, yt = splits.head("train", recipe.batch_size)
        quantised = "quantisation" in training
        timing = QUICK_TIMING if cell.profile.endswith("smoke") else {}
        record.update(
            status="ok",
            metrics=metrics,
            metric=task.metric,
            ledger=built.ledger,
            storage=storage(model),
            setting=built.setting,
            deviation=deviation,
            budget_met=abs(deviation) <= methods.solver.TOLERANCE,
            training={k: training[k] for k in ("best_epoch", "history")},
            latency={
                form: {"batch1": measure.latency(m, x[:1], **timing), "batchN": measure.latency(m, x[:n], **timing)}
                for form, m in (("deployed", deployed), ("training", model))
            },
            flops=measure.flops(deployed, x) if not quantised else {"forward_flops": None, "reason": INT8_FLOPS},
            memory=measure.memory(
                cell.config(),
                built.setting,
                model,
                deployed,
                {"inference": (x[:n], y[:n]), "train_step": (xt[: recipe.batch_size], yt[: recipe.batch_size])},
                task.loss,
            )
            if not quantised
            else {w: {"kind": "n/a", "peak_mb": "n/a", "reason": INT8_MEMORY} for w in ("inference", "train_step")},
            onnx=measure.onnx(deployed, x[:1], x[:n]) if onnx else {"status": "skipped"},
        )
        if breakdown is not None:  # the test metric's parts (PCKh per joint)
            record["breakdown"] = breakdown
        if solver is not None:  # an equilibrium model: how its solves went on the test split
            record["solver"] = solver
        if stages:
            record["stages"] = stages
        if "pruning" in training:  # its levels or its slimming, and what the latency measures
            record["pruning"] = training["pruning"]
        if "quantisation" in training:
            record["quantisation"] = {**training["quantisation"], "latency": "int8 kernels on the CPU"}
    except Exception as e:  # a failed cell is recorded, never lost; the suite goes on
        if distributed.world() > 1:
            # The other ranks may be inside a collective this rank will never join: stop the
            # process so torchrun tears the group down; a rerun resumes from the checkpoint.
            raise
        record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    record["seconds"] = time.perf_counter() - t0
    record["finished"] = now()
    return record


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
) -> list[dict]:
    """Run every cell without an ok record in ``out``; return the records of all cells.

    With ``jobs`` > 1, that many cells run at once, each in a worker process of its own
    device (suite.parallel). Under torchrun every rank calls this with the same cells;
    rank 0 alone holds the lock, reads and writes records, and returns them (the other
    ranks return an empty list).
    """
    # Data first: a missing data root is bad input, found before anything is written.
    # Parallel workers load their own copy on their own device; here it is only checked.
    here = device if jobs == 1 else torch.device("cpu")
    data: dict[tuple[str, bool], tasks.Splits] = {}
    for c in cells:  # once per data set: profiles of one task share its real (or generated) data
        if data_key(c) not in data:
            data[data_key(c)] = tasks.get(c.task).load(data_root, here, c.profile)
    folder = out / records.RECORDS
    main = distributed.is_main()
    with contextlib.ExitStack() as stack:
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
            folder.mkdir(parents=True, exist_ok=True)
            if meta is not None:
                records.write_json(out / records.RUN, meta)
        results = dict(done)
        todo = [c for c in cells if c.key() not in done]
        bar = tqdm(total=len(cells), initial=len(done), desc="cells", unit="cell", disable=not (progress and main))

        def finish(cell: Cell, record: dict) -> None:
            if main:
                records.write_json(folder / f"{cell.key()}.json", record)
                if not record.get("worker_lost"):  # a killed worker's cell resumes from its checkpoint
                    # The record is written: the cell is done (IMP keeps one file per round beside it).
                    for path in checkpoint(out, cell).parent.glob(f"{cell.key()}*.pt"):
                        path.unlink(missing_ok=True)
                if record["status"] != "ok":
                    tqdm.write(f"cell failed: {cell.label()}: {record['error']}")
                results[cell.key()] = record
            bar.update()

        if jobs > 1:
            from suite import parallel

            parallel.run(todo, out, device, data_root, jobs, onnx, finish, bar)
        else:
            for cell in todo:
                bar.set_postfix_str(cell.label())
                splits = data[data_key(cell)]
                finish(cell, run_cell(cell, splits, device, progress and main, onnx, checkpoint(out, cell)))
                distributed.barrier()  # the next cell starts on every rank together
        bar.close()
    return [results[c.key()] for c in cells] if main else []


def data_key(cell: Cell) -> tuple[str, bool]:
    """What a cell's data depends on: its task, and whether its profile generates stand-in data."""
    return cell.task, cell.profile in tasks.get(cell.task).generated_profiles


def checkpoint(out: Path, cell: Cell) -> Path:
    return out / CHECKPOINTS / f"{cell.key()}.pt"


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
