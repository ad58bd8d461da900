"""Claims about measured quantities: a paper value, a power law's exponent, a network that
must fall to chance, and what a checkpoint holds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from suite import stats, tasks
from suite.claims import size
from suite.claims.evidence import column, detail, missing, values_of
from suite.claims.rows import EVERY, Entry, View, claim_arch, where
from suite.claims.schema import Claim
from suite.claims.setting import PAPER, judged_on
from suite.claims.verdicts import INCONCLUSIVE, NEVER, NOT_JUDGED, NOT_REPRODUCED, REPRODUCED, inside
from suite.counting.ledger import parse_count


def _seeds(margins: list[float], spread: float, seeds_run: int, design: str = "one-sample") -> int | str | None:
    """Seeds per row that would settle it at this spread; None where one seed gives no spread,
    or where the count is no more than the seeds this run had (they did not settle it)."""
    if not math.isfinite(spread):
        return None
    needed = stats.seeds_needed(margins, spread, design)
    if needed is not None and needed <= seeds_run:
        return None
    return NEVER if needed is None else needed


def value(fields: Claim, view: View, by_id: dict[str, Claim]) -> list[dict]:
    """The paper's number for one model, at paper scale only: the 95% interval of the mean
    over seeds must lie within the claim's tolerance of it."""
    named = claim_arch(fields)
    arch = view.arch(named)
    rows = view.select(arch, fields.method, where(fields))
    if not len(rows):
        return [missing(view, arch, fields.method, where(fields))]
    setting = judged_on(fields, view, [(named, arch)], rows)
    if setting["scale"] != PAPER:
        text = (
            f"not judged at profile {view.profile}: the paper's own numbers are compared at paper scale only; "
            f"this run is a {setting['text']}"
        )
        return [{"experiment": view.name, "budget": None, "verdict": NOT_JUDGED, "text": text}]
    name = column(fields, view)
    if values_of(rows, name) is None:
        return [missing(view, arch, fields.method, where(fields), why=f"no recorded {name}")]
    target = fields.value
    tolerance = fields.tolerance or fields.relative_tolerance * abs(target)
    out = []
    for budget, g in rows.groupby("budget"):
        values = g[name].astype(float)
        ci = stats.mean_ci(values)
        verdict = inside(ci.low, ci.high, target - tolerance, target + tolerance)
        need = None
        if verdict == INCONCLUSIVE:
            # Assume the mean is where this run found it: the seeds to show it in, or out.
            low, high = ci.estimate - (target - tolerance), (target + tolerance) - ci.estimate
            margins = [low, high] if low > 0 and high > 0 else [-min(low, high)]
            need = _seeds(margins, float(values.std(ddof=1)) if len(values) > 1 else math.nan, len(values))
        text = (
            f"{arch}/{fields.method} at {int(budget):,}: {ci.estimate:.4g} [{ci.low:.4g}, {ci.high:.4g}] "
            f"(n={len(values)}); the paper {target:g} ± {tolerance:.3g}"
        )
        out.append(detail(view, int(budget), verdict, text, setting, need, measured=ci.estimate, n=len(values)))
    return out


def _slope(budgets: list[float], values: list[float]) -> float | None:
    if len(set(budgets)) < 2 or min(values) <= 0:
        return None
    return float(np.polyfit(np.log(budgets), np.log(values), 1)[0])


def powerlaw(fields: Claim, view: View, by_id: dict[str, Claim]) -> list[dict]:
    """log(metric) against log(backbone) for each network, on every seed's point below
    ``below_fraction`` of that network's plain backbone; the exponents' difference must lie
    within ``max_exponent_diff``."""
    entries = [Entry.parse(e) for e in fields.methods]
    name = column(fields, view)
    fits, networks, used, out = [], [], [], []
    for entry in entries:
        arch = view.arch(entry.arch)
        rows, plain = view.select(arch, entry.method, None), view.plain(arch)
        if plain is not None:
            rows = rows[rows["budget"] < fields.below_fraction * plain]
        fit = stats.power_law(rows["budget"], rows[name]) if len(rows) and values_of(rows, name) is not None else None
        if fit is None:
            out.append(missing(view, arch, entry.method, None, why="fewer than two budgets below the fraction"))
            continue
        fits.append(fit)
        networks.append((entry.arch, arch))
        used.append(rows)
    if len(fits) != 2 or len({a for _, a in networks}) < 2:
        return out  # a comparison of two networks needs both (one network cannot stand in for two)
    diff = stats.exponent_difference(*fits)
    bound = fields.max_exponent_diff
    verdict = inside(diff.low, diff.high, -bound, bound)
    # The paper's exponents, from its own points for each network.
    values = [by_id[i] for i in fields.values if i in by_id]
    slopes = [
        _slope(
            *zip(
                *[(parse_count(v.budget), v.value) for v in values if (v.arch, v.method) == (e.arch, e.method)],
                strict=True,
            )
        )
        if any((v.arch, v.method) == (e.arch, e.method) for v in values)
        else None
        for e in entries
    ]
    paper_diff = slopes[0] - slopes[1] if None not in slopes else None
    placed = size.place(paper_diff, diff)
    need = None
    if verdict == INCONCLUSIVE and placed in (None, size.INSIDE):
        expected = paper_diff if paper_diff is not None else diff.estimate
        # The exponents' error shrinks with the seeds per budget: one seed's share of it.
        per_seed = math.hypot(fits[0].stderr, fits[1].stderr) * math.sqrt(fits[0].points / fits[0].budgets)
        need = _seeds([bound - expected, bound + expected], per_seed, fits[0].points // fits[0].budgets)
    shown = f" (paper {paper_diff:+.3f}; {size.words(paper_diff, placed)})" if paper_diff is not None else ""
    text = (
        f"exponents {entries[0]} {fits[0].exponent:.3f} ({fits[0].points} points, {fits[0].budgets} budgets), "
        f"{entries[1]} {fits[1].exponent:.3f} ({fits[1].points} points): difference {diff.estimate:+.3f} "
        f"[{diff.low:+.3f}, {diff.high:+.3f}]{shown}; needs |difference| ≤ {bound}"
    )
    setting = judged_on(fields, view, networks, pd.concat(used))
    fitted = {"exponents": [f.exponent for f in fits], "paper_gap": placed}
    return out + [detail(view, None, verdict, text, setting, need, **fitted)]


def chance(fields: Claim, view: View, by_id: dict[str, Claim]) -> list[dict]:
    """A metric that must fall to chance (100 / classes), within ``max_above_chance`` points:
    each RPG network evaluated with its own ring and BN but other index and sign seeds."""
    named = claim_arch(fields)
    arch = view.arch(named)
    rows = view.select(arch, fields.method, where(fields) or EVERY)
    name = column(fields, view)
    if not len(rows) or values_of(rows, name) is None:
        return [missing(view, arch, fields.method, where(fields), why=f"no recorded {name}")]
    level = 100.0 / tasks.get(view.task).num_classes
    bound = level + fields.max_above_chance
    out = []
    for budget, g in rows.groupby("budget"):
        values = g[name].astype(float)
        ci = stats.mean_ci(values)
        verdict = inside(ci.low, ci.high, -math.inf, bound)
        spread = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        need = _seeds([abs(bound - ci.estimate)], spread, len(values)) if verdict == INCONCLUSIVE else None
        own = g["value"].astype(float).mean()
        text = (
            f"{arch}/{fields.method} at {int(budget):,}: {ci.estimate:.3g} [{ci.low:.3g}, {ci.high:.3g}] with other "
            f"seeds, {own:.3g} with its own; chance {level:.3g}, needs ≤ {bound:.3g}"
        )
        setting = judged_on(fields, view, [(named, arch)], g)
        out.append(detail(view, int(budget), verdict, text, setting, need, measured=ci.estimate))
    return out


def _kb(n: float) -> str:
    return f"{n / 1024:.1f} KB"


def storage(fields: Claim, view: View, by_id: dict[str, Claim]) -> list[dict]:
    """What a checkpoint holds: every tensor in it is the ring, a BN tensor or a layer left
    dense (none is an index map or a generated weight), and it is smaller than the weights
    it generates would be."""
    named = claim_arch(fields)
    arch = view.arch(named)
    rows = view.select(arch, fields.method, where(fields) or EVERY)
    if not len(rows) or values_of(rows, "storage_other_bytes") is None:
        return [missing(view, arch, fields.method, where(fields), why="no recorded checkpoint breakdown")]
    out = []
    for budget, g in rows.groupby("budget"):
        first = g.iloc[0]
        other, generated = g["storage_other_bytes"].max(), first["storage_generated_bytes"]
        holds = other == 0 and (g["stored_bytes"] < generated).all()
        text = (
            f"{arch}/{fields.method} at {int(budget):,}: checkpoint {_kb(first['stored_bytes'])}, of which the ring "
            f"{_kb(first['storage_ring_bytes'])}, normalisation {_kb(first['storage_norm_bytes'])}, layers left dense "
            f"{_kb(first['storage_dense_bytes'])}, anything else {_kb(other)} (the rest is the file's format); "
            f"the weights it generates would take {_kb(generated)}"
        )
        setting = judged_on(fields, view, [(named, arch)], g)
        out.append(detail(view, int(budget), REPRODUCED if holds else NOT_REPRODUCED, text, setting))
    return out
