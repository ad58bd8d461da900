"""The paper's claims as data (suite/claims/rpg.toml), and verdicts on a run's results.

A verdict is one of: reproduced, not reproduced, inconclusive, not run. Comparisons use
95% confidence intervals over seeds (Welch's t for differences), so one seed, or
intervals that straddle the claim, give "inconclusive", never a guess.

- value claims (the paper's numbers) are compared only at paper scale: the `full`
  profile on the paper's own task; elsewhere they are "not run".
- ordering claims ("rpg > hash > random at the same budget") are checked at every budget
  of every experiment that measures them, at any scale: each adjacent pair must differ
  in the claimed direction with its CI clear of zero.
- relation claims ("RPG at half the plain size within 0.5 points of plain") compare two
  rows, each named "arch/method@fraction" (of the plain network's backbone): the CI of
  the difference (or of the ratio) must lie inside the claimed bound.
- power-law claims fit log(metric) = a + b log(backbone) per method over the budgets
  below ``below_fraction`` of the plain size; the CI of the difference between the
  exponents must lie within ``max_exponent_diff``.

Entries are "method" or "arch/method". In an experiment that runs one network, that
network stands in for whatever network an entry names (the fashion suite's ResNet-10
for the paper's ResNet-34), and the evidence says so; a claim whose entries then
coincide (ResNet-34-RPG vs ResNet-18-RPG) is not run. In an experiment that runs several
networks, an entry without an architecture means the experiment's own.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources

import pandas as pd
from scipy import stats

from suite import archs, methods, tasks
from suite.errors import UsageError
from suite.ledger import format_count

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


def _resolve(entries: list[str], data: pd.DataFrame, default_arch: str) -> list[tuple[str, str]] | None:
    """The (arch, method) rows each entry names in this experiment; None if two coincide.

    With one network in the experiment, it stands in for whatever network an entry names
    (a small-scale suite's ResNet-10 for the paper's ResNet-34). With several, an entry
    without an architecture means the experiment's own.
    """
    present = set(data["arch"])
    out = []
    for entry in entries:
        arch, _, method = entry.split("@")[0].rpartition("/")
        arch = next(iter(present)) if len(present) == 1 else arch or default_arch
        out.append((arch, method))
    return out if len(set(out)) == len(out) else None


def _stand_in(entries: list[str], data: pd.DataFrame) -> str:
    """' on X (standing in for Y)' when the experiment's one network is not the one named."""
    present = set(data["arch"])
    named = {e.split("@")[0].rpartition("/")[0] for e in entries} - {""}
    if len(present) == 1 and named and named != present:
        return f" on {next(iter(present))} (standing in for {', '.join(sorted(named))})"
    return ""


def _rows(frame: pd.DataFrame, arch: str, method: str) -> pd.DataFrame:
    return frame[(frame["method"] == method) & (frame["arch"] == arch)]


def _default_arch(run: dict, experiment: str, data: pd.DataFrame) -> str:
    arch = run.get("experiments", {}).get(experiment, {}).get("arch")
    return arch or (str(data["arch"].mode().iloc[0]) if len(data) else "")


def _plain_of(rows: pd.DataFrame, plain: dict[tuple, int]) -> int | None:
    first = rows.iloc[0]
    return plain.get((first["arch"], float(first["width"]), first["task"]))


def _column(metric: str) -> str:
    # The paper's "FLOPs" are multiply-adds (ResNet-18: 1.82e9), torch's counter counts two per.
    columns = {
        "latency_ms": "latency_deployed_batch1_ms",
        "accuracy_drop": "drop",
        "flops": "forward_macs",
        "train_minus_test": "train_minus_test",
    }
    # A metric recorded beside a task's own (Table 5's normal RMSE) has a column of its name.
    extra = {m for t in tasks.TASKS.values() for m in t.extra_metrics}
    return metric if metric in extra else columns.get(metric, "value")


def _claim_arch(claim: dict) -> str | None:
    """The network a claim about ``subnetworks`` stacked sub-networks names (Table 4)."""
    return f"hourglass-{claim['subnetworks']}x" if "subnetworks" in claim else None


def _ci_ratio(a: pd.Series, b: pd.Series) -> tuple[float, float, float]:
    """Ratio of means a/b and a 95% CI from the log-ratio's Welch interval (delta method)."""
    ratio = float(a.mean() / b.mean())
    if len(a) < 2 or len(b) < 2:
        return ratio, 0.0, float("inf")
    va, vb = a.var(ddof=1) / len(a) / a.mean() ** 2, b.var(ddof=1) / len(b) / b.mean() ** 2
    se = (va + vb) ** 0.5
    if se == 0:
        return ratio, ratio, ratio
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof) * se)
    return ratio, ratio * math.exp(-half), ratio * math.exp(half)


def _at_fraction(rows: pd.DataFrame, fraction: float, plain: dict[tuple, int]) -> pd.DataFrame:
    """The rows at the budget nearest ``fraction`` of their architecture's plain backbone,
    if one lies within 5% of it (the paper's "half" of ResNet-34 is 11M of 21.3M)."""
    if not len(rows) or _plain_of(rows, plain) is None:
        return rows.iloc[0:0]
    target = fraction * _plain_of(rows, plain)
    budgets = sorted(rows["budget"].unique(), key=lambda b: abs(b - target))
    return rows[rows["budget"] == budgets[0]] if abs(budgets[0] - target) <= 0.05 * target else rows.iloc[0:0]


def _bounds(claim: dict) -> tuple[float, float, str]:
    """(low, high, kind): the interval the statistic must lie in."""
    if "max_gap" in claim:
        return -claim["max_gap"], claim["max_gap"], f"|left - right| <= {claim['max_gap']}"
    if "min_gain" in claim:
        return claim["min_gain"], math.inf, f"left - right >= {claim['min_gain']}"
    return claim["min_ratio"], math.inf, f"left / right >= {claim['min_ratio']}"


def _inside(lo: float, hi: float, low: float, high: float) -> str:
    if low <= lo and hi <= high:
        return REPRODUCED
    if hi < low or lo > high:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _relation(claim: dict, ok: pd.DataFrame, experiment: str, plain: dict[tuple, int], arch: str) -> list[dict]:
    data = ok[ok["experiment"] == experiment]
    entries = [claim["left"], claim["right"]]
    resolved = _resolve(entries, data, arch)
    if resolved is None:
        return []
    sides = []
    for entry, (a, m) in zip(entries, resolved, strict=True):
        _, _, fraction = entry.partition("@")
        rows = _rows(data, a, m)
        sides.append(_at_fraction(rows, float(fraction), plain) if fraction else rows)
    left, right = sides
    if not len(left) or not len(right) or left["budget"].nunique() > 1 or right["budget"].nunique() > 1:
        return []
    column = _column(claim.get("metric", "top1"))
    a, b = left[column].astype(float), right[column].astype(float)
    if "min_ratio" in claim:
        stat, lo, hi = _ci_ratio(a, b)
    else:
        sign = 1.0 if claim.get("direction", "higher") == "higher" else -1.0
        stat, lo, hi = welch(a, b)
        stat, lo, hi = sign * stat, min(sign * lo, sign * hi), max(sign * lo, sign * hi)
    low, high, rule = _bounds(claim)
    text = (
        f"{claim['left']} at {format_count(left['budget'].iloc[0])} vs {claim['right']} at "
        f"{format_count(right['budget'].iloc[0])}{_stand_in(entries, data)}: {stat:+.3g} [{lo:+.3g}, {hi:+.3g}], "
        f"needs {rule}"
    )
    verdict = _inside(lo, hi, low, high)
    return [{"experiment": experiment, "budget": int(left["budget"].iloc[0]), "text": text, "verdict": verdict}]


def _powerlaw(claim: dict, ok: pd.DataFrame, experiment: str, plain: dict[tuple, int], arch: str) -> list[dict]:
    """Fit log(metric) on log(backbone) for the claim's two networks; compare exponents."""
    data = ok[ok["experiment"] == experiment]
    resolved = _resolve(claim["methods"], data, arch)
    if resolved is None or len(resolved) != 2 or _stand_in(claim["methods"], data):
        return []  # a comparison of two named networks needs both
    column = _column(claim.get("metric", "top1"))
    fits = []
    for entry, (a, m) in zip(claim["methods"], resolved, strict=True):
        rows = _rows(data, a, m)
        if not len(rows) or _plain_of(rows, plain) is None:
            return []
        rows = rows[rows["budget"] < claim["below_fraction"] * _plain_of(rows, plain)]
        means = rows.groupby("budget")[column].mean()
        if len(means) < 3 or (means <= 0).any():
            return []
        fit = stats.linregress([math.log(b) for b in means.index], [math.log(v) for v in means])
        fits.append((entry, fit.slope, fit.stderr, len(means)))
    (e1, b1, s1, n1), (e2, b2, s2, n2) = fits
    diff = b1 - b2
    half = float(stats.t.ppf(0.975, min(n1, n2) - 2) * (s1**2 + s2**2) ** 0.5)
    bound = claim["max_exponent_diff"]
    text = (
        f"exponents {e1} {b1:.3f} (n={n1} budgets), {e2} {b2:.3f} (n={n2}): difference "
        f"{diff:+.3f} [{diff - half:+.3f}, {diff + half:+.3f}], needs |difference| <= {bound}"
    )
    verdict = _inside(diff - half, diff + half, -bound, bound)
    return [{"experiment": experiment, "budget": None, "text": text, "verdict": verdict}]


def _ordering(claim: dict, ok: pd.DataFrame, experiment: str, arch: str) -> list[dict]:
    sign = 1.0 if claim.get("direction", "higher") == "higher" else -1.0
    details = []
    data = ok[ok["experiment"] == experiment]
    resolved = _resolve(claim["order"], data, arch)
    if resolved is None:
        return []
    column = _column(claim.get("metric", "top1"))
    # Entries compared each at its own size (Table 8b: no sharing has 4x the parameters) form one group.
    groups = data.groupby("budget", sort=True) if claim.get("same_budget", True) else [(None, data)]
    for budget, group in groups:
        series = [_rows(group, a, m)[column] for a, m in resolved]
        if any(len(s) == 0 for s in series):
            continue
        pairs, verdicts = [], []
        for (left, a), (right, b) in itertools.pairwise(zip(claim["order"], series, strict=True)):
            diff, lo, hi = welch(a, b)
            diff, lo, hi = sign * diff, min(sign * lo, sign * hi), max(sign * lo, sign * hi)
            holds = REPRODUCED if lo > 0 else NOT_REPRODUCED if hi < 0 else INCONCLUSIVE
            pairs.append({"left": left, "right": right, "diff": diff, "ci": (lo, hi), "verdict": holds})
            verdicts.append(holds)
        at = int(budget) if budget is not None else None
        details.append({"experiment": experiment, "budget": at, "pairs": pairs, "verdict": _combine(verdicts)})
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
        data = data[data["arch"] == (_claim_arch(claim) or claim["arch"])]
    if run.get("profile") != "full" or claim.get("task") not in PAPER_TASKS:
        return []
    details = []
    column = "value_before" if claim.get("stage", "").startswith("before-") else _column(claim.get("metric", "top1"))
    if column not in data:
        return []
    for budget, g in data.groupby("budget"):
        values = g[column]
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


def plain_sizes(ok: pd.DataFrame) -> dict[tuple, int]:
    """The plain backbone of every (arch, width, task) in the run, by the ledger's rule."""
    out = {}
    for (arch, width, task), _ in ok.groupby(["arch", "width", "task"]) if len(ok) else []:
        t = tasks.get(task)
        net = archs.Net(archs.get(arch), float(width), t.in_channels, t.num_classes)
        out[(arch, float(width), task)] = methods.plain_backbone(net)
    return out


def judge(claims: list[dict], ok: pd.DataFrame, run: dict) -> list[Verdict]:
    """A verdict for every claim, from the ok rows of this run."""
    present = set(ok["experiment"]) if len(ok) else set()
    plain = plain_sizes(ok)
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
            arch = _claim_arch(claim) or _default_arch(run, experiment, ok[ok["experiment"] == experiment])
            if claim["kind"] == "ordering":
                details += _ordering(claim, ok, experiment, arch)
            elif claim["kind"] == "value":
                details += _value(claim, ok, run, experiment)
            elif claim["kind"] == "relation":
                details += _relation(claim, ok, experiment, plain, arch)
            elif claim["kind"] == "powerlaw":
                details += _powerlaw(claim, ok, experiment, plain, arch)
        if not details:
            reason = {
                "value": "compared only at paper scale (full profile, the paper's data)",
                "qualitative": "a qualitative claim: no number to check",
            }.get(claim["kind"], "this run has no rows (or too few budgets) for the networks it names")
            out.append(Verdict(claim, NOT_RUN, reason=reason))
            continue
        out.append(Verdict(claim, _combine([d["verdict"] for d in details]), details))
    return out


def summary(verdicts: list[Verdict]) -> dict[str, int]:
    return {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}
