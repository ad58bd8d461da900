"""A cell: (task, method, budget, seed, profile) within an experiment, and its key.

Its record is ``OUT/records/<key>.json``, where the key hashes the cell's full
configuration (recipe included), so a changed recipe never reuses an old result. This
module is a leaf: the runner, its workers, the memory probe and the plan all read cells.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from suite import archs, tasks
from suite.archs import Net
from suite.tasks import recipes

# 2: recipes name their optimizer; experiments may name a recipe family. 3: a number not
# measured is null with a reason (was the string "n/a"); records carry the training metric,
# the wrong-seed metric of RPG networks and the checkpoint's breakdown (suite/schemas/record.json).
RECORD_VERSION = 3
CHECKPOINTS = "checkpoints"  # per-epoch training state of unfinished cells, under OUT
# Method knobs that were recipe fields before methods had their own (#37), with the value
# every recipe had by default. A key still writes them as then: in every cell's recipe (at
# that default unless the cell's method sets it) and, when set, among its recipe overrides,
# so that each key from before names the same configuration. Other knobs are under "knobs".
RECIPE_KNOBS = {"ring_std": "smallest"}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Cell:
    suite: str
    experiment: str
    task: str
    arch: str
    width: float
    method: str
    budget: int
    seed: int
    profile: str
    # Recipe fields the suite or --set changes, as (field, value) pairs: part of the key
    # through the recipe, and named in the config (a cell without them keeps its old key).
    overrides: tuple = ()
    # Knobs of the cell's method that --set <method>.<knob>=value sets, as (knob, value)
    # pairs (suite.methods.check_knobs); part of the key.
    knobs: tuple = ()

    def recipe(self) -> tasks.Recipe:
        base = tasks.get(self.task).profiles[self.profile]
        return recipes.with_changes(base, dict(self.overrides)) if self.overrides else base

    def config(self) -> dict:
        fields = {k: v for k, v in asdict(self).items() if k not in ("overrides", "knobs")}
        knobs = dict(self.knobs)
        recipe = self.recipe().as_dict() | {k: knobs.get(k, v) for k, v in RECIPE_KNOBS.items()}
        config = {**fields, "recipe": recipe, "record_version": RECORD_VERSION}
        overrides = dict(self.overrides) | {k: v for k, v in knobs.items() if k in RECIPE_KNOBS}
        if overrides:
            config["recipe_overrides"] = overrides
        if others := {k: v for k, v in knobs.items() if k not in RECIPE_KNOBS}:
            config["knobs"] = others
        return config

    def key(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def net(self) -> Net:
        task = tasks.get(self.task)
        return Net(archs.get(self.arch), self.width, task.in_channels, task.num_classes)

    @classmethod
    def from_config(cls, config: dict) -> Cell:
        """The cell a record's (or a request's) ``config`` describes."""
        changes = config.get("recipe_overrides", {})
        knobs = {k: v for k, v in changes.items() if k in RECIPE_KNOBS} | config.get("knobs", {})
        overrides = recipes.freeze({k: v for k, v in changes.items() if k not in RECIPE_KNOBS})
        fields = {k: config[k] for k in cls.__dataclass_fields__ if k not in ("overrides", "knobs")}
        return cls(**fields, overrides=overrides, knobs=recipes.freeze(knobs))

    def label(self) -> str:
        return f"{self.experiment} {self.method}@{self.budget} seed {self.seed}"


def data_key(cell: Cell) -> tuple[str, bool]:
    """What a cell's data depends on: its task, and whether its profile generates stand-in data."""
    return cell.task, cell.profile in tasks.get(cell.task).generated_profiles


def checkpoint(out: Path, cell: Cell) -> Path:
    return out / CHECKPOINTS / f"{cell.key()}.pt"
