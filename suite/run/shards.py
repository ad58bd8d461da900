"""Shards: split a suite's cells across machines (``--shard K/N``) and merge their results.

Shard K of N runs its share of a deterministic partition of the run's cells, balanced by
estimated cost: cells are dealt, costliest first, to the shard with the least estimated
work so far (ties to the lowest shard), so the shards of one command partition its
cells whatever N is. The estimate is the cell's counted compute, the same one
``rpg-bench plan`` reports (suite.run.plan.cell_flops): FLOPs of the network that trains,
times the examples of every training the cell runs (IMP retrains once per level).
``rpg-bench merge SHARD... --out OUT`` checks every shard before writing anything: the shards must come from the same
suite and profile, and a cell recorded by two shards must have identical results there
(a cell run twice on one CPU gives the same bits; on different hardware it does not, and
which one is right is not for merge to guess). Every shard records the keys of the whole
run it is a part of, so merge also checks that the shards come from one command and that
none of its N shards is missing: a merge of three of four shards would otherwise render a
complete-looking report whose claims quietly lack a quarter of their cells. With
``--partial`` it merges what is there, and the missing shards' cells are listed in the
merged run without records (the report counts them as not recorded).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from suite import records
from suite.cells import Cell
from suite.errors import UsageError
from suite.run import plan


def parse(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--shard {text}: write K/N, e.g. 2/4 for the second of four shards")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard {text} is out of range: K must be between 1 and N (N >= 1)")
    return k, n


def cost(cell: Cell) -> float:
    return plan.cell_flops(cell)


def partition(cells: list[Cell], n: int) -> list[list[Cell]]:
    """The n shards, each in the run's cell order."""
    load, owner = [0] * n, {}
    for i in sorted(range(len(cells)), key=lambda i: -cost(cells[i])):  # stable: ties keep order
        shard = load.index(min(load))
        owner[i] = shard
        load[shard] += cost(cells[i])
    return [[c for i, c in enumerate(cells) if owner[i] == k] for k in range(n)]


def select(cells: list[Cell], k: int, n: int) -> list[Cell]:
    """Shard k (1-based) of n, in the run's cell order."""
    return partition(cells, n)[k - 1]


def _comparable(record: dict) -> str:
    """A record's results without what differs between two honest runs of one cell:
    timings, wall clock, machine and progress metadata."""
    kept = {k: v for k, v in record.items() if k in ("key", "config", "status", "metrics", "ledger", "setting")}
    return json.dumps(kept, sort_keys=True, default=str)


def _partition(runs: list[dict], shards: list[Path], partial: bool) -> tuple[list[str] | None, list[str]]:
    """The keys of the whole run the shards partition (None for shards that predate
    ``run_keys``) and the missing shards, after checking that they come from one command
    and that none is missing unless ``partial``."""
    sharded = [(run, folder) for run, folder in zip(runs, shards, strict=True) if "shard" in run]
    if not sharded:
        return None, []
    if len(sharded) < len(runs):
        raise UsageError("conflicting shards: some folders hold --shard runs and some whole runs")
    parts = {folder: parse(str(run["shard"])) for run, folder in sharded}
    sizes = {n for _, n in parts.values()}
    if len(sizes) > 1:
        listed = ", ".join(map(str, sorted(sizes)))
        raise UsageError(f"conflicting shards: they come from different partitions (N = {listed})")
    every = {json.dumps(run.get("run_keys")) for run, _ in sharded}
    if len(every) > 1:
        raise UsageError("conflicting shards: they are shards of different commands (their runs list different cells)")
    (n,) = sizes
    present = {k for k, _ in parts.values()}
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in present]
    if missing and not partial:
        raise UsageError(f"missing shards: {', '.join(missing)} of this run; merge them all, or pass --partial")
    if missing:
        print(f"rpg-bench merge: missing shards: {', '.join(missing)}; their cells are not recorded", file=sys.stderr)
    return sharded[0][0].get("run_keys"), missing


def merge(out: Path, shards: list[Path], argv: list[str], partial: bool = False) -> int:
    """Merge the shards' records into OUT; returns how many records were written."""
    if not shards:
        raise UsageError("merge needs at least one shard folder")
    runs, found = [], {}
    for shard in shards:
        if not (shard / records.RUN).is_file():
            raise UsageError(f"{shard} is not an rpg-bench results folder (no {records.RUN})")
        try:
            run = json.loads((shard / records.RUN).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UsageError(f"{shard / records.RUN} is unreadable or truncated: {e}") from None
        runs.append(run)
        _, recs = records.read_run(shard)
        for record in recs:
            previous = found.get(record["key"])
            if previous is None or previous[1]["status"] != "ok":
                found[record["key"]] = (shard, record)
            elif record["status"] == "ok" and _comparable(record) != _comparable(previous[1]):
                raise UsageError(
                    f"conflicting shards: cell {record['key']} has different results in {previous[0]} and {shard}"
                )
    for field in ("suite", "profile"):
        values = {r.get(field) for r in runs}
        if len(values) > 1:
            raise UsageError(f"conflicting shards: they ran different {field}s ({', '.join(map(str, sorted(values)))})")
    every, missing = _partition(runs, shards, partial)
    keys = every if every is not None else list(dict.fromkeys(k for r in runs for k in r.get("keys", [])))
    with records.lock(out):
        for _, record in found.values():
            records.write_record(out, record)
        meta = {k: v for k, v in runs[0].items() if k not in ("keys", "cells", "shard", "run_keys", "other_records")}
        meta.update(
            keys=keys,
            cells=len(keys),
            merged_from=[str(s) for s in shards],
            **({"missing_shards": missing} if missing else {}),
            command=shlex.join(["rpg-bench", "merge", *argv]),
        )
        records.write_json(out / records.RUN, meta)
    return len(found)
