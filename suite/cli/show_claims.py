"""`rpg-bench claims`: every claim a reviewer can run, with the paper's words, where it is
judged and, for a suite, what settling it costs at each profile and whether it can."""

from __future__ import annotations

import argparse

from suite import claims, tasks
from suite.claims import select
from suite.claims.rows import claim_arch, where
from suite.claims.schema import Claim
from suite.errors import UsageError
from suite.run import plan, runner
from suite.suites import spec


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


def _where(claim: Claim) -> str:
    parts = [", ".join(claim.experiments) or "no experiment"]
    if where(claim):
        parts.append(f"at {where(claim)}")
    if claim_arch(claim):
        parts.append(f"on {claim_arch(claim)}")
    return "; ".join(parts)


def _header(claim: Claim) -> str:
    lines = [f"{claim.id}  [{claim.source}, {claim.kind}]", claim.statement, f"where: {_where(claim)}"]
    if claim.stand_in:
        lines.append("on a stand-in suite's data: " + ", ".join(f"{k} {v}" for k, v in claim.stand_in.items()))
    if claim.note:
        lines.append(f"note: {claim.note}")
    return "\n    ".join(lines)


def data_read(cells: list) -> dict[str, str]:
    """Per task of these cells, what the profile reads: the real data set, or generated data."""
    return {c.task: tasks.get(c.task).reads(c.profile) for c in cells}


def _generated(cell) -> bool:
    return cell.profile in tasks.get(cell.task).generated_profiles


def _judgeable(claim: Claim, keys: set[str], profile: str, generated: bool) -> str:
    if claim.kind == "qualitative":
        return "not judged: a qualitative claim"
    if not keys:
        return "not judged: no cell of this suite reads it"
    if generated:
        return "not judged: generated data (it tests the code, not the paper)"
    if claim.kind == "value" and not profile.endswith("full"):
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
    mine = [c for c in every if any(e.split("/", 1)[0] == suite.name for e in c.experiments)]
    by_profile, every_cell, reading = {}, [], []
    for profile in profiles(suite):
        cells = runner.expand(suite, profile)
        every_cell += cells
        by_key = {c.key(): c for c in cells}
        by_profile[profile] = {
            claim_id: (keys, _cost(keys, by_key, rate), all(_generated(by_key[k]) for k in keys))
            for claim_id, keys in select.needed(mine, cells, suite).items()
        }
        judges = "judges nothing" if all(_generated(c) for c in cells) else "judges claims"
        reading.append(f"  profile {profile}: reads {'; '.join(data_read(cells).values())} ({judges})")
    print(f"suite {suite.name}: {len(mine)} of {len(every)} claims; costs at {rate.describe(every_cell)}")
    print("\n".join(reading))
    for claim in mine:
        print(_header(claim))
        for profile, found in by_profile.items():
            keys, cost, generated = found[claim.id]
            state = _judgeable(claim, keys, profile, generated)
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
