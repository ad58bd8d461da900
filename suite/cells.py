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

    def recipe(self) -> tasks.Recipe:
        base = tasks.get(self.task).profiles[self.profile]
        return recipes.with_changes(base, dict(self.overrides)) if self.overrides else base

    def config(self) -> dict:
        fields = {k: v for k, v in asdict(self).items() if k != "overrides"}
        config = {**fields, "recipe": self.recipe().as_dict(), "record_version": RECORD_VERSION}
        if self.overrides:
            config["recipe_overrides"] = dict(self.overrides)
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
        overrides = tuple(
            sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in config.get("recipe_overrides", {}).items())
        )
        return cls(**{k: config[k] for k in cls.__dataclass_fields__ if k != "overrides"}, overrides=overrides)

    def label(self) -> str:
        return f"{self.experiment} {self.method}@{self.budget} seed {self.seed}"


def data_key(cell: Cell) -> tuple[str, bool]:
    """What a cell's data depends on: its task, and whether its profile generates stand-in data."""
    return cell.task, cell.profile in tasks.get(cell.task).generated_profiles


def checkpoint(out: Path, cell: Cell) -> Path:
    return out / CHECKPOINTS / f"{cell.key()}.pt"
