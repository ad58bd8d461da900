"""The claims file's form: the keys each kind of claim takes, checked when it is loaded,
so a typo is an error that names the file, the claim and the key, never a claim that
silently stops being judged."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

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
NUMBER, TEXT, ENTRIES = (int, float), (str,), "a list of entries"
# What each key holds: a key of the wrong type is refused with the file, the claim and the key.
TYPES = {
    "id": TEXT, "source": TEXT, "statement": TEXT, "kind": TEXT, "note": TEXT, "scale": TEXT, "check": TEXT,
    "task": TEXT, "metric": TEXT, "direction": TEXT, "budget": TEXT, "at": TEXT, "hardware": TEXT,
    "unit": TEXT, "arch": TEXT, "method": TEXT, "stage": TEXT, "left": TEXT, "right": TEXT,
    "value": NUMBER, "tolerance": NUMBER, "relative_tolerance": NUMBER, "gap": NUMBER, "paper": NUMBER,
    "max_gap": NUMBER, "min_gain": NUMBER, "min_ratio": NUMBER, "below_fraction": NUMBER,
    "max_exponent_diff": NUMBER, "max_above_chance": NUMBER, "subnetworks": (int,),
    "same_budget": (bool,), "paired": (bool,), "stand_in": (dict,),
    "order": ENTRIES, "better": ENTRIES, "worse": ENTRIES, "methods": ENTRIES, "values": ENTRIES,
    "experiments": ENTRIES,
}  # fmt: skip


def _typed(claim: dict, where: str) -> None:
    for key, value in claim.items():
        wanted = TYPES[key]
        if wanted == ENTRIES:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
        if not ok:
            what = ENTRIES if wanted == ENTRIES else " or ".join(t.__name__ for t in wanted)
            raise UsageError(f"{where}: {key} must be {what}, got {value!r}")


def _check(claim: dict, where: str) -> None:
    for key in ("id", "kind", "statement"):
        if key not in claim:
            raise UsageError(f"{where}: a claim has no {key!r} ({claim.get('id', '?')})")
    where = f"{where}, claim {claim['id']}"
    kind = claim["kind"]
    if kind not in KEYS:
        raise UsageError(f"{where}: unknown kind {kind!r} (known: {', '.join(KEYS)})")
    unknown = set(claim) - COMMON - KEYS[kind]
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for a {kind} claim")
    _typed(claim, where)
    stand_in = claim.get("stand_in", {})
    if set(stand_in) - KEYS[kind]:
        raise UsageError(f"{where}: stand_in may override only keys of a {kind} claim")
    _typed(stand_in, f"{where}, stand_in")
    missing = REQUIRED[kind] - set(claim)
    if missing:
        raise UsageError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    if kind == "ordering" and ("order" in claim) == ("better" in claim or "worse" in claim):
        raise UsageError(f"{where}: an ordering has either `order` or `better` and `worse`")
    if kind == "relation" and sum(b in claim for b in BOUNDS) != 1:
        raise UsageError(f"{where}: a relation has exactly one of {', '.join(BOUNDS)}")
    if claim.get("direction", "higher") not in ("higher", "lower"):
        raise UsageError(f"{where}: direction must be 'higher' or 'lower'")
    if not all(e.count("/") == 1 for e in claim.get("experiments", [])):
        raise UsageError(f"{where}: experiments must be a list of 'suite/experiment'")


def load(folder: Path | None = None) -> list[dict]:
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
        for claim in data.get("claim", []):
            _check(claim, f"claims file {path}")
            out.append(claim)
    ids = [c["id"] for c in out]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise UsageError(f"claims files: claim ids must be unique; repeated: {', '.join(duplicated)}")
    return out
