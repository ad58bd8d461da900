"""`rpg-bench claims`: every claim a reviewer can run, with the paper's words, where it is
judged and, for a suite, what settling it costs at each profile and whether it can."""

from __future__ import annotations

import argparse

from suite import claims, plan, runner, spec, tasks
from suite.claims import select
from suite.claims.rows import claim_arch, where
from suite.errors import UsageError


def profiles(suite: spec.Suite) -> list[str]:
    """The profiles every experiment of the suite can run."""
    candidates = dict.fromkeys(
        p.rpartition("-")[2] if e.recipe else p for e in suite.experiments for p in tasks.get(e.task).profiles
    )
    out = []
    for profile in candidates:
        try:
            suite.check_profile(profile)
        except UsageError:
            continue
        out.append(profile)
    return out


def _where(claim: dict) -> str:
    parts = [", ".join(claim.get("experiments", [])) or "no experiment"]
    if where(claim):
        parts.append(f"at {where(claim)}")
    if claim_arch(claim):
        parts.append(f"on {claim_arch(claim)}")
    return "; ".join(parts)


def _header(claim: dict) -> str:
    return f"{claim['id']}  [{claim['source']}, {claim['kind']}]\n    {claim['statement']}\n    where: {_where(claim)}"


def _judgeable(claim: dict, keys: set[str], profile: str) -> str:
    if claim["kind"] == "qualitative":
        return "not judged: a qualitative claim"
    if not keys:
        return "not judged: no cell of this suite reads it"
    if claim["kind"] == "value" and not profile.endswith("full"):
        return "measured, not judged: the paper's numbers are judged at paper scale (full) only"
    return "judged"


def main(args: argparse.Namespace) -> int:
    every = claims.load()
    if not args.suite:
        for claim in every:
            print(_header(claim))
        print(f"{len(every)} claims; `rpg-bench claims --suite SUITE` adds what each costs and whether it is judged")
        return 0
    rate = plan.given(args.tflops)
    suite = spec.load(args.suite)
    mine = [c for c in every if any(e.split("/", 1)[0] == suite.name for e in c.get("experiments", []))]
    by_profile, every_cell = {}, []
    for profile in profiles(suite):
        cells = runner.expand(suite, profile)
        every_cell += cells
        by_key = {c.key(): c for c in cells}
        needed = select.needed(mine, cells, suite)
        by_profile[profile] = {claim_id: (keys, _cost(keys, by_key, rate)) for claim_id, keys in needed.items()}
    print(f"suite {suite.name}: {len(mine)} of {len(every)} claims; costs at {rate.describe(every_cell)}")
    for claim in mine:
        print(_header(claim))
        for profile, found in by_profile.items():
            keys, cost = found[claim["id"]]
            state = _judgeable(claim, keys, profile)
            print(f"    {profile:8} {cost:40} {state}")
    return 0


def _cost(keys: set[str], by_key: dict, rate: plan.Rate) -> str:
    """What the cells of ``keys`` cost, in the unit of their profile's device."""
    if not keys:
        return "no cell"
    hours: dict[str, float] = {}
    for key in keys:
        h, unit = plan.hours(by_key[key], rate)
        hours[unit] = hours.get(unit, 0.0) + h
    return f"{len(keys)} cells, " + " + ".join(f"{h:.3g} {unit}" for unit, h in hours.items())
