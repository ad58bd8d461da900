"""Training recipes as data: suite/recipes/<task>.toml, one [profile.<name>] table each.

Every table, every suite override (``[experiment.recipe]``) and every command-line
``--set field=value`` is checked against the Recipe's typed fields (pydantic, strict: an
unknown field, a string for a number or a fraction of an epoch is refused, naming the
file, the profile and the field)."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import fields, replace
from importlib import resources
from typing import Annotated, Any, Literal

import pydantic

from suite.errors import UsageError
from suite.tasks.base import Recipe

FIELDS = tuple(f.name for f in fields(Recipe))


@pydantic.dataclasses.dataclass(config=pydantic.ConfigDict(extra="forbid", strict=True, frozen=True))
class _Checked:
    """The Recipe's fields as pydantic checks them (a float field takes an int, as TOML writes 0)."""

    epochs: pydantic.PositiveInt
    batch_size: pydantic.PositiveInt
    lr: pydantic.PositiveFloat
    momentum: pydantic.NonNegativeFloat = 0.9
    weight_decay: pydantic.NonNegativeFloat = 5e-4
    schedule: Literal["cosine", "step", "poly"] = "cosine"
    optimizer: Literal["sgd", "adam", "rmsprop"] = "sgd"
    milestones: tuple[pydantic.PositiveInt, ...] = ()
    gamma: pydantic.PositiveFloat = 0.1
    eval_batch_size: pydantic.PositiveInt = 256
    # paper widths times this; past 4× a ResNet-34 no longer fits in memory to be built
    width_scale: Annotated[float, pydantic.Field(gt=0, le=4)] = 1.0
    train_size: pydantic.PositiveInt | None = None
    val_size: pydantic.PositiveInt | None = None
    ring_std: Literal["smallest", "official"] | pydantic.PositiveFloat = "smallest"
    precision: Literal["fp32", "bf16"] = "fp32"


def _message(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def check(values: dict[str, Any], where: str) -> Recipe:
    """A Recipe from ``values``, or one line naming ``where`` and the field at fault."""
    if isinstance(values.get("milestones"), list):
        values = {**values, "milestones": tuple(values["milestones"])}
    try:
        checked = _Checked(**values)
    except pydantic.ValidationError as e:
        raise UsageError(f"{where}: {_message(e)}") from None
    except (TypeError, ValueError) as e:
        raise UsageError(f"{where}: {e}") from None
    return Recipe(**{name: getattr(checked, name) for name in FIELDS})


def override(recipe: Recipe, changes: dict[str, Any], where: str) -> Recipe:
    """``recipe`` with ``changes`` (fields of a recipe), checked as a whole."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise UsageError(f"{where}: unknown recipe field(s) {', '.join(unknown)}; a recipe has {', '.join(FIELDS)}")
    return check({**recipe.as_dict(), **changes}, where)


# The devices a profile may be meant for: what rpg-bench plan costs it in (suite.run.plan).
DEVICES = ("cpu", "gpu")


@functools.cache
def _tables(stem: str) -> tuple[str, dict[str, dict]]:
    path = resources.files("suite") / "recipes" / f"{stem}.toml"
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
def load(stem: str) -> dict[str, Recipe]:
    """The profiles of suite/recipes/<stem>.toml, by name (each table's recipe fields)."""
    path, tables = _tables(stem)
    return {
        name: check({k: v for k, v in values.items() if k != "device"}, f"recipe file {path}, profile {name}")
        for name, values in tables.items()
    }


@functools.cache
def devices(stem: str) -> dict[str, str]:
    """The device each profile of suite/recipes/<stem>.toml is meant for, "cpu" or "gpu":
    its table's ``device``, given in every table. Kept out of the Recipe, so it is no part
    of a cell's key: where a profile is costed says nothing about how it trains."""
    path, tables = _tables(stem)
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
    """``--set field=value`` pairs: values read as TOML (``10``, ``0.05``, ``"step"``,
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
    return replace(recipe, **changes)


def freeze(changes: dict) -> tuple:
    """Recipe overrides as a sorted, hashable tuple of (field, value): a cell carries them."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in changes.items()))
