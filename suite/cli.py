"""rpg-bench's command line. Exit 0 on success, 1 if any cell failed, 2 on bad input."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import webbrowser
from pathlib import Path

from suite import archs, distributed, methods, records, report, runner, shards, spec, tasks
from suite.args import Parser, resolve_device
from suite.cells import now
from suite.errors import UsageError
from suite.ledger import parse_count

DEFAULT_SUITE = "digits"


def _run_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="rpg-bench",
        description="Run a suite of RPG-vs-comparator experiments at matched parameter budgets "
        "and render its report. Subcommands: list, plan, report OUT, merge SHARD... --out OUT, ledger, speed.",
    )
    p.add_argument(
        "--suite", default=DEFAULT_SUITE, help="built-in suite name or path to a suite TOML (default: digits)"
    )
    p.add_argument("--profile", help="full (the paper's recipe) or smoke (seconds on CPU); default: the suite's")
    p.add_argument("--out", help="output folder (default: $RPG_BENCH_REPORTS/<suite>/, else reports/<suite>/)")
    p.add_argument(
        "--data-root",
        default=os.environ.get("RPG_BENCH_DATA_ROOT") or None,
        help="where data sets live (default: $RPG_BENCH_DATA_ROOT; see datasets/README.md)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seeds", type=int, help="seeds per cell (default: the suite's)")
    p.add_argument("--methods", help="comma-separated subset of the suite's methods")
    p.add_argument("--experiments", help="comma-separated subset of the suite's experiments")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and ONNX Runtime timing")
    p.add_argument(
        "--shard", metavar="K/N", help="run only shard K of N of the cells (merge them with rpg-bench merge)"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run N cells at once, one per GPU (cuda:0..N-1), or sharing the CPU's cores (default 1)",
    )
    p.add_argument("--open", dest="open", action="store_true", default=None, help="open the report in a browser")
    p.add_argument("--no-open", dest="open", action="store_false", help="do not open the report")
    return p


def _writable(out: Path) -> None:
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {probe} is not a writable folder")


def run(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    suite = spec.load(args.suite)
    if args.experiments:
        names = [e.strip() for e in args.experiments.split(",") if e.strip()]
        known = [e.name for e in suite.experiments]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise UsageError(f"--experiments {args.experiments}: suite {suite.name} has {', '.join(known)}")
        suite = dataclasses.replace(suite, experiments=tuple(e for e in suite.experiments if e.name in names))
    profile = args.profile or suite.default_profile
    suite.check_profile(profile)
    only = None
    if args.methods:
        only = [m.strip() for m in args.methods.split(",") if m.strip()]
        for m in only:
            methods.get(m)
        in_suite = {m for e in suite.experiments for _, m, _ in e.runs()} | {
            "plain" for e in suite.experiments if e.ceiling
        }
        if not set(only) & in_suite:
            raise UsageError(
                f"--methods {args.methods}: none of these is in suite {suite.name} ({', '.join(sorted(in_suite))})"
            )
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    device = resolve_device(args.device)
    if distributed.launched():
        if args.jobs > 1:
            raise UsageError("--jobs runs cells side by side; under torchrun the GPUs already share each cell")
        device = distributed.setup(device)
        try:
            return _run(args, argv, suite, profile, only, device)
        finally:
            distributed.teardown()
    return _run(args, argv, suite, profile, only, device)


def _run(args, argv: list[str], suite: spec.Suite, profile: str, only, device) -> int:
    out = Path(args.out or Path(os.environ.get("RPG_BENCH_REPORTS") or "reports") / suite.name)
    _writable(out)
    cells = runner.expand(suite, profile, args.seeds, only)
    every_key = [c.key() for c in cells]  # the whole run's, which a shard's merge checks against
    shard = shards.parse(args.shard) if args.shard else None
    if shard:
        cells = shards.select(cells, *shard)
        if not cells:
            raise UsageError(f"--shard {args.shard}: this shard has no cells (the run has fewer cells than shards)")
    runner.check(cells)

    progress = not args.no_progress
    meta = {
        "suite": suite.name,
        # A suite given as a file: the report resolves the claims' budgets with it.
        **({"suite_file": str(Path(suite.path).resolve())} if args.suite not in spec.builtin() else {}),
        "description": suite.description,
        "profile": profile,
        "device": str(device),
        "command": shlex.join(["rpg-bench", *argv]),
        "experiments": {
            e.name: {"description": e.description, "task": e.task, "arch": e.arch, "width": e.width}
            for e in suite.experiments
        },
        "started": now(),
        "cells": len(cells),
        "keys": [c.key() for c in cells],
        "jobs": args.jobs,
        "world_size": distributed.world(),
        **({"shard": f"{shard[0]}/{shard[1]}", "run_keys": every_key} if shard else {}),
    }
    results = runner.run(
        cells, out, device, args.data_root, progress=progress, meta=meta, onnx=not args.no_onnx, jobs=args.jobs
    )
    if not distributed.is_main():
        return 0
    path, _, _ = report.render(out)
    failed = [r for r in results if r["status"] != "ok"]
    print(f"report: {path}  ({len(results)} cells: {len(results) - len(failed)} ok, {len(failed)} failed)")
    if args.open or (args.open is None and sys.stdout.isatty() and not os.environ.get("CI")):
        webbrowser.open(path.resolve().as_uri())
    return 1 if failed else 0


def list_(argv: list[str]) -> int:
    Parser(prog="rpg-bench list", description="List suites, tasks, methods and architectures.").parse_args(argv)
    print("suites:")
    for name in sorted(spec.builtin()):
        s = spec.load(name)
        print(f"  {name:12} {s.description}")
    print("tasks:")
    for t in tasks.TASKS.values():
        print(f"  {t.name:12} {t.description} (profiles: {', '.join(t.profiles)})")
    print("methods:")
    for m in methods.METHODS.values():
        print(f"  {m.name:12} {m.description} (knob: {m.knob})")
    print("architectures:")
    for a in archs.ARCHS.values():
        print(f"  {a.name:16} {a.description}")
    return 0


def report_(argv: list[str]) -> int:
    p = Parser(prog="rpg-bench report", description="Re-render OUT/index.html and OUT/results.csv from OUT/records.")
    p.add_argument("out", help="a results folder written by rpg-bench")
    p.add_argument(
        "--compare",
        metavar="PREV",
        help="a previous results folder: show changes; exit 1 on a lost claim or a metric regression",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    if not (out / records.RECORDS).is_dir():
        raise UsageError(f"{out} holds no rpg-bench records (expected {out / records.RECORDS}/)")
    _writable(out)
    path, lost, regressed = report.render(out, Path(args.compare) if args.compare else None)
    print(f"report: {path}")
    if lost:
        print(f"claims reproduced in {args.compare} and not now: {', '.join(lost)}", file=sys.stderr)
    for c in regressed:
        print(
            f"regression: {c['experiment']} {c['method']}@{c['budget']}: {c['before']:.2f} -> {c['now']:.2f}",
            file=sys.stderr,
        )
    return 1 if lost or regressed else 0


def merge_(argv: list[str]) -> int:
    p = Parser(
        prog="rpg-bench merge",
        description="Merge the results folders of --shard runs into OUT and render its report.",
    )
    p.add_argument("shards", nargs="+", help="results folders written by rpg-bench --shard K/N")
    p.add_argument("--out", required=True, help="the merged results folder (created)")
    p.add_argument(
        "--partial",
        action="store_true",
        help="merge even when shards of the run are missing (their cells are listed as not recorded)",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    _writable(out)
    written = shards.merge(out, [Path(s) for s in args.shards], argv, partial=args.partial)
    path, _, _ = report.render(out)
    print(f"report: {path}  ({written} records merged from {len(args.shards)} folders)")
    return 0


def ledger_(argv: list[str]) -> int:
    p = Parser(prog="rpg-bench ledger", description="Print a method's parameter ledger at a budget as JSON.")
    p.add_argument("--arch", required=True, choices=list(archs.ARCHS), metavar="ARCH")
    p.add_argument("--method", required=True)
    p.add_argument("--budget", required=True, help="backbone parameters: 2M, 45K, 11173962")
    p.add_argument("--width", type=float, default=1.0, help="reference width multiplier (default 1)")
    p.add_argument(
        "--classes", type=int, default=None, help="head size (default: 1000 for ImageNet stems, 100 for CIFAR)"
    )
    p.add_argument("--in-channels", type=int, default=3)
    args = p.parse_args(argv)
    arch = archs.get(args.arch)
    classes = args.classes or (1000 if arch.stem == "imagenet" else 100)
    net = archs.Net(arch, args.width, args.in_channels, classes)
    method = methods.get(args.method)
    built = methods.build(method, net, parse_count(args.budget), seed=0)
    print(
        json.dumps(
            {
                "arch": arch.name,
                "method": method.name,
                "budget": built.budget,
                "setting": built.setting,
                "deviation": built.deviation,
                **built.ledger,
            },
            indent=1,
        )
    )
    return 0


def plan_(argv: list[str]) -> int:
    from suite import plan

    p = Parser(
        prog="rpg-bench plan",
        description="Print what a suite will cost: cells, counted compute and GPU-hours, per experiment.",
    )
    p.add_argument("--suite", default=DEFAULT_SUITE, help="built-in suite name or path to a suite TOML")
    p.add_argument("--profile", help="default: the suite's")
    p.add_argument("--seeds", type=int, help="seeds per cell (default: the suite's)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--tflops",
        type=float,
        default=plan.DEFAULT_TFLOPS,
        help=f"assumed sustained TFLOP/s of one device (default {plan.DEFAULT_TFLOPS:g}, an assumption)",
    )
    rate.add_argument("--calibrate", metavar="OUT", help="use the rate a finished run in OUT achieved")
    args = p.parse_args(argv)
    suite = spec.load(args.suite)
    profile = args.profile or suite.default_profile
    suite.check_profile(profile)
    if args.tflops <= 0:
        raise UsageError(f"--tflops must be positive, got {args.tflops}")
    tflops = plan.calibrate(Path(args.calibrate)) if args.calibrate else args.tflops
    rows = plan.summarise(runner.expand(suite, profile, args.seeds), tflops)
    source = f"as run in {args.calibrate}" if args.calibrate else "assumed"
    print(f"suite {suite.name}, profile {profile}, at {tflops:.3g} TFLOP/s sustained ({source}):")
    print(f"  {'experiment':24} {'cells':>6} {'PFLOP':>10} {'device-hours':>13}")
    for row in rows:
        print(f"  {row['experiment']:24} {row['cells']:>6} {row['pflop']:>10.3g} {row['hours']:>13.3g}")
    return 0


def speed_(argv: list[str]) -> int:
    from suite import speed  # imported on demand: it is a benchmark, not part of a run

    return speed.main(argv)


COMMANDS = {
    "list": list_,
    "report": report_,
    "merge": merge_,
    "plan": plan_,
    "ledger": ledger_,
    "speed": speed_,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        return run(argv)
    except UsageError as e:
        print(f"rpg-bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rpg-bench: interrupted; finished cells are recorded, run the same command to resume", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
