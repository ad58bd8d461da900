"""The methods by name. A method registers itself where it is defined, as timm registers
its models: ``register(Instance(...))``, configured instances for variants (``rpg-perm-only``
is ``RPG(name="rpg-perm-only", sign="none")``). A method from outside the package registers
the same way before the suite that names it is loaded (README: "Adding a method")."""

from __future__ import annotations

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
