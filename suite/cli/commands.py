"""What each rpg-bench command does, given its parsed arguments (suite.cli builds them)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import webbrowser
from pathlib import Path

from suite import archs, claims, methods, records, report, tasks
from suite.args import resolve_device
from suite.cells import now
from suite.claims import select
from suite.errors import UsageError
from suite.measure import speed
from suite.report import comparison
from suite.run import launch, plan, runner, shards
from suite.suites import budgets, spec
from suite.system import distributed
from suite.tasks import recipes


def writable(out: Path, flag: str = "--out") -> None:
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {out}: {probe} is not a writable folder")


def _subset(suite: spec.Suite, args: argparse.Namespace) -> tuple[spec.Suite, list[str] | None]:
    """The suite cut to --experiments, and the --methods asked for (checked)."""
    if args.experiments:
        names = [e.strip() for e in args.experiments.split(",") if e.strip()]
        known = [e.name for e in suite.experiments]
        if not names or any(n not in known for n in names):
            raise UsageError(f"--experiments {args.experiments}: suite {suite.name} has {', '.join(known)}")
        suite = dataclasses.replace(suite, experiments=tuple(e for e in suite.experiments if e.name in names))
    only = None
    if args.methods:
        only = [m.strip() for m in args.methods.split(",") if m.strip()]
        for m in only:
            methods.get(m)
        in_suite = {m for e in suite.experiments for _, m, _ in e.runs()}
        in_suite |= {"plain" for e in suite.experiments if e.ceiling}
        if not set(only) & in_suite:
            raise UsageError(
                f"--methods {args.methods}: none of these is in suite {suite.name} ({', '.join(sorted(in_suite))})"
            )
    return suite, only


def _sets(args: argparse.Namespace) -> dict:
    """The recipe changes asked for: --set pairs, and --precision (the field it names)."""
    return recipes.parse_sets(args.set) | ({"precision": args.precision} if args.precision else {})


# More seeds than any verdict needs: the suites' power figures call for at most a few dozen,
# and a mistyped count (--seeds 10000000) would otherwise expand into millions of cells.
MAX_SEEDS = 1000


def _check_seeds(seeds: int | None) -> None:
    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be between 1 and {MAX_SEEDS}, got {seeds}")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    suite = spec.load(args.suite)
    suite, only = _subset(suite, args)
    profile = args.profile or suite.default_profile
    suite.check_profile(profile)
    _check_seeds(args.seeds)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    launch.check(args)
    sets = _sets(args)
    if args.launcher:  # the tasks resolve --device on their nodes; here nothing trains
        if distributed.launched():
            raise UsageError("--launcher submits jobs: start it once, not under torchrun")
        return _run(args, argv, suite, profile, only, sets, None)
    device = resolve_device(args.device)
    if not distributed.launched():
        return _run(args, argv, suite, profile, only, sets, device)
    if args.jobs is not None and args.jobs > 1:
        raise UsageError("--jobs runs cells side by side; under torchrun the GPUs already share each cell")
    device = distributed.setup(device)
    try:
        return _run(args, argv, suite, profile, only, sets, device)
    finally:
        distributed.teardown()


def _run(args, argv: list[str], suite: spec.Suite, profile: str, only, sets: dict, device) -> int:
    out = Path(args.out or Path(os.environ.get("RPG_BENCH_REPORTS") or "reports") / suite.name)
    writable(out)
    cells, every_key, shard = _cells(args, suite, profile, only, sets)
    runner.check(cells)
    jobs = args.jobs or runner.default_jobs(suite, device, len(cells))
    if args.launcher:
        runner.load_data(cells, None, args.data_root)  # a missing data root is found before anything is submitted
        return launch.submit(args, cells, out)
    results = runner.run(
        cells,
        out,
        device,
        args.data_root,
        progress=not args.no_progress,
        meta=_meta(args, argv, suite, profile, sets, device, cells, jobs, shard, every_key),
        onnx=not args.no_onnx,
        jobs=jobs,
        compiled=args.compile,
    )
    if not distributed.is_main():
        return 0
    return _reported(args, out, results)


def _cells(args, suite: spec.Suite, profile: str, only, sets: dict) -> tuple[list, list[str], tuple[int, int] | None]:
    """The cells this process runs (cut to --claims and --shard), the keys of the whole
    run's cells (which a shard's merge checks against) and the shard."""
    cells = runner.expand(suite, profile, args.seeds, only, sets)
    if args.claims:
        cells = select.cells_for(select.parse(args.claims), claims.load(), cells, suite)
    every_key = [c.key() for c in cells]
    shard = shards.parse(args.shard) if args.shard else None
    if shard:
        cells = shards.select(cells, *shard)
        if not cells:
            raise UsageError(f"--shard {args.shard}: this shard has no cells (the run has fewer cells than shards)")
    return cells, every_key, shard


def _meta(
    args, argv: list[str], suite: spec.Suite, profile: str, sets: dict, device, cells, jobs: int, shard, every_key
):
    """The run's description, written to OUT/run.json."""
    return {
        "suite": suite.name,
        # A suite given as a file: the report resolves the claims' budgets with it.
        **({"suite_file": str(Path(suite.path).resolve())} if args.suite not in spec.builtin() else {}),
        "description": suite.description,
        "profile": profile,
        "device": str(device),
        "command": shlex.join(["rpg-bench", *argv]),
        "experiments": {
            e.name: {"description": e.description, "task": e.task, "arch": e.arch, "width": e.width}
            | ({"recipe_overrides": dict(e.overrides) | sets} if e.overrides or sets else {})
            for e in suite.experiments
        },
        **({"recipe_overrides": sets} if sets else {}),
        **({"claims": select.parse(args.claims)} if args.claims else {}),
        "started": now(),
        "cells": len(cells),
        "keys": [c.key() for c in cells],
        "jobs": jobs,
        **({"compile": True} if args.compile else {}),
        "world_size": distributed.world(),
        **({"shard": f"{shard[0]}/{shard[1]}", "run_keys": every_key} if shard else {}),
    }


def _reported(args, out: Path, results: list[dict]) -> int:
    """Render the run's report and say where it is; exit 1 if a cell failed."""
    path, _, notes = report.render(out)
    for note in notes:
        print(note, file=sys.stderr)
    failed = [r for r in results if r["status"] != "ok"]
    print(f"report: {path}  ({len(results)} cells: {len(results) - len(failed)} ok, {len(failed)} failed)")
    if args.open or (args.open is None and sys.stdout.isatty() and not os.environ.get("CI")):
        webbrowser.open(path.resolve().as_uri())
    return 1 if failed else 0


def list_(args: argparse.Namespace) -> int:
    print("suites:")
    for name in sorted(spec.builtin()):
        print(f"  {name:12} {spec.load(name).description}")
    print("tasks:")
    for t in tasks.TASKS.values():
        generated = ", ".join(p for p in t.profiles if p in t.generated_profiles)
        shown = f"profiles: {', '.join(t.profiles)}" + (f"; {generated} read generated data" if generated else "")
        print(f"  {t.name:12} {t.description} ({shown})")
    print("methods:")
    for m in methods.METHODS.values():
        print(f"  {m.name:14} {m.description} (knob: {m.knob})")
    print("architectures:")
    for a in archs.ARCHS.values():
        print(f"  {a.name:16} {a.description}")
    return 0


def report_(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not (out / records.RECORDS).is_dir():
        raise UsageError(f"{out} holds no rpg-bench records (expected {out / records.RECORDS}/)")
    if args.compare and args.no_baseline is not None:
        raise UsageError("--compare and --no-baseline: give one (a baseline, or why there is none)")
    if args.no_baseline is not None and not args.no_baseline.strip():
        raise UsageError("--no-baseline needs a reason (what CI could not find), e.g. 'the baseline artifact expired'")
    writable(out)
    path, made, notes = report.render(out, Path(args.compare) if args.compare else None, args.no_baseline)
    print(f"report: {path}")
    for note in notes:
        print(note, file=sys.stderr)
    if made is None:
        kept = out / comparison.FILE
        if kept.is_file():
            print(f"compare: {kept} kept as a previous render wrote it (the page says whether it is still current)")
        return 0
    print(made["summary"])
    for line in comparison.problems(made):
        print(line, file=sys.stderr)
    print(f"compare: {out / comparison.FILE}")
    return made["exit_code"]


def merge_(args: argparse.Namespace, argv: list[str]) -> int:
    out = Path(args.out)
    writable(out)
    written = shards.merge(out, [Path(s) for s in args.shards], argv, partial=args.partial)
    path, _, notes = report.render(out)
    for note in notes:
        print(note, file=sys.stderr)
    print(f"report: {path}  ({written} records merged from {len(args.shards)} folders)")
    return 0


# What `ledger` builds: beyond these a network does not fit in memory (ResNet-18 at width 16
# has 2.9e9 parameters), and the allocation fails deep in torch instead of in one line.
LEDGER_LIMITS = {"width": 16.0, "classes": 100_000, "in_channels": 1024}


def _within(flag: str, value: float | None, high: float) -> None:
    if value is not None and not (0 < value <= high):  # also refuses nan
        raise UsageError(f"--{flag.replace('_', '-')} must be above 0 and at most {high:g}, got {value:g}")


def ledger_(args: argparse.Namespace) -> int:
    for name, high in LEDGER_LIMITS.items():
        _within(name, getattr(args, name), high)
    arch = archs.get(args.arch)
    classes = args.classes or (1000 if arch.stem == "imagenet" else 100)
    net = archs.Net(arch, args.width, args.in_channels, classes)
    method = methods.get(args.method)
    try:
        count = budgets.at(net, args.budget)  # a count, a fraction of the plain backbone, or a method's size
    except UsageError as e:
        raise UsageError(f"--budget {args.budget}: {e}") from None
    built = methods.build(method, net, count, seed=0)
    ledger = {"arch": arch.name, "method": method.name, "budget": built.budget, "setting": built.setting}
    print(json.dumps({**ledger, "deviation": built.deviation, **built.ledger}, indent=1))
    return 0


def plan_(args: argparse.Namespace) -> int:
    suite = spec.load(args.suite)
    profile = args.profile or suite.default_profile
    suite.check_profile(profile)
    _check_seeds(args.seeds)
    rate = plan.calibrate(Path(args.calibrate)) if args.calibrate else plan.given(args.tflops)
    suite, only = _subset(suite, args)
    cells = runner.expand(suite, profile, args.seeds, only, _sets(args))
    if args.claims:
        cells = select.cells_for(select.parse(args.claims), claims.load(), cells, suite)
    rows = plan.summarise(cells, rate)
    units = [u for u in plan.UNITS.values() if u in rows[-1]["hours"]]
    asked = f", the cells that settle claims {args.claims}" if args.claims else ""
    print(f"suite {suite.name}, profile {profile}{asked}, at {rate.describe(cells)}:")
    print(f"  {'experiment':24} {'cells':>6} {'PFLOP':>10}" + "".join(f" {u:>15}" for u in units))
    for row in rows:
        hours = "".join(f" {row['hours'].get(u, 0.0):>15.3g}" for u in units)
        print(f"  {row['experiment']:24} {row['cells']:>6} {row['pflop']:>10.3g}{hours}")
    return 0


def speed_(args: argparse.Namespace) -> int:
    return speed.main(args)
