"""What a compute ladder said of a run's claims, kept in the run's folder (OUT/rung.json).

`rpg-bench ladder` (suite.scale.ladder) writes it into each rung it was given: for every
claim judged on some rung, whether its verdict was ``stable``, ``changed`` or
``undetermined`` along the ladder, the rungs' compute and where the ladder's page is. The
run's report reads it back, so claims.json and the page say, beside each verdict, whether
it held as the compute grew. It is drawn from this run's records as they were: once they
change (a resumed run, more seeds), the report says the ladder is stale instead of
repeating what it said.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from suite import records
from suite.errors import UsageError

FILE = "rung.json"


def write(out: Path, ladder: dict, page: Path, records_digest: str) -> None:
    """OUT/rung.json: ``ladder`` (suite.scale.ladder.build's) as seen from the rung at OUT."""
    rungs = [_label(r) for r in ladder["rungs"]]
    records.write_json(
        out / FILE,
        {
            "page": os.path.relpath(page, out),
            "rungs": rungs,
            "this": next(i for i, r in enumerate(ladder["rungs"]) if Path(r["out"]).resolve() == out.resolve()),
            "records": records_digest,
            "claims": {c["id"]: c["along"] for c in ladder["claims"]},
        },
    )


def _label(rung: dict) -> str:
    """A rung as a reader names it: its epochs where the rung trained one number of them."""
    if len(rung["epochs"]) == 1:
        return f"{rung['epochs'][0]} epoch" + ("" if rung["epochs"][0] == 1 else "s")
    return f"{rung['pflop']:.3g} PFLOP"


def read(out: Path, records_digest: str) -> dict | None:
    """What OUT/rung.json says (with ``stale``: whether the records changed since), or None."""
    path = out / FILE
    if not path.exists():
        return None
    try:
        rung = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path} is unreadable ({e}): run rpg-bench ladder again to rewrite it") from None
    return rung | {"stale": rung["records"] != records_digest}


def along(rung: dict | None, claim_id: str) -> dict | None:
    """A claim's entry in claims.json's ``ladder``: how it fared along the ladder, or None."""
    if rung is None or claim_id not in rung["claims"]:
        return None
    entry = {"rungs": rung["rungs"], "this": rung["this"], "page": rung["page"]}
    if rung["stale"]:
        return entry | {"stale": True}
    return entry | {"along": rung["claims"][claim_id]}
