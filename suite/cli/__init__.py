"""rpg-bench's command line: argparse subcommands; bare ``rpg-bench [options]`` is ``run``.

Exit codes: 0 success, 1 a cell failed (or a comparison regressed or was not made in full), 2 bad input (one line
on stderr, nothing written), 143 stopped by SIGTERM and 130 by Ctrl-C (suite.system.stopping)."""

from __future__ import annotations

import argparse
import difflib
import os
import sys

import suite
from suite import archs, history, methods, registry, tasks  # noqa: F401 (their registries, for load_plugins)
from suite.args import Parser
from suite.cli import commands, doctor, show_claims
from suite.errors import UsageError, describe
from suite.measure import speed
from suite.run import launch
from suite.run import plan as plan_
from suite.scale import agree, ladder
from suite.system import distributed, lifeline, stopping

DEFAULT_SUITE = "digits"


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--suite", default=DEFAULT_SUITE, help="built-in suite name or path to a suite TOML (default: digits)"
    )
    p.add_argument(
        "--profile",
        help="full (the paper's recipe), nightly (GPU suites: their comparisons at under a tenth of full's "
        "compute), cpu or smoke (seconds on CPU); default: the suite's",
    )
    p.add_argument("--out", help="output folder (default: $RPG_BENCH_REPORTS/<suite>/, else reports/<suite>/)")
    p.add_argument(
        "--data-root",
        help="where data sets live (default: $RPG_BENCH_DATA_ROOT, else the user's cache folder, "
        "~/.cache/rpg-bench/data on Linux, where CIFAR and Fashion-MNIST are downloaded; see datasets/README.md)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seeds", type=int, help="seeds per cell (default: the suite's)")
    p.add_argument("--methods", help="comma-separated subset of the suite's methods")
    p.add_argument("--experiments", help="comma-separated subset of the suite's experiments")
    _claims_argument(p)
    _set_argument(p)
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        help="the training step's arithmetic (default: the profile's; full is the paper's fp32): --set precision=P",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="train through torch.compile (forward and backward; opt-in: every cell pays its compile); "
        "recorded with each cell, not part of its key",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and ONNX Runtime timing")
    p.add_argument(
        "--shard", metavar="K/N", help="run only shard K of N of the cells (merge them with rpg-bench merge)"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="run N cells at once, one per GPU (cuda:0..N-1), or sharing the CPU's cores (default 1; on a CPU, "
        "a suite whose cells use few threads, such as digits, runs one cell per threads_per_cell of them)",
    )
    p.add_argument("--open", dest="open", action="store_true", default=None, help="open the report in a browser")
    p.add_argument("--no-open", dest="open", action="store_false", help="do not open the report")
    launch.arguments(p)


def _claims_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--claims",
        metavar="PATTERN[,PATTERN...]",
        help="only the cells that settle these claims (globs on claim ids, in any case: 't2.*', 'fig5.*'; "
        "rpg-bench claims lists them)",
    )


def _set_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a recipe field in every experiment (repeatable: --set epochs=10 --set lr=0.05), or a "
        "method's knob in its cells (--set rpg.ring_std=official); checked against the recipe's fields or the "
        "method's knobs, and part of each cell's key",
    )


def _report_arguments(report: Parser) -> None:
    report.add_argument("out", help="a results folder written by rpg-bench")
    report.add_argument(
        "--compare",
        metavar="PREV",
        help="a baseline: a previous run of the same profile and recipe; writes OUT/compare.json and prints a "
        "summary; exit 1 on a regression, a lost claim or anything not compared in full, 2 if the recipes differ",
    )
    report.add_argument(
        "--no-baseline",
        metavar="REASON",
        help="for CI: a comparison was due and there is no baseline (REASON: e.g. its artifact expired); "
        "writes OUT/compare.json saying so and exits 1",
    )


def _merge_arguments(merge: Parser) -> None:
    merge.add_argument("shards", nargs="+", help="results folders written by rpg-bench --shard K/N")
    merge.add_argument("--out", required=True, help="the merged results folder (created)")
    merge.add_argument(
        "--partial", action="store_true", help="merge even when shards are missing (their cells: not recorded)"
    )


def _ledger_arguments(ledger: Parser) -> None:
    ledger.add_argument("--arch", required=True, metavar="ARCH")
    ledger.add_argument("--method", required=True)
    ledger.add_argument(
        "--budget", required=True, help="a count (2M, 45K, 11173962), a fraction (50%%) or a method (cpm)"
    )
    ledger.add_argument("--width", type=float, default=1.0, help="reference width multiplier (default 1)")
    ledger.add_argument(
        "--classes", type=int, default=None, help="head size (default: 1000 for ImageNet stems, else 100)"
    )
    ledger.add_argument("--in-channels", type=int, default=3)


def _plan_arguments(plan: Parser) -> None:
    plan.add_argument("--suite", default=DEFAULT_SUITE, help="built-in suite name or path to a suite TOML")
    plan.add_argument("--profile", help="default: the suite's")
    plan.add_argument("--seeds", type=int, help="seeds per cell (default: the suite's)")
    plan.add_argument("--methods", help="comma-separated subset of the suite's methods, as a run takes it")
    plan.add_argument("--experiments", help="comma-separated subset of the suite's experiments, as a run takes it")
    plan.add_argument(
        "--precision", choices=["fp32", "bf16"], help="the training precision to cost (--set precision=P)"
    )
    _claims_argument(plan)
    _set_argument(plan)
    rate = plan.add_mutually_exclusive_group()
    rate.add_argument(
        "--tflops",
        type=float,
        help="sustained TFLOP/s of one unit of the profile's device, a GPU or one CPU core (default: "
        f"{plan_.assumed()} per GPU by training precision, {plan_.ASSUMED_CORE_GFLOPS:g} GFLOP/s per CPU core)",
    )
    rate.add_argument("--calibrate", metavar="OUT", help="use the rate a finished run in OUT achieved")


def _claims_listing_arguments(listing: Parser) -> None:
    listing.add_argument("--suite", help="with the suites' cost per profile and whether it can judge each claim")
    listing.add_argument(
        "--tflops",
        type=float,
        help="sustained TFLOP/s of one GPU or CPU core for the costs (default: plan's assumed rate per device)",
    )


def parser() -> Parser:
    p = Parser(
        prog="rpg-bench",
        description="Run RPG and its comparators at matched parameter budgets, record every cell, and judge the "
        "paper's claims. Bare `rpg-bench [options]` is `rpg-bench run [options]`: the embedded default suite.",
    )
    p.add_argument("--version", action="version", version=f"rpg-bench {suite.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    _run_arguments(sub.add_parser("run", help="run a suite and render its report (the default command)"))
    sub.add_parser("list", help="list suites, tasks, methods and architectures")
    _report_arguments(
        sub.add_parser("report", help="re-render OUT's report, results.csv and claims.json from its records")
    )
    _merge_arguments(sub.add_parser("merge", help="merge the folders of --shard runs into OUT and render its report"))
    _ledger_arguments(sub.add_parser("ledger", help="a method's parameter ledger at a budget, as JSON"))
    _plan_arguments(
        sub.add_parser("plan", help="what a suite will cost: cells, counted compute, GPU-hours or CPU core-hours")
    )
    _claims_listing_arguments(
        sub.add_parser("claims", help="every claim: the paper's words, where it is judged, what it costs")
    )
    agree.arguments(sub.add_parser("agree", help="does a verdict hold across scale: two runs' ranks and verdicts"))
    ladder.arguments(sub.add_parser("ladder", help="a suite's runs at rising compute: agreement and effects per claim"))
    history.arguments(
        sub.add_parser("history", help="a suite's nights over time: verdict timelines, row series, steps, a feed")
    )
    speed.arguments(sub.add_parser("speed", help="RPG's run-time cost against the plain network's"))
    doctor.arguments(sub.add_parser("doctor", help="exercise every device path (GPU ones where there is a GPU)"))
    return p


COMMANDS = (
    "run", "list", "claims", "report", "merge", "agree", "ladder", "history", "ledger", "plan", "speed", "doctor",
)  # fmt: skip


def _with_command(argv: list[str]) -> list[str]:
    """argv with its command: bare options run the default; an unknown word is a typo."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["run", *argv]
    if not argv[0].startswith("-") and argv[0] not in COMMANDS:
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f"did you mean `rpg-bench {close[0]}`? " if close else ""
        raise UsageError(f"unknown command {argv[0]!r}: {hint}commands are {', '.join(COMMANDS)}")
    return argv


def _one_line(message: str) -> str:
    """The message on one line: what the user typed may hold newlines or other controls."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        argv = _with_command(argv)
        args = parser().parse_args(argv)
        registry.load_plugins()  # other packages' methods, tasks and architectures, before a suite names them
        rest = argv[1:]
        handlers = {
            "run": lambda: commands.run(args, rest),
            "list": lambda: commands.list_(args),
            "report": lambda: commands.report_(args),
            "merge": lambda: commands.merge_(args, rest),
            "ledger": lambda: commands.ledger_(args),
            "plan": lambda: commands.plan_(args),
            "claims": lambda: show_claims.main(args),
            "agree": lambda: agree.main(args),
            "ladder": lambda: ladder.main(args),
            "history": lambda: history.main(args),
            "speed": lambda: commands.speed_(args),
            "doctor": lambda: doctor.main(args),
        }
        if args.command == "run" and not distributed.launched():
            # A run stops cleanly on SIGTERM as on Ctrl-C (under torchrun, torchrun stops the
            # ranks); a launched task's rpg-bench dies with the task that started it (suite.run.launch).
            lifeline.from_environment()
            with stopping.handling():
                return handlers["run"]()
        return handlers[args.command]()
    except UsageError as e:
        print(f"rpg-bench: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # its reader went away (`rpg-bench list | head`): nothing to tell it
        # Python's advice: stdout onto devnull, so the flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: what a shell reports of a command a closed pipe ended
    except OSError as e:  # a path it reads or writes: not a traceback, and nothing half-written
        print(f"rpg-bench: error: {_one_line(describe(e))}", file=sys.stderr)
        return 2
    except stopping.Stopped as e:
        print(f"rpg-bench: {e.line()}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print(
            "rpg-bench: interrupted; finished cells are recorded, run the same command again to resume", file=sys.stderr
        )
        return 130


def entry() -> None:
    sys.exit(main())
