"""How a reviewer names claims on the command line (--claims), and what to suggest when a
pattern names none: the paper's own names for its experiments ("table2", "Figure 5"), a
bare id prefix ("fig5"), or the closest ids. Claim ids are lower case; patterns are
matched without regard to case."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suite.claims.schema import Claim

# The words the paper names its experiments with (a claim's ``source``: "Table 2, Section
# 5.1"), and the shorter forms a reviewer types for them.
_WORDS = {"table": ("table", "tab"), "figure": ("figure", "fig"), "section": ("section", "sec")}


def _norm(text: str) -> str:
    """Lower case, letters and digits only: "Table 2", "table-2" and "TABLE2" are one name."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _prefix(claim_id: str) -> str:
    return claim_id.split(".", 1)[0]


def aliases(claims: list[Claim]) -> dict[str, list[str]]:
    """The paper's names of experiments, normalised ("table2", "fig5", "sec51"), each with
    the id prefixes of the claims that cite it, in the claims' order."""
    out: dict[str, list[str]] = {}
    for claim in claims:
        for part in claim.source.split(","):
            found = re.match(r"\s*(table|figure|section)\s*([\d.]+)", part.lower())
            if not found:
                continue
            for word in _WORDS[found[1]]:
                prefixes = out.setdefault(_norm(word + found[2]), [])
                if _prefix(claim.id) not in prefixes:
                    prefixes.append(_prefix(claim.id))
    return out


def hint(pattern: str, claims: list[Claim]) -> str:
    """What ``pattern`` (which matches no id) most likely meant, as the end of a line: a
    --claims value to use instead ("did you mean t2.*?"), else the closest ids."""
    ids = [c.id for c in claims]
    stem = pattern.lower().replace("*", "").replace("?", "").rstrip(".")
    # A bare prefix: "fig5" or "t3.in" means every claim under it.
    if any(i.startswith(f"{stem}.") for i in ids):
        return f"; did you mean {stem}.*?"
    named = aliases(claims).get(_norm(stem))
    if named:
        return f"; did you mean {','.join(f'{p}.*' for p in named)}?"
    close = difflib.get_close_matches(stem, ids, n=3, cutoff=0.5) or [i for i in ids if i.startswith(stem[:3])][:3]
    return f"; closest: {', '.join(close)}" if close else ""
