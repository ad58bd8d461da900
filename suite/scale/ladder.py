"""`rpg-bench ladder RUN... --out DIR`: one suite's runs at rising compute (a compute
ladder: the same cells at 1, 3, 10 epochs, say), and whether what each says holds as the
compute grows.

The rungs are ordered by the compute their cells counted (suite.run.plan's PFLOP of the ok
cells), and `rpg-bench agree` is taken between consecutive rungs and between the lowest
and the highest. For each claim judged on some rung, the page draws every compared
effect with its 95% interval at each rung against compute, the paper's gap as a line,
and says whether the verdict was ``stable`` along the ladder (the same judged verdict on
every rung), ``changed`` (between some two consecutive rungs, as `agree` defines it) or
``undetermined``. DIR gets ladder.html (self-contained, like the report), ladder.json
and each agreement whole, as `rpg-bench agree --json` prints it (agree-A--B.json, named by
the rungs' folders); each rung gets rung.json (suite.report.rung) and its report drawn again, so
its claims.json and page say, beside each verdict, how it fared along the ladder.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

from markupsafe import Markup

from suite import records, report
from suite.cells import Cell
from suite.claims.setting import gap_text
from suite.claims.verdicts import JUDGED
from suite.errors import UsageError
from suite.report import kept, rung
from suite.report.page import template
from suite.run import plan
from suite.scale import agree

NO_FIGURES = "matplotlib is not installed: no figure is drawn (pip install 'rpg-bench[report]' draws them)"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="results folders of one suite, at rising compute (any order)")
    p.add_argument("--out", required=True, help="the folder that gets ladder.html and ladder.json")


def pflop(run: agree.Run) -> float:
    """The compute a rung's ok cells counted, in PFLOP (suite.run.plan's count)."""
    _, recs = records.read_run(run.out)
    return sum(plan.cell_flops(Cell.from_config(r["config"])) for r in recs if r["status"] == "ok") / 1e15


def _rung(run: agree.Run, compute: float) -> dict:
    epochs = sorted({int(e) for e in run.rows["epochs"].dropna()}) if "epochs" in run.rows else []
    return {"out": str(run.out), "profile": run.run.get("profile"), "epochs": epochs, "pflop": compute}


def _agreement(compared: dict, cid: str) -> str:
    return next((c["agreement"] for c in compared["claims"] if c["id"] == cid), agree.UNDETERMINED)


def _along(verdicts: list[str | None], steps: list[str]) -> str:
    if agree.CHANGED in steps:
        return agree.CHANGED
    if verdicts and all(v in JUDGED for v in verdicts) and len(set(verdicts)) == 1:
        return agree.STABLE
    return agree.UNDETERMINED


def _file(a: str, b: str, taken: set[str]) -> str:
    name = f"agree-{Path(a).name}--{Path(b).name}.json"
    if name in taken:  # rungs in different parents with one name
        name = f"agree-{len(taken)}-{name.removeprefix('agree-')}"
    taken.add(name)
    return name


def build(runs: list[agree.Run]) -> tuple[dict, dict[str, dict]]:
    """The ladder as ladder.json holds it, and each agreement whole by its file name."""
    if len(runs) < 2:
        raise UsageError("ladder: give two or more runs of one suite")
    computed = sorted(((pflop(r), r) for r in runs), key=lambda x: x[0])
    runs = [r for _, r in computed]
    steps = list(itertools.pairwise(runs)) + ([(runs[0], runs[-1])] if len(runs) > 2 else [])
    agreements = [agree.compare(a, b) for a, b in steps]
    ids = sorted({c["id"] for g in agreements for c in g["claims"]})
    consecutive = agreements[: len(runs) - 1]
    taken: set[str] = set()
    files = [_file(g["a"], g["b"], taken) for g in agreements]
    claims = []
    for cid in ids:
        verdicts = [r.verdicts[cid].verdict if cid in r.verdicts else None for r in runs]
        changes = [_agreement(g, cid) for g in consecutive]
        judged = [r.verdicts.get(cid) for r in runs]
        gap = next((v.scale_gap for v in judged if v is not None and v.scale_gap), None)
        claims.append(
            {"id": cid, "verdicts": verdicts, "along": _along(verdicts, changes), "steps": changes}
            | {"effects": _effects(cid, runs), "scale": gap_text(gap)}
        )
    ladder = {
        "suite": runs[0].suite,
        "rungs": [_rung(r, c) for c, r in computed],
        "agreements": [
            {"a": g["a"], "b": g["b"], "tau": g["tau"], "tau_ci": g["tau_ci"], "rows": g["rows"]}
            | {"changed": [c["id"] for c in g["claims"] if c["agreement"] == agree.CHANGED], "file": f}
            for g, f in zip(agreements, files, strict=True)
        ],
        "claims": claims,
    }
    return ladder, dict(zip(files, agreements, strict=True))


def _effects(cid: str, runs: list[agree.Run]) -> list[dict]:
    """Each compared effect of a claim across the rungs: its interval at each (None where a
    rung did not compare it) and the paper's gap."""
    out: dict[tuple, dict] = {}
    for i, run in enumerate(runs):
        v = run.verdicts.get(cid)
        if v is None:
            continue
        at = {(e, budget): p for (e, p), budget in run.budgets().items()}
        for d in v.details:
            for p in d.get("pairs", []):
                key = (d["experiment"], at.get((d["experiment"], d.get("budget"))), p["left"], p["right"])
                row = out.setdefault(key, {"label": _label(key), "paper": p.get("paper"), "at": [None] * len(runs)})
                row["at"][i] = agree._effect(p["diff"], p["ci"])
    return list(out.values())


def _label(key: tuple) -> str:
    experiment, position, left, right = key
    return f"{left} − {right} ({experiment}{', ' + position if position else ''})"


def _figure(claim: dict, compute: list[float]) -> str:
    from suite.report import plots  # the [report] extra

    return plots.ladder(claim["effects"], compute)


def render(ladder: dict, agreements: dict[str, dict], out: Path) -> Path:
    """DIR/ladder.json, each agreement's file and DIR/ladder.html."""
    for name, agreement in agreements.items():
        records.write_json(out / name, agreement)
    records.write_json(out / "ladder.json", ladder)
    compute = [r["pflop"] for r in ladder["rungs"]]
    try:
        figures = {c["id"]: Markup(_figure(c, compute)) for c in ladder["claims"] if c["effects"]}
        missing = ""
    except ImportError:
        figures, missing = {}, NO_FIGURES
    links = {r["out"]: Path(os.path.relpath(r["out"], out)).as_posix() for r in ladder["rungs"]}
    page = template("ladder.html.j2").render(ladder=ladder, figures=figures, missing=missing, links=links)
    path = out / "ladder.html"
    records.write_atomic(path, page)
    return path


def main(args: argparse.Namespace) -> int:
    runs = [agree.Run(Path(r)) for r in args.runs]
    ladder, agreements = build(runs)
    path = render(ladder, agreements, Path(args.out))
    for run in runs:  # each rung's verdicts say how they fared along the ladder
        rung.write(run.out, ladder, path, kept.digest(records.read_run(run.out)[1]))
        report.render(run.out)
    for g in ladder["agreements"]:
        tau = "–" if g["tau"] is None else f"{g['tau']:.3f}"
        changed = ", ".join(g["changed"]) or "none"
        print(f"{g['a']} → {g['b']}: tau {tau} over {g['rows']} rows; claims changed: {changed}")
    print(f"ladder: {path}; each rung's claims.json and report now say how its verdicts fared along it")
    return 0
