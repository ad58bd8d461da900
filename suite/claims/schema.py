"""The claims file's form: each claim is loaded into a typed model (``Claim``) and checked
for the keys its kind takes, so a typo is an error that names the file, the claim and the
key, never a claim that silently stops being judged."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pydantic

from suite.errors import UsageError

COMMON = {"id", "source", "statement", "kind", "experiments", "note", "scale", "stand_in"}
# Where a claim is judged: the paper's budget as it writes it, and how the suite realises it
# when the two differ ("at": the plain ResNet-18 the paper calls 11M is the network at its
# natural size, 100%); `subnetworks` names the hourglass-<n>x network (Tables 4 and 8b).
WHERE = {"task", "metric", "direction", "budget", "at", "subnetworks", "hardware"}
KEYS = {
    # One reported number of one model.
    "value": WHERE | {"unit", "value", "tolerance", "relative_tolerance", "arch", "method", "stage"},
    # "a beats b": a chain (`order`, best first) or every pair of `better` x `worse`.
    "ordering": WHERE | {"order", "better", "worse", "values", "same_budget", "gap", "paired"},
    # Two rows whose difference (or ratio) must lie inside a bound.
    "relation": WHERE | {"left", "right", "max_gap", "min_gain", "min_ratio", "values", "paper", "paired"},
    # Power laws of the metric against parameters with the same exponent.
    "powerlaw": WHERE | {"methods", "below_fraction", "max_exponent_diff", "values"},
    # A metric that must fall to chance (a network run with the wrong seeds).
    "chance": WHERE | {"method", "max_above_chance"},
    # What a checkpoint holds.
    "storage": WHERE | {"method"},
    "qualitative": {"check"},
}
REQUIRED = {
    "value": {"task", "metric", "value", "direction", "method"},
    "ordering": {"task", "metric", "direction"},
    "relation": {"task", "metric", "left", "right"},
    "powerlaw": {"task", "metric", "methods", "below_fraction", "max_exponent_diff"},
    # Claims about RPG itself, at any scale: no task of the paper's to stand in for.
    "chance": {"metric", "method", "max_above_chance"},
    "storage": {"method"},
    "qualitative": {"check"},
}
BOUNDS = ("max_gap", "min_gain", "min_ratio")
Number = int | float  # as the file writes it: 76 stays 76 in a verdict's text
Entries = list[str]


class Claim(pydantic.BaseModel):
    """One claim of the claims file, typed: every key any kind takes (``KEYS`` says which
    a kind takes and ``REQUIRED`` which it needs), each at the value an absent key means."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    kind: Literal["value", "ordering", "relation", "powerlaw", "chance", "storage", "qualitative"]
    statement: str
    source: str = ""
    experiments: Entries = []  # "suite/experiment"
    note: str | None = None
    scale: str | None = None
    stand_in: dict[str, Any] = {}  # keys of the claim, in force on other data than the claim's
    check: str | None = None
    # where
    task: str | None = None
    metric: str = "top1"
    direction: Literal["higher", "lower"] = "higher"
    budget: str | None = None
    at: str | None = None
    subnetworks: int | None = None
    hardware: str | None = None
    # value
    unit: str | None = None
    value: Number | None = None
    tolerance: Number = 0
    relative_tolerance: Number = 0
    arch: str = ""
    method: str | None = None
    stage: str = ""
    # ordering, relation, powerlaw
    order: Entries | None = None
    better: Entries | None = None
    worse: Entries | None = None
    values: Entries = []  # ids of the paper's value claims the comparison's numbers come from
    same_budget: bool = True
    gap: Number | None = None
    paired: bool = False
    left: str | None = None
    right: str | None = None
    max_gap: Number | None = None
    min_gain: Number | None = None
    min_ratio: Number | None = None
    paper: Number | None = None
    methods: Entries = []
    below_fraction: Number | None = None
    max_exponent_diff: Number | None = None
    # chance
    max_above_chance: Number | None = None

    def judged_as(self, task: str) -> Claim:
        """The claim as judged on ``task``'s data: on other data than the claim's (a
        stand-in suite), its ``stand_in`` keys replace the paper's (the budgets a smaller
        network realises the paper's at)."""
        if self.task and self.task != task and self.stand_in:
            return self.model_copy(update=self.stand_in)
        return self


def _message(error: pydantic.ValidationError) -> str:
    """The first key at fault in one line; a key that may be one of several types names them."""
    first = error.errors()[0]
    key = first["loc"][0]
    tags = [e["loc"][1] for e in error.errors() if e["loc"][0] == key and len(e["loc"]) == 2]
    if len(tags) > 1 and all(isinstance(t, str) for t in tags):
        return f"{key} must be {' or '.join(tags)}, got {first['input']!r}"
    return f"{'.'.join(map(str, first['loc']))}: {first['msg']}, got {first['input']!r}"


def parse(raw: dict, where: str) -> Claim:
    """A claim of the file at ``where``, checked: its kind's keys only, each of its type,
    every required one, and the rules that span keys; or one line naming ``where``, the
    claim and the key."""
    for key in ("id", "kind", "statement"):
        if key not in raw:
            raise UsageError(f"{where}: a claim has no {key!r} ({raw.get('id', '?')})")
    where = f"{where}, claim {raw['id']}"
    kind = raw["kind"]
    if kind not in KEYS:
        raise UsageError(f"{where}: unknown kind {kind!r} (known: {', '.join(KEYS)})")
    unknown = set(raw) - COMMON - KEYS[kind]
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for a {kind} claim")
    stand_in = raw.get("stand_in", {})
    if not isinstance(stand_in, dict) or set(stand_in) - KEYS[kind]:
        raise UsageError(f"{where}: stand_in may override only keys of a {kind} claim")
    try:
        claim = Claim(**raw)
        Claim(**{**raw, **stand_in})
    except pydantic.ValidationError as e:
        raise UsageError(f"{where}: {_message(e)}") from None
    missing = REQUIRED[kind] - set(raw)
    if missing:
        raise UsageError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    if kind == "ordering" and ("order" in raw) == ("better" in raw or "worse" in raw):
        raise UsageError(f"{where}: an ordering has either `order` or `better` and `worse`")
    if kind == "relation" and sum(b in raw for b in BOUNDS) != 1:
        raise UsageError(f"{where}: a relation has exactly one of {', '.join(BOUNDS)}")
    if not all(e.count("/") == 1 for e in claim.experiments):
        raise UsageError(f"{where}: experiments must be a list of 'suite/experiment'")
    return claim


def load(folder: Path | None = None) -> list[Claim]:
    """Every claim in the claims files (suite/claims/*.toml), checked; ids unique."""
    folder = folder or resources.files("suite") / "claims"
    out = []
    for path in sorted(p for p in folder.iterdir() if p.name.endswith(".toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"claims file {path} is malformed: {e}") from None
        unknown = set(data) - {"claim"}
        if unknown:
            raise UsageError(f"claims file {path}: unknown table(s) {', '.join(sorted(unknown))}")
        out += [parse(claim, f"claims file {path}") for claim in data.get("claim", [])]
    ids = [c.id for c in out]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise UsageError(f"claims files: claim ids must be unique; repeated: {', '.join(duplicated)}")
    return out
