"""Verdicts, and the evidence each carries.

- reproduced: every comparison the claim makes holds with its 95% interval clear of the bound;
- not reproduced: one comparison fails with its interval clear of the bound, the wrong way;
- inconclusive: neither, with how many seeds would settle it;
- not judged: the run measures the claim's rows, but not in a setting the claim can be judged
  in (a paper value off paper scale; anything on data the code generated);
- not run: no experiment of the run has the rows the claim needs (the evidence names them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from suite.stats import MAX_SEEDS

if TYPE_CHECKING:
    from suite.claims.schema import Claim


class Outcome(StrEnum):
    """A verdict, the one set of them: a str, so claims.json and the pages write its words."""

    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not reproduced"
    INCONCLUSIVE = "inconclusive"
    NOT_JUDGED = "not judged"
    NOT_RUN = "not run"


REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_JUDGED, NOT_RUN = Outcome
VERDICTS = tuple(Outcome)
JUDGED = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
NEVER = "never"  # no seed count resolves it: the expected gap does not clear the bound


@dataclass
class Verdict:
    claim: Claim
    verdict: Outcome
    details: list[dict] = field(default_factory=list)  # one per comparison made
    reason: str = ""
    scale: str | None = None  # "paper", "stand-in" or "scale-free": what the judged details ran on
    judged_on: list[str] = field(default_factory=list)
    seeds_needed: int | str | None = None  # for an inconclusive verdict

    @property
    def scale_gap(self) -> dict | None:
        """How far from the paper's setting the judged comparisons ran (the farthest, by epochs)."""
        gaps = [d["scale_gap"] for d in self.details if d.get("verdict") in JUDGED and d.get("scale_gap")]
        return min(gaps, key=lambda g: g["epochs_fraction"] or 1.0) if gaps else None

    @property
    def paper_gaps(self) -> list[str]:
        """Where the paper's gaps lie against this verdict's intervals, each placement once."""
        placed = [p.get("paper_gap") for d in self.details for p in d.get("pairs", [])]
        placed += [d.get("paper_gap") or d.get("statistic", {}).get("paper_gap") for d in self.details]
        return list(dict.fromkeys(p for p in placed if p))

    @property
    def generated(self) -> bool:
        """Not judged because every experiment that measures it trained on generated data."""
        return self.verdict == NOT_JUDGED and any(d.get("generated") for d in self.details)

    def as_json(self) -> dict:
        return {
            "id": self.claim.id,
            "verdict": self.verdict,
            "reason": self.reason,
            "scale": self.scale,
            "judged_on": self.judged_on,
            "seeds_needed": self.seeds_needed,
            "generated_data": self.generated,
            "scale_gap": self.scale_gap,
            "details": self.details,
        }


def inside(low: float, high: float, bound_low: float, bound_high: float) -> Outcome:
    """An interval against a bound: inside it, clear of it, or straddling its edge."""
    if bound_low <= low and high <= bound_high:
        return REPRODUCED
    if high < bound_low or low > bound_high:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(verdicts: list[Outcome]) -> Outcome:
    judged = [v for v in verdicts if v in JUDGED]
    if not judged:
        return NOT_JUDGED if NOT_JUDGED in verdicts else NOT_RUN
    if NOT_REPRODUCED in judged:
        return NOT_REPRODUCED
    return REPRODUCED if all(v == REPRODUCED for v in judged) else INCONCLUSIVE


def most_seeds(counts: list[int | str | None]) -> int | str | None:
    """The seeds that settle every part: the largest count, or NEVER if a part never settles."""
    known = [c for c in counts if c is not None]
    if not known:
        return None
    if NEVER in known:
        return NEVER
    return max(known)


def seeds_text(seeds: int | str | None) -> str:
    if seeds is None:
        return ""
    if seeds == NEVER:
        return f"; no seed count up to {MAX_SEEDS} settles it at this spread"
    return f"; about {seeds} seeds per row would settle it (80% power)"


def summary(verdicts: list[Verdict]) -> dict[str, int]:
    return {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}


def by_scale(verdicts: list[Verdict]) -> dict[str, dict[str, int]]:
    """The judged verdicts, counted separately at paper scale and on stand-ins."""
    out = {}
    for scale in ("paper", "stand-in", "scale-free"):
        judged = [v for v in verdicts if v.scale == scale and v.verdict in JUDGED]
        out[scale] = {v: sum(x.verdict == v for x in judged) for v in JUDGED}
    return out
