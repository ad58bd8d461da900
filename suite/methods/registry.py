"""The methods by name. A method registers itself where it is defined, as timm registers
its models: ``register(Instance(...))``, configured instances for variants (``rpg-perm-only``
is ``RPG(name="rpg-perm-only", sign="none")``). A method from another package registers the
same way, in a module that package names in the ``rpg_bench.methods`` entry-point group:
the command line imports those modules before it reads a suite (README: "Adding a method")."""

from __future__ import annotations

import functools
from importlib import metadata
from typing import TYPE_CHECKING

from suite.errors import UsageError

if TYPE_CHECKING:
    from suite.methods.base import Method

METHODS: dict[str, Method] = {}


def register(method):
    """Add a method under its name, and return what was given: an instance (a configured
    variant, ``register(RPG("rpg-block", scope="block"))``), or a class with no required
    arguments, registered as its instance when used as a decorator (``@register``). A name
    registered twice is a programming error."""
    instance = method() if isinstance(method, type) else method
    if not getattr(instance, "name", ""):
        raise ValueError(f"{type(instance).__name__} has no name")
    if instance.name in METHODS and METHODS[instance.name] is not instance:
        raise ValueError(f"a method named {instance.name!r} is already registered")
    METHODS[instance.name] = instance
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
