"""Every change a history finds, as data: a row's step (suite.history.steps) or a claim's
verdict changing from one night to the next, each with the night it happened at, its
date, the commit range it happened in, before, after, size and noise. SITE/regressions.json
holds them (its form: suite/schemas/regressions.json) and SITE/regressions.xml is the same
as an Atom feed (RFC 4287), newest first."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from suite import claims
from suite.history import steps
from suite.history.nights import Night
from suite.history.series import BY_NAME, row_name

VERSION = 1
ATOM = "http://www.w3.org/2005/Atom"
WORSE, BETTER, CHANGED = "worse", "better", "changed"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def report_link(night: Night, copied: set[str]) -> str | None:
    """Where a night's own report is: its copy in the site, else the CI run that made it."""
    return f"nights/{night.slug}/index.html" if night.slug in copied else night.run_url


def _when(nights: list[Night], index: int, previous: int, copied: set[str]) -> dict:
    now, then = nights[index], nights[previous]
    return {
        "night": now.slug,
        "number": now.number,
        "date": now.date,
        "commit": now.commit,
        "run_id": now.run_id,
        "run_url": now.run_url,
        "report": report_link(now, copied),
        "previous_night": then.slug,
        "previous_number": then.number,
        "previous_date": then.date,
        "previous_commit": then.commit,
    }


def _range(nights: list[Night], index: int, previous: int) -> str:
    now, then = nights[index], nights[previous]
    return f"night {now.number} ({now.date[:10]}, {now.short}; previous night {then.number}, {then.short})"


def step_id(step: steps.Step, nights: list[Night]) -> str:
    """A step's id: its row, measure and night (the page's anchor, the feed entry's key)."""
    experiment, entry, budget, measure = step.series.key
    return f"row-{slug(row_name(experiment, entry, budget))}-{measure}-{nights[step.night].slug}"


def row_change(step: steps.Step, nights: list[Night], copied: set[str]) -> dict:
    experiment, entry, budget, measure = step.series.key
    name = row_name(experiment, entry, budget)
    direction = WORSE if step.worse else BETTER
    what = step.series.name if measure == "metric" else BY_NAME[measure].label
    noise = {
        "night_sd": step.noise.night_sd,
        "seed_sd": step.noise.seed_sd,
        "between_sd": step.noise.between_sd,
        "min_effect": step.min_effect,
        "nights_before": step.nights_before,
        "nights_after": step.nights_after,
    }
    line = (
        f"{direction}: {name} {what}: {step.before:.4g} -> {step.after:.4g} ({step.size:+.3g}; a night's noise "
        f"{step.noise.night_sd:.2g}, minimum effect {step.min_effect:.2g}) "
        f"at {_range(nights, step.night, step.previous)}"
    )
    return {
        "id": step_id(step, nights),
        "kind": "row",
        "name": name,
        "row": {"experiment": experiment, "entry": entry, "budget": budget},
        "measure": measure,
        "metric": step.series.name,
        "higher_is_better": step.series.higher,
        "claim": None,
        "direction": direction,
        "lost": False,
        "before": step.before,
        "after": step.after,
        "size": step.size,
        "noise": noise,
        "line": line,
    } | _when(nights, step.night, step.previous, copied)


def claim_change(cid: str, change: dict, nights: list[Night], copied: set[str]) -> dict:
    before, after, i = change["before"], change["after"], change["index"]
    direction = BETTER if after == claims.REPRODUCED else WORSE if before == claims.REPRODUCED else CHANGED
    lost = before == claims.REPRODUCED and after == claims.NOT_REPRODUCED
    line = f"claim {cid}: {before} -> {after}{' (lost)' if lost else ''} at {_range(nights, i, i - 1)}"
    return {
        "id": f"claim-{slug(cid)}-{nights[i].slug}",
        "kind": "claim",
        "name": cid,
        "row": None,
        "measure": None,
        "metric": None,
        "higher_is_better": None,
        "claim": cid,
        "direction": direction,
        "lost": lost,
        "before": before,
        "after": after,
        "size": None,
        "noise": None,
        "line": line,
    } | _when(nights, i, i - 1, copied)


def collect(found: list[steps.Step], timeline: list[dict], nights: list[Night], copied: set[str]) -> list[dict]:
    """Every change, in order of night, rows before claims, then by name."""
    out = [row_change(s, nights, copied) for s in found]
    out += [claim_change(c["id"], ch, nights, copied) for c in timeline for ch in c["changes"]]
    return sorted(out, key=lambda c: (c["number"], c["kind"] != "row", c["name"], c["measure"] or ""))


def document(nights: list[Night], changes: list[dict], notes: list[str], copied: set[str]) -> dict:
    """regressions.json's content."""
    return {
        "history_version": VERSION,
        "suite": nights[0].suite,
        "profile": nights[0].profile,
        "rule": {
            "method": "ruptures.Pelt",
            "cost": "l1",
            "min_nights": steps.MIN_NIGHTS,
            "penalty": f"{steps.PENALTY} * log(nights), in units of a night's noise",
            "min_effect": "suite.report.compare's: half a point of accuracy, PCKh or RMSE; 5% of anything else",
        },
        "nights": [n.identity() | {"report": report_link(n, copied)} for n in nights],
        "left_out": notes,
        "changes": changes,
    }


def _atom_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(*parts: str) -> str:
    """A stable entry id: the same change keeps it from one night's feed to the next."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "rpg-bench-history:" + ":".join(parts)).urn


def feed(doc: dict) -> str:
    """The changes as an Atom feed, newest first, each linked to its night's report (or,
    without one, to the history page's entry for it)."""
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    suite, profile = doc["suite"], doc["profile"]

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        element.text = text
        return element

    sub(root, "title", f"rpg-bench history: {suite} ({profile}): steps and verdict changes")
    sub(root, "id", _id(suite, profile))
    sub(root, "updated", _atom_time(doc["nights"][-1]["date"]))  # rebuilt with every night
    sub(sub(root, "author"), "name", "rpg-bench history")
    sub(root, "link", rel="self", href="regressions.xml")
    sub(root, "link", rel="alternate", type="text/html", href="index.html")
    for change in reversed(doc["changes"]):
        entry = sub(root, "entry")
        sub(entry, "title", change["line"].split(" at night ")[0])
        sub(entry, "id", _id(suite, profile, change["id"]))
        sub(entry, "updated", _atom_time(change["date"]))
        sub(entry, "link", rel="alternate", type="text/html", href=change["report"] or f"index.html#{change['id']}")
        sub(entry, "summary", change["line"])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
