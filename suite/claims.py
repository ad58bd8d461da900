"""The paper's claims as data (suite/claims/rpg.toml), and verdicts on a run's results.

A verdict is one of: reproduced, not reproduced, inconclusive, not run. Comparisons use
95% confidence intervals over seeds (Welch's t for differences), so one seed, or
intervals that straddle the claim, give "inconclusive", never a guess.

- value claims (the paper's numbers) are compared only at paper scale: the `full`
  profile on the paper's own task; elsewhere they are "not run".
- ordering claims ("rpg > hash > random at the same budget") are checked at every budget
  of every experiment that measures them, at any scale: each adjacent pair must differ
  in the claimed direction with its CI clear of zero.
- relation and power-law claims are listed; their checks arrive with the suites that
  measure them (until then "not run").
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from importlib import resources

import pandas as pd
from scipy import stats

from suite.errors import UsageError

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)
PAPER_TASKS = {"cifar10", "cifar100", "imagenet", "mpii", "s3dis", "objectnet"}


@dataclass
class Verdict:
    claim: dict
    verdict: str
    details: list[dict] = field(default_factory=list)  # one per (experiment, budget) checked
    reason: str = ""


def load() -> list[dict]:
    """Every claim in suite/claims/*.toml, with its file named in any error."""
    out = []
    folder = resources.files("suite") / "claims"
    for path in sorted(p for p in folder.iterdir() if p.name.endswith(".toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"claims file {path} is malformed: {e}") from None
        for claim in data.get("claim", []):
            for key in ("id", "kind", "statement"):
                if key not in claim:
                    raise UsageError(f"claims file {path}: a claim has no {key!r} ({claim.get('id', '?')})")
            out.append(claim)
    ids = [c["id"] for c in out]
    if len(ids) != len(set(ids)):
        raise UsageError("claims files: claim ids must be unique")
    return out


def welch(a: pd.Series, b: pd.Series) -> tuple[float, float, float]:
    """Mean difference a - b and its 95% CI (Welch); infinite where either has one seed."""
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, -float("inf"), float("inf")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = (va + vb) ** 0.5
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof) * se)
    return diff, diff - half, diff + half


def _rows(frame: pd.DataFrame, entry: str) -> pd.DataFrame:
    arch, _, method = entry.rpartition("/")
    rows = frame[frame["method"] == method]
    return rows[rows["arch"] == arch] if arch else rows


def _ordering(claim: dict, ok: pd.DataFrame, experiment: str) -> list[dict]:
    sign = 1.0 if claim.get("direction", "higher") == "higher" else -1.0
    details = []
    data = ok[ok["experiment"] == experiment]
    for budget, group in data.groupby("budget", sort=True):
        series = [_rows(group, entry)["value"] for entry in claim["order"]]
        if any(len(s) == 0 for s in series):
            continue
        pairs, verdicts = [], []
        for (left, a), (right, b) in itertools.pairwise(zip(claim["order"], series, strict=True)):
            diff, lo, hi = welch(a, b)
            diff, lo, hi = sign * diff, min(sign * lo, sign * hi), max(sign * lo, sign * hi)
            holds = REPRODUCED if lo > 0 else NOT_REPRODUCED if hi < 0 else INCONCLUSIVE
            pairs.append({"left": left, "right": right, "diff": diff, "ci": (lo, hi), "verdict": holds})
            verdicts.append(holds)
        details.append({"experiment": experiment, "budget": int(budget), "pairs": pairs, "verdict": _combine(verdicts)})
    return details


def _combine(verdicts: list[str]) -> str:
    if not verdicts:
        return NOT_RUN
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE


def _value(claim: dict, ok: pd.DataFrame, run: dict, experiment: str) -> list[dict]:
    data = ok[(ok["experiment"] == experiment) & (ok["method"] == claim.get("method"))]
    if claim.get("arch"):
        data = data[data["arch"] == claim["arch"]]
    if run.get("profile") != "full" or claim.get("task") not in PAPER_TASKS:
        return []
    details = []
    for budget, g in data.groupby("budget"):
        values = g["value"]
        mean = float(values.mean())
        tol = claim.get("tolerance", 0) or claim.get("relative_tolerance", 0) * abs(claim["value"])
        if len(values) < 2:
            verdict = INCONCLUSIVE
        else:
            half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / len(values) ** 0.5)
            lo, hi = mean - half, mean + half
            inside = lo >= claim["value"] - tol and hi <= claim["value"] + tol
            outside = hi < claim["value"] - tol or lo > claim["value"] + tol
            verdict = REPRODUCED if inside else NOT_REPRODUCED if outside else INCONCLUSIVE
        details.append(
            {"experiment": experiment, "budget": int(budget), "measured": mean, "n": len(values), "verdict": verdict}
        )
    return details


def judge(claims: list[dict], ok: pd.DataFrame, run: dict) -> list[Verdict]:
    """A verdict for every claim, from the ok rows of this run."""
    present = set(ok["experiment"]) if len(ok) else set()
    suite = run.get("suite", "")
    out = []
    for claim in claims:
        measured_by = [e.split("/", 1)[1] for e in claim.get("experiments", []) if e.split("/", 1)[0] == suite]
        measured_by = [e for e in measured_by if e in present]
        if not measured_by:
            out.append(Verdict(claim, NOT_RUN, reason="no experiment of this run measures it"))
            continue
        details = []
        for experiment in measured_by:
            if claim["kind"] == "ordering":
                details += _ordering(claim, ok, experiment)
            elif claim["kind"] == "value":
                details += _value(claim, ok, run, experiment)
        if not details:
            reason = (
                "compared only at paper scale (full profile, the paper's data)"
                if claim["kind"] == "value"
                else f"{claim['kind']} claims are not checked yet"
            )
            out.append(Verdict(claim, NOT_RUN, reason=reason))
            continue
        out.append(Verdict(claim, _combine([d["verdict"] for d in details]), details))
    return out


def summary(verdicts: list[Verdict]) -> dict[str, int]:
    return {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}
