"""The methods by name (a suite.registry.Registry). A method registers itself where it is
defined: ``@register`` on a class with no required arguments, ``register(Instance(...))``
for a configured variant (``rpg-perm-only`` is ``RPG(name="rpg-perm-only", sign="none")``).
Another package's methods register the same way, in a module it names in the
``rpg_bench.methods`` entry-point group (README: "Adding a method")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from suite.registry import Registry

if TYPE_CHECKING:
    from suite.methods.base import Method

METHODS: Registry[Method] = Registry("method", "rpg_bench.methods")
register = METHODS.register
get = METHODS.named
