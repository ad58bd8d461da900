"""The methods by name. A method registers itself where it is defined, as timm registers
its models: ``register(Instance(...))``, configured instances for variants (``rpg-perm-only``
is ``RPG(name="rpg-perm-only", sign="none")``). A method from another package registers the
same way, in a module that package names in the ``rpg_bench.methods`` entry-point group:
the command line imports those modules before it reads a suite (README: "Adding a method")."""

from __future__ import annotations

import functools
from importlib import metadata
from typing import TYPE_CHECKING, TypeVar

from suite.errors import UsageError

if TYPE_CHECKING:
    from suite.methods.base import Method

METHODS: dict[str, Method] = {}
M = TypeVar("M", bound="Method")


def register(method: M) -> M:
    """Add ``method`` under its name; a name registered twice is a programming error."""
    if not method.name:
        raise ValueError(f"{type(method).__name__} has no name")
    if method.name in METHODS and METHODS[method.name] is not method:
        raise ValueError(f"a method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


GROUP = "rpg_bench.methods"


@functools.cache
def load_plugins() -> list[str]:
    """Import every module of the ``rpg_bench.methods`` entry-point group (each registers its
    methods); the names of the entry points loaded. A module that fails is bad input."""
    loaded = []
    for point in metadata.entry_points(group=GROUP):
        try:
            point.load()
        except Exception as e:  # noqa: BLE001 - any failure of someone else's module is one line
            raise UsageError(
                f"method plugin {point.name} ({point.value}) does not load: {type(e).__name__}: {e}"
            ) from None
        loaded.append(point.name)
    return loaded
