"""Training recipes as data: suite/recipes/<task>.toml, one [profile.<name>] table each.

Every table, every suite override (``[experiment.recipe]``) and every command-line
``--set field=value`` is checked by the Recipe itself (suite.tasks.base.Recipe, a strict
pydantic model: an unknown field, a string for a number or a fraction of an epoch is
refused in one line naming the file, the profile and the field)."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic

from suite.errors import UsageError
from suite.tasks.base import Recipe

FIELDS = tuple(Recipe.model_fields)


def message(error: pydantic.ValidationError) -> str:
    """A pydantic error in one line: its first fault, with the field's name."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def check(values: dict[str, Any], where: str) -> Recipe:
    """A Recipe from ``values``, or one line naming ``where`` and the field at fault."""
    if isinstance(values.get("milestones"), list):
        values = {**values, "milestones": tuple(values["milestones"])}
    try:
        return Recipe(**values)
    except pydantic.ValidationError as e:
        raise UsageError(f"{where}: {message(e)}") from None


def override(recipe: Recipe, changes: dict[str, Any], where: str) -> Recipe:
    """``recipe`` with ``changes`` (fields of a recipe), checked as a whole."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise UsageError(
            f"{where}: unknown recipe field(s) {', '.join(unknown)}; a recipe has {', '.join(FIELDS)} "
            "(a method's knob is set as <method>.<knob>, e.g. rpg.ring_std)"
        )
    return check({**recipe.as_dict(), **changes}, where)


# The devices a profile may be meant for: what rpg-bench plan costs it in (suite.run.plan).
DEVICES = ("cpu", "gpu")


@functools.cache
def _tables(stem: str, folder: Path | None) -> tuple[str, dict[str, dict]]:
    # A plugin's task keeps its recipes in its own folder; the built-in tasks', in suite/recipes.
    path = (folder if folder is not None else resources.files("suite") / "recipes") / f"{stem}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"recipe file {path} is malformed: {e}") from None
    except OSError as e:
        raise UsageError(f"recipe file {path} cannot be read: {e}") from None
    if set(data) != {"profile"} or not isinstance(data["profile"], dict):
        raise UsageError(f"recipe file {path}: expected only [profile.<name>] tables")
    return str(path), data["profile"]


@functools.cache
def load(stem: str, folder: Path | None = None) -> dict[str, Recipe]:
    """The profiles of suite/recipes/<stem>.toml (or ``folder``/<stem>.toml: a plugin's own), by
    name (each table's recipe fields)."""
    path, tables = _tables(stem, folder)
    return {
        name: check({k: v for k, v in values.items() if k != "device"}, f"recipe file {path}, profile {name}")
        for name, values in tables.items()
    }


@functools.cache
def devices(stem: str, folder: Path | None = None) -> dict[str, str]:
    """The device each profile of suite/recipes/<stem>.toml (or ``folder``'s) is meant for,
    "cpu" or "gpu": its table's ``device``, given in every table. Kept out of the Recipe, so
    it is no part of a cell's key: where a profile is costed says nothing about how it trains."""
    path, tables = _tables(stem, folder)
    out = {}
    for name, values in tables.items():
        if values.get("device") not in DEVICES:
            raise UsageError(
                f"recipe file {path}, profile {name}: device must be one of {', '.join(DEVICES)}, "
                f"got {values.get('device')!r}"
            )
        out[name] = values["device"]
    return out


def parse_sets(texts: list[str]) -> dict[str, Any]:
    """``--set field=value`` (or ``<method>.<knob>=value``) pairs: values read as TOML (``10``, ``0.05``, ``"step"``,
    ``[60, 120]``); a bare word is a string."""
    out = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set {text!r}: write field=value, e.g. --set epochs=10")
        try:
            out[name.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[name.strip()] = value.strip()
    return out


def with_changes(recipe: Recipe, changes: dict[str, Any]) -> Recipe:
    """``recipe`` with ``changes`` already checked (a cell's overrides)."""
    return recipe.model_copy(update=changes)


def freeze(changes: dict) -> tuple:
    """Recipe overrides as a sorted, hashable tuple of (field, value): a cell carries them."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in changes.items()))
