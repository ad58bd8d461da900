"""``rpg-bench doctor``: every device path rpg-bench relies on, exercised once, each with a verdict.

Most of rpg-bench's GPU code cannot run on a machine without one, so it is checked here, in
one command, the first time a GPU exists: CUDA-event timing against the wall clock, NVML
and the allocator's peak on a known allocation, ONNX Runtime's CUDA provider with an
output check, RPG's backward under deterministic algorithms, RPG's training-step cost
against plain (``rpg-bench speed``), bf16 autocast training of a converted ResNet (in
channels-last memory on CUDA), its training step through ``torch.compile`` (``--compile``),
``--jobs 2`` over two GPUs and a ``torchrun`` cell with SyncBatchNorm. Each GPU path has a CPU
counterpart that runs everywhere. A path whose device is missing is skipped with the
reason; a path that breaks is recorded as failed with the error, and the others still run.
The verdicts go to a JSON file (one entry per path, with its figures) and the exit code is
1 when any path failed.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from suite import records
from suite.cli import device_paths as paths
from suite.cli.device_paths import Failed
from suite.errors import UsageError
from suite.system import env


@dataclass(frozen=True)
class Check:
    name: str
    needs: int  # CUDA devices the path needs (0: the CPU)
    what: str
    run: Callable[[torch.device, Path], dict]


def arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Exercise every device path (timing, memory, ONNX Runtime, deterministic backward, speed, bf16, "
        "--jobs, torchrun) and write a JSON verdict per path; GPU paths are skipped, with the reason, "
        "where there is no GPU."
    )
    p.add_argument("--out", help="the JSON file of verdicts (default: $RPG_BENCH_REPORTS/doctor.json or reports/)")
    p.add_argument("--only", help="comma-separated name patterns of the paths to run (e.g. 'onnx.*,timing.cpu')")
    p.add_argument("--list", action="store_true", help="list the paths and exit")


CHECKS = [
    Check("timing.cpu", 0, "perf_counter timing against the wall clock", paths.timing),
    Check("timing.cuda", 1, "CUDA-event timing against the wall clock", paths.timing),
    Check("nvml.cuda", 1, "NVML sees a known allocation", paths.nvml_reading),
    Check("memory.cpu", 0, "isolated resident-set peaks (memprobe)", paths.cpu_memory),
    Check("memory.cuda", 1, "the allocator's peak on a known allocation", paths.allocator),
    Check("onnx.cpu", 0, "ONNX Runtime's CPU provider agrees with torch", paths.onnx_runtime),
    Check("onnx.cuda", 1, "ONNX Runtime's CUDA provider agrees with torch", paths.onnx_runtime),
    Check("backward.cpu", 0, "RPG's backward, deterministic", paths.backward),
    Check("backward.cuda", 1, "RPG's backward, deterministic on CUDA", paths.backward),
    Check("speed.cpu", 0, "RPG vs plain training step (rpg-bench speed, short)", paths.step_cost),
    Check("speed.cuda", 1, "RPG vs plain training step (rpg-bench speed)", paths.step_cost),
    Check("bf16.cpu", 0, "bf16 autocast training of a converted ResNet", paths.bf16),
    Check("bf16.cuda", 1, "bf16 autocast, channels-last training of a converted ResNet", paths.bf16),
    Check("compile.cpu", 0, "a converted network's training step through torch.compile", paths.compiled),
    Check("compile.cuda", 1, "torch.compile'd bf16 channels-last training step", paths.compiled),
    Check("jobs.cpu", 0, "--jobs 2 sharing the CPU", paths.jobs),
    Check("jobs.cuda", 2, "--jobs 2 over two GPUs", paths.jobs),
    Check("torchrun.cpu", 0, "a torchrun cell (gloo)", paths.torchrun),
    Check("torchrun.cuda", 1, "a torchrun cell (NCCL, SyncBatchNorm)", paths.torchrun),
]


# -- running them --------------------------------------------------------------------------


def _selected(only: str | None) -> list[Check]:
    if not only:
        return CHECKS
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    chosen = [c for c in CHECKS if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    if not chosen:
        raise UsageError(f"--only {only!r} matches no path; paths are {', '.join(c.name for c in CHECKS)}")
    return chosen


def run_check(check: Check, work: Path) -> dict:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    entry = {"path": check.name, "what": check.what}
    if check.needs > count:
        need = "a CUDA device" if check.needs == 1 else f"{check.needs} CUDA devices"
        return entry | {"status": "skipped", "reason": f"needs {need}; {count} here"}
    device = torch.device("cuda", 0) if check.needs else torch.device("cpu")
    t0 = time.perf_counter()
    try:
        figures = check.run(device, work)
        entry |= {"status": "pass", "summary": figures.pop("summary", ""), "figures": figures}
    except Failed as e:
        entry |= {"status": "fail", "reason": str(e), "figures": e.figures}
    except Exception as e:  # a path that breaks is its verdict, not the doctor's end
        entry |= {"status": "fail", "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    return entry | {"seconds": round(time.perf_counter() - t0, 2)}


def main(args: argparse.Namespace) -> int:
    if args.list:
        for c in CHECKS:
            print(f"{c.name:16} {c.what}")
        return 0
    chosen = _selected(args.only)
    out = Path(args.out or Path(os.environ.get("RPG_BENCH_REPORTS") or "reports") / "doctor.json")
    # cuBLAS is deterministic only with a fixed workspace, set before its first use.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"rpg-bench doctor: {len(chosen)} paths on {env.fingerprint(device)['device_name']}, torch {torch.__version__}"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="rpg-doctor-") as tmp:
        for check in chosen:
            work = Path(tmp) / check.name
            work.mkdir()
            entry = run_check(check, work)
            results.append(entry)
            detail = entry.get("summary") or entry.get("reason", "")
            seconds = f"{entry['seconds']:6.1f} s" if "seconds" in entry else " " * 8
            print(f"  {entry['status'].upper():7} {check.name:14} {seconds}  {detail}", flush=True)
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "fail", "skipped")}
    out.parent.mkdir(parents=True, exist_ok=True)
    records.write_json(out, {"env": env.fingerprint(device), "counts": counts, "paths": results})
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped: {out}")
    return 1 if counts["fail"] else 0
