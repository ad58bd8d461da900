"""Which modules of the packages a coverage run never exercised: the fast layer's check.

`tox -e fast` runs `pytest -m "not slow"` under coverage.py, then this script over its data:
every module of suite/, rpg/ and baselines/ must have run code, or the fast layer would
leave a module that only the slow layer checks. A module that defines functions must have
run at least one of them (an import alone runs only its top level); a module of constants
and imports alone must have been imported. Prints each module that falls short and exits 1;
exits 0 saying how many modules it checked.

    python tests/exercised.py [--data-file .coverage] [--root .] [PACKAGE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import coverage

PACKAGES = ("suite", "rpg", "baselines")


def shortfalls(report: dict, root: Path, packages: list[str]) -> list[str]:
    """One line per module under `packages` that coverage's JSON `report` shows unexercised."""
    files = {str(Path(name).resolve()): entry for name, entry in report["files"].items()}
    lines = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            entry = files.get(str(path.resolve()))
            if entry is None or (entry["summary"]["num_statements"] and not entry["executed_lines"]):
                lines.append(f"{name}: never imported")
                continue
            # "" is the top level; a function with no statement (an abstract method's docstring) has nothing to run
            functions = {n: f for n, f in entry["functions"].items() if n and f["summary"]["num_statements"]}
            if functions and not any(f["executed_lines"] for f in functions.values()):
                lines.append(f"{name}: imported, but none of its {len(functions)} functions ran")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="*", default=list(PACKAGES))
    parser.add_argument("--data-file", default=None, help="coverage's data file (default: its own, $COVERAGE_FILE)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    cov = coverage.Coverage(**({"data_file": args.data_file} if args.data_file else {}))
    cov.load()
    if not cov.get_data().measured_files():
        print(f"no coverage data in {cov.config.data_file}: run the tests under `coverage run` first")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out), ignore_errors=True)
        report = json.loads(out.read_text())
    missing = shortfalls(report, args.root, args.packages)
    checked = sum(1 for p in args.packages for _ in (args.root / p).rglob("*.py"))
    for line in missing:
        print(line)
    if missing:
        print(f"{len(missing)} of {checked} modules not exercised: give each a fast test (one not marked slow)")
        return 1
    print(f"every one of {checked} modules in {', '.join(args.packages)} was exercised")
    return 0


if __name__ == "__main__":
    sys.exit(main())
