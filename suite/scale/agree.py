"""`rpg-bench agree A B`: does what one run says hold in another of the same suite, at
another scale (a profile, a recipe, more seeds)?

Every verdict rpg-bench gives today comes from a scale below the paper's, and is only worth
reading if the cheap run ranks methods as the expensive one does. This answers that from
two runs' records:

- rows are paired by experiment, network, method and budget *position*: the budget of the
  suite each row was built for, as the suite writes it ("5%", "45K", "cpm"; a profile's
  widths change the counts, not the position), or, where the suite cannot be read, the
  row's rank among its experiment's budgets;
- Kendall's tau between the two runs' row means within each leaderboard (an experiment at
  one budget position), and pooled over leaderboards weighted by their pairs of rows, with
  a bootstrap interval over seeds (each row's seeds resampled in both runs);
- each claim judged in either run, its verdict in both and their ``agreement``: ``stable``
  (the same verdict), ``changed`` (reproduced in one and not reproduced in the other, or a
  compared effect whose sign flips with both intervals clear of zero) or ``undetermined``
  (inconclusive, or not judged, in one of them);
- every compared pair's effect and interval in both.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sp

from suite import claims, records
from suite.claims.verdicts import JUDGED, NOT_REPRODUCED, REPRODUCED, Verdict
from suite.counting import solver
from suite.counting.ledger import format_count
from suite.errors import BudgetError, UsageError
from suite.report.frame import frame, ok_rows
from suite.suites import spec
from suite.suites.budgets import Budgets
from suite.suites.spec import Budget

STABLE, CHANGED, UNDETERMINED = "stable", "changed", "undetermined"
ROW = ["experiment", "arch", "method", "position"]
BOOTSTRAP = 1000  # resamples for tau's interval
LEVEL = 0.95


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="a results folder written by rpg-bench (the cheaper run, say)")
    p.add_argument("b", help="another results folder of the same suite (any profile, recipe or seeds)")
    p.add_argument("--json", action="store_true", help="print the agreement as JSON (suite/schemas/agree.json)")


class Run:
    """One run's ok rows, with each row's budget position, and its verdicts."""

    def __init__(self, out: Path) -> None:
        if not (out / records.RECORDS).is_dir():
            raise UsageError(f"{out} holds no rpg-bench records (expected {out / records.RECORDS}/)")
        self.out = out
        self.run, recs = records.read_run(out)
        ok = ok_rows(frame(recs))
        self.rows = ok.assign(position=_positions(ok, self._suite())) if len(ok) else ok
        self.verdicts = {v.claim.id: v for v in claims.judge(claims.load(), ok, self.run)}

    def _suite(self) -> spec.Suite | None:
        """The suite that made the run; a moved suite file falls back to the built-in of its name."""
        found = claims.run_suite(self.run)
        if found is None and self.suite in spec.builtin():
            found = spec.load(self.suite)
        return found

    @property
    def suite(self) -> str:
        return self.run.get("suite", "")

    def budgets(self) -> dict[tuple[str, str], int]:
        """(experiment, position) -> the backbone count it stands for in this run."""
        g = self.rows.groupby(["experiment", "position"])["budget"].first()
        return {k: int(v) for k, v in g.items()}

    def seeds(self) -> dict[tuple, np.ndarray]:
        """Each row's values over its seeds, by (experiment, network, method, position)."""
        return {k: g["value"].to_numpy(float) for k, g in self.rows.groupby(ROW)}


def _written(budget: Budget) -> str:
    """A budget as a suite writes it: "5%", "45K", "cpm"."""
    if isinstance(budget, float):
        return f"{budget * 100:g}%"
    return format_count(budget) if isinstance(budget, int) else budget


def _positions(ok: pd.DataFrame, suite: spec.Suite | None) -> list[str]:
    """Each row's budget position: the suite's budget it was built for, as the suite writes
    it, which names the same position at every profile while the counts change; where the
    suite cannot be read, the row's rank among its experiment's budgets ("#2")."""
    labels = {}
    for experiment in suite.experiments if suite else []:
        profile = ok.loc[ok["experiment"] == experiment.name, "profile"]
        if not len(profile):
            continue
        try:
            budgets = Budgets(experiment, str(profile.iloc[0]))
            runs = [(a, m, budgets.count(a, b), _written(b)) for a, m, b in budgets.runs()]
        except (UsageError, BudgetError, KeyError):
            continue
        labels[experiment.name] = runs
    rank = ok.groupby("experiment")["budget"].rank(method="dense").astype(int)
    out = []
    for (_, row), k in zip(ok.iterrows(), rank, strict=True):
        found = [
            label
            for a, m, count, label in labels.get(row["experiment"], [])
            if (a, m) == (row["arch"], row["method"]) and abs(count - row["budget"]) <= solver.TOLERANCE * count
        ]
        out.append(found[0] if found else f"#{k}")
    return out


def _tau(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, int]:
    """Kendall's tau-b of one leaderboard's row means, and its number of row pairs."""
    a, b = zip(*pairs, strict=True)
    tau = sp.kendalltau(a, b).statistic
    return float(tau), len(pairs) * (len(pairs) - 1) // 2


def pooled_tau(boards: dict, a: dict, b: dict) -> float:
    """Tau within each leaderboard, pooled by their pairs of rows (a board whose means are
    all tied in one run carries no ordering and is left out)."""
    total = weight = 0.0
    for keys in boards.values():
        tau, pairs = _tau([(a[k], b[k]) for k in keys])
        if math.isfinite(tau):
            total, weight = total + tau * pairs, weight + pairs
    return total / weight if weight else math.nan


def taus(first: Run, second: Run) -> dict:
    """Pooled tau with its bootstrap interval over seeds, and each leaderboard's own tau."""
    sa, sb = first.seeds(), second.seeds()
    shared = sorted(set(sa) & set(sb))
    boards: dict[tuple[str, str], list] = {}
    for key in shared:
        boards.setdefault((key[0], key[3]), []).append(key)
    boards = {k: v for k, v in boards.items() if len(v) > 1}
    means = lambda seeds: {k: float(np.mean(v)) for k, v in seeds.items()}  # noqa: E731
    ma, mb = means(sa), means(sb)
    tau = pooled_tau(boards, ma, mb)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(BOOTSTRAP if boards else 0):
        ra = {k: float(rng.choice(sa[k], len(sa[k])).mean()) for k in shared}
        rb = {k: float(rng.choice(sb[k], len(sb[k])).mean()) for k in shared}
        draws.append(pooled_tau(boards, ra, rb))
    draws = [d for d in draws if math.isfinite(d)]
    tail = (1 - LEVEL) / 2
    ci = [float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))] if draws else [tau, tau]
    per_board = [
        {"experiment": e, "position": p, "rows": len(keys), "tau": _finite(_tau([(ma[k], mb[k]) for k in keys])[0])}
        for (e, p), keys in sorted(boards.items())
    ]
    return {"tau": _finite(tau), "tau_ci": [_finite(x) for x in ci], "rows": len(shared), "boards": per_board}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _effects(v: Verdict, positions: dict[tuple[str, int], str]) -> dict[tuple, dict]:
    """A verdict's compared effects by (experiment, budget position, left, right)."""
    out = {}
    for d in v.details:
        at = positions.get((d["experiment"], d.get("budget")))
        for p in d.get("pairs", []):
            out[(d["experiment"], at, p["left"], p["right"])] = _effect(p["diff"], p["ci"])
        if "statistic" in d:
            s = d["statistic"]
            out[(d["experiment"], at, "statistic", s["bound"])] = _effect(s["estimate"], s["ci"])
    return out


def _effect(diff: float, ci) -> dict:
    """An effect as JSON holds it: an unbounded end (one seed) is null."""
    return {"diff": diff, "ci": [_finite(float(x)) for x in ci]}


def _flipped(x: dict, y: dict) -> bool:
    """The same effect clear of zero in both runs, with opposite signs (an unbounded end,
    None, is never clear of zero)."""

    def above(e: dict) -> bool:
        return e["ci"][0] is not None and e["ci"][0] > 0

    def below(e: dict) -> bool:
        return e["ci"][1] is not None and e["ci"][1] < 0

    return (above(x) and below(y)) or (below(x) and above(y))


def agreement(a: Verdict | None, b: Verdict | None, flips: bool) -> str:
    va, vb = (v.verdict if v else None for v in (a, b))
    if {va, vb} == {REPRODUCED, NOT_REPRODUCED} or flips:
        return CHANGED
    if va in JUDGED and va == vb:
        return STABLE
    return UNDETERMINED


def compare(first: Run, second: Run) -> dict:
    """The agreement of two runs of one suite, as `--json` prints it."""
    if first.suite != second.suite:
        raise UsageError(f"agree: {first.out} ran suite {first.suite!r}, {second.out} {second.suite!r}; one suite")
    out = taus(first, second)
    if not out["rows"]:
        raise UsageError(f"agree: {first.out} and {second.out} share no row (experiment, network, method, budget)")
    pa, pb = first.budgets(), second.budgets()
    at_a = {(e, budget): p for (e, p), budget in pa.items()}
    at_b = {(e, budget): p for (e, p), budget in pb.items()}
    pairing = [
        {"experiment": e, "position": p, "a_budget": budget, "b_budget": pb[(e, p)]}
        for (e, p), budget in sorted(pa.items(), key=lambda item: (item[0][0], item[1]))
        if (e, p) in pb
    ]
    verdicts, pairs = [], []
    for cid in sorted(set(first.verdicts) | set(second.verdicts)):
        a, b = first.verdicts.get(cid), second.verdicts.get(cid)
        if not any(v is not None and v.verdict in JUDGED for v in (a, b)):
            continue
        ea, eb = (_effects(v, at) if v else {} for v, at in ((a, at_a), (b, at_b)))
        both = [k for k in ea if k in eb]
        flips = any(_flipped(ea[k], eb[k]) for k in both)
        verdicts.append({"id": cid, "a": a.verdict if a else None, "b": b.verdict if b else None})
        verdicts[-1]["agreement"] = agreement(a, b, flips)
        for k in both:
            experiment, position, left, right = k
            pairs.append({"claim": cid, "experiment": experiment, "position": position, "left": left, "right": right})
            pairs[-1] |= {"a": ea[k], "b": eb[k], "flipped": _flipped(ea[k], eb[k])}
    return (
        out
        | {"a": str(first.out), "b": str(second.out), "suite": first.suite}
        | {
            "profiles": [first.run.get("profile"), second.run.get("profile")],
            "pairing": pairing,
            "claims": verdicts,
            "pairs": pairs,
        }
    )


def _number(x: float | None, fmt: str = "+.3g") -> str:
    return "–" if x is None else format(x, fmt)


def text(result: dict) -> str:
    """The agreement as a short table a person reads in a terminal."""
    lo, hi = result["tau_ci"]
    lines = [
        f"agree: {result['a']} (profile {result['profiles'][0]}) against {result['b']} "
        f"(profile {result['profiles'][1]}), suite {result['suite']}",
        f"rows paired: {result['rows']}, by experiment, network, method and budget position:",
    ]
    lines += [
        f"  {p['experiment']:14} {p['position']:>6}: {p['a_budget']:,} in A, {p['b_budget']:,} in B"
        for p in result["pairing"]
    ]
    lines.append(
        f"Kendall's tau of the row means within each leaderboard, pooled: {_number(result['tau'], '.3f')} "
        f"(95% bootstrap over seeds [{_number(lo, '.3f')}, {_number(hi, '.3f')}])"
    )
    lines += [
        f"  {b['experiment']:14} {b['position']:>6}: tau {_number(b['tau'], '.3f')} over {b['rows']} rows"
        for b in result["boards"]
    ]
    counts = {k: sum(c["agreement"] == k for c in result["claims"]) for k in (STABLE, CHANGED, UNDETERMINED)}
    lines.append(
        f"claims judged in either run: {len(result['claims'])} ({counts[STABLE]} stable, {counts[CHANGED]} changed, "
        f"{counts[UNDETERMINED]} undetermined)"
    )
    lines += [f"  {c['id']:26} {c['a'] or '–':15} {c['b'] or '–':15} {c['agreement']}" for c in result["claims"]]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    result = compare(Run(Path(args.a)), Run(Path(args.b)))
    print(json.dumps(result, indent=1) if args.json else text(result))
    return 0
