"""Claims that compare rows: orderings ("a beats b", judged pair by pair) and relations (a
bound on a - b, or on a / b).

Which rows: each entry at its own ``@budget``, else at the claim's budget, else (the
paper states none, or a stand-in maps it to ``"*"``) at every budget all entries share.
``same_budget = false`` compares entries each at its own size (Table 8b's unshared network
has four times the parameters). ``paired = true`` pairs rows by seed (an int8 network and
the float network it quantises): a paired interval, not Welch's.

Evidence: each difference with its 95% interval, the paper's own gap beside it and placed
against the interval (suite.claims.size: inside, above or below it), and for an
inconclusive one whose interval still holds the paper's gap the seeds per row that would
detect that gap (or, where the paper gives none, the observed one), if it were real.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd

from suite import stats
from suite.claims import size
from suite.claims.evidence import column, detail, missing, paper_number, values_of
from suite.claims.rows import EVERY, Entry, View, claim_arch, where
from suite.claims.schema import Claim
from suite.claims.setting import judged_on
from suite.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, combine, inside, most_seeds

Rows = dict[Entry, pd.DataFrame]


def _arch(fields: Claim, view: View, entry: Entry) -> str:
    return view.arch(entry.arch or claim_arch(fields))


def _networks(fields: Claim, view: View, entries: list[Entry]) -> list[tuple[str, str]]:
    return [(e.arch or claim_arch(fields), _arch(fields, view, e)) for e in entries]


def groups(fields: Claim, view: View, entries: list[Entry]) -> tuple[list[tuple[int | None, Rows]], list[dict]]:
    """The rows each entry is compared at, per comparison (its budget, or None for entries
    each at its own size), and a detail for every entry that has none."""
    budget = where(fields)
    every = budget == EVERY or (budget is None and fields.same_budget and not any(e.budget for e in entries))
    if every:
        rows = {e: view.select(_arch(fields, view, e), e.method, None) for e in entries}
        lacking = [missing(view, _arch(fields, view, e), e.method, None) for e, r in rows.items() if not len(r)]
        if lacking:
            return [], lacking
        shared = sorted(set.intersection(*(set(r["budget"]) for r in rows.values())))
        if not shared:
            names = ", ".join(str(e) for e in entries)
            return [], [
                {"experiment": view.name, "budget": None, "verdict": NOT_RUN, "text": f"{names}: no shared budget"}
            ]
        return [(int(b), {e: r[r["budget"] == b] for e, r in rows.items()}) for b in shared], []
    chosen, lacking = {}, []
    for e in entries:
        arch = _arch(fields, view, e)
        rows = view.select(arch, e.method, e.budget or budget)
        if not len(rows):
            lacking.append(missing(view, arch, e.method, e.budget or budget))
        elif rows["budget"].nunique() > 1:
            lacking.append(missing(view, arch, e.method, None, why="rows at several budgets (the claim names none)"))
        chosen[e] = rows
    if lacking:
        return [], lacking
    budgets = {int(r["budget"].iloc[0]) for r in chosen.values()}
    return [(budgets.pop() if len(budgets) == 1 else None, chosen)], []


def _difference(
    fields: Claim, a: pd.DataFrame, b: pd.DataFrame, name: str
) -> tuple[stats.Interval, float, str, int] | None:
    """left - right in the claim's direction, its interval, the spread, the design, and the
    seeds per row it rests on."""
    if fields.paired:
        both = a[["seed", name]].merge(b[["seed", name]], on="seed", suffixes=("_a", "_b"))
        if not len(both):
            return None
        x, y = both[f"{name}_a"].astype(float), both[f"{name}_b"].astype(float)
        ci, spread, design = stats.paired(x, y), float((x - y).std(ddof=1)) if len(both) > 1 else math.nan, "paired"
        n = len(both)
    else:
        x, y = a[name].astype(float), b[name].astype(float)
        ci, spread, design, n = stats.welch(x, y), stats.pooled_sd(x, y), "two-sample", min(len(x), len(y))
    if fields.direction == "lower":
        ci = ci.flipped()
    return ci, spread, design, n


def _paper_gap(fields: Claim, left: Entry, right: Entry, by_id: dict[str, Claim]) -> float | None:
    p, q = paper_number(fields, left, by_id), paper_number(fields, right, by_id)
    if p is None or q is None:
        return None
    return p - q if fields.direction == "higher" else q - p


def _pairs(fields: Claim) -> tuple[list[Entry], list[tuple[Entry, Entry]]]:
    if fields.order is not None:
        entries = [Entry.parse(e) for e in fields.order]
        return entries, list(itertools.pairwise(entries))
    better, worse = [Entry.parse(e) for e in fields.better], [Entry.parse(e) for e in fields.worse]
    return better + worse, list(itertools.product(better, worse))


def ordering(fields: Claim, view: View, by_id: dict[str, Claim]) -> list[dict]:
    entries, pairs = _pairs(fields)
    found, lacking = groups(fields, view, entries)
    name = column(fields, view)
    out = list(lacking)
    for budget, rows in found:
        if any(values_of(r, name) is None for r in rows.values()):
            out.append(missing(view, view.default_arch, "*", None, why=f"no recorded {name}"))
            continue
        setting = judged_on(fields, view, _networks(fields, view, entries), pd.concat(rows.values()))
        texts, verdicts, seeds, compared = [], [], [], []
        for left, right in pairs:
            result = _difference(fields, rows[left], rows[right], name)
            if result is None:
                continue
            ci, spread, design, n = result
            verdict = REPRODUCED if ci.low > 0 else NOT_REPRODUCED if ci.high < 0 else INCONCLUSIVE
            paper = _paper_gap(fields, left, right, by_id)
            paper = fields.gap if paper is None else paper
            placed = size.place(paper, ci)
            need, said = None, ""
            # Seeds are worth running only while the paper's gap is still inside the interval.
            if verdict == INCONCLUSIVE and placed in (None, size.INSIDE):
                target = f"the paper's {paper:+.3g}" if paper is not None else f"the observed {ci.estimate:+.3g}"
                need, said = size.to_detect([ci.estimate if paper is None else paper], spread, design, n, target)
            shown = f" (paper {paper:+.3g})" if paper is not None else ""
            names = view.shown(left), view.shown(right)
            texts.append(
                f"{names[0]} ahead of {names[1]} by {ci.estimate:+.3g} [{ci.low:+.3g}, {ci.high:+.3g}]{shown}"
                + (" paired by seed" if design == "paired" else "")
                + f" → {verdict}"
                + (f"; {size.words(paper, placed)}" if placed else "")
                + said
            )
            verdicts.append(verdict)
            seeds.append(need)
            compared.append(
                {"left": names[0], "right": names[1], "diff": ci.estimate, "ci": ci.as_tuple(), "paper": paper}
                | {"paper_gap": placed, "verdict": verdict, "seeds_needed": need, "seeds": n}
            )
        if verdicts:
            verdict = combine(verdicts)
            need = most_seeds(seeds) if verdict == INCONCLUSIVE else None
            out.append(detail(view, budget, verdict, "; ".join(texts), setting, need, pairs=compared, said=True))
    return out


def _bounds(fields: Claim) -> tuple[float, float, str]:
    """The interval the statistic must lie in, and the rule in words. A difference is
    signed so that left ahead of right is positive (for a lower-is-better metric, right -
    left); a ratio is left / right as measured."""
    if fields.max_gap is not None:
        return -fields.max_gap, fields.max_gap, f"|difference| ≤ {fields.max_gap}"
    if fields.min_gain is not None:
        return fields.min_gain, math.inf, f"left ahead by ≥ {fields.min_gain}"
    return fields.min_ratio, math.inf, f"left / right ≥ {fields.min_ratio}"


def relation(fields: Claim, view: View, by_id: dict[str, Claim]) -> list[dict]:
    left, right = Entry.parse(fields.left), Entry.parse(fields.right)
    found, out = groups(fields, view, [left, right])
    name = column(fields, view)
    low, high, rule = _bounds(fields)
    for budget, rows in found:
        a, b = rows[left], rows[right]
        if values_of(a, name) is None or values_of(b, name) is None:
            out.append(missing(view, view.default_arch, "*", None, why=f"no recorded {name}"))
            continue
        setting = judged_on(fields, view, _networks(fields, view, [left, right]), pd.concat([a, b]))
        p, q = paper_number(fields, left, by_id), paper_number(fields, right, by_id)
        if fields.min_ratio is not None:
            ci = stats.ratio(a[name].astype(float), b[name].astype(float))
            paper = fields.paper if fields.paper is not None else p / q if p is not None and q else None
            # The ratio's spread lives on the log scale: each row's coefficient of variation.
            spread = stats.pooled_sd(a[name] / a[name].mean(), b[name] / b[name].mean())
            expected = paper if paper is not None else ci.estimate
            margins, design = [math.log(expected / low)] if expected > 0 else [-1.0], "two-sample"
            n = min(len(a), len(b))
        else:
            result = _difference(fields, a, b, name)
            if result is None:
                out.append(missing(view, view.default_arch, "*", None, why="no seed in both rows to pair"))
                continue
            ci, spread, design, n = result
            gap = _paper_gap(fields, left, right, by_id)
            paper = fields.paper if fields.paper is not None else gap
            expected = paper if paper is not None else ci.estimate
            margins = [expected - low] + ([high - expected] if math.isfinite(high) else [])
        verdict = inside(ci.low, ci.high, low, high)
        ratio = fields.min_ratio is not None
        placed = size.place(paper, ci)
        need, said = None, ""
        if verdict == INCONCLUSIVE and placed in (None, size.INSIDE):
            shown = f"{expected:.3g}" if ratio else f"{expected:+.3g}"
            target = f"the paper's {shown}" if paper is not None else f"the observed {shown}"
            need, said = size.to_detect(margins, spread, design, n, target, verb="settle the bound at")
        at = f" at {budget:,}" if budget is not None else ""
        what = "left / right" if ratio else "left ahead by"
        text = (
            f"{view.shown(left)} vs {view.shown(right)}{at}: {what} {ci.estimate:.3g} [{ci.low:.3g}, {ci.high:.3g}]"
            + (f" (paper {paper:.3g})" if paper is not None else "")
            + (" paired by seed" if design == "paired" else "")
            + f"; needs {rule}"
            + (f"; {size.words(paper, placed, ratio)}" if placed else "")
            + said
        )
        stat = {"estimate": ci.estimate, "ci": ci.as_tuple(), "paper": paper, "bound": rule, "paper_gap": placed}
        out.append(detail(view, budget, verdict, text, setting, need, statistic=stat | {"seeds": n}, said=True))
    return out
