"""Things by name, registered where they are defined (as timm registers its models): the
methods (suite.methods), the tasks (suite.tasks) and the architectures (suite.archs) are
each a ``Registry``. An item is registered as an instance with a ``name``: a class with no
required arguments by decorating it (``@register``), a configured variant by a call beside
its class (``register(RPG(name="rpg-perm-only", sign="none"))``).

Another package adds items the same way, in a module it names in the registry's
entry-point group (``rpg_bench.methods``, ``rpg_bench.tasks``, ``rpg_bench.archs``): the
command line imports those modules before it reads a suite (``load_plugins``), and so does
each --jobs worker it spawns.

Written here rather than taken from a library: catalogue (spaCy's) registers by an explicit
name string, overwrites a name registered twice, and reads an entry point as the object
itself, where a plugin here is a module that registers any number of configured instances."""

from __future__ import annotations

from importlib import metadata
from typing import TypeVar

from suite.errors import UsageError

T = TypeVar("T")

# Every registry made: suite.methods, suite.tasks and suite.archs make theirs when imported.
REGISTRIES: list[Registry] = []


def load_plugins() -> None:
    """Import the plugin modules of every registry's entry-point group."""
    for registry in REGISTRIES:
        registry.load_plugins()


class Registry(dict[str, T]):
    """A kind of thing by name (a dict, in the order registered) and the entry-point group
    other packages add to it through."""

    def __init__(self, kind: str, group: str) -> None:
        super().__init__()
        self.kind = kind  # in messages: "unknown task 'x'", "task plugin p does not load"
        self.group = group
        self.plugins: list[str] | None = None  # the entry points loaded, once loaded
        REGISTRIES.append(self)

    def register(self, item):
        """Add an instance under its name and return what was given: an instance, or a class
        with no required arguments, registered as its instance (``@register``). A name
        registered twice is a programming error."""
        instance = item() if isinstance(item, type) else item
        name = getattr(instance, "name", "")
        if not name:
            raise ValueError(f"{type(instance).__name__} has no name")
        if name in self and self[name] is not instance:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self[name] = instance
        return item

    def named(self, name: str) -> T:
        """The item called ``name``; an unknown name is bad input, answered with the names known."""
        try:
            return self[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}; known: {', '.join(self)}") from None

    def load_plugins(self) -> list[str]:
        """Import every module of the entry-point group (each registers its items), once; the
        names of the entry points loaded. A module that fails to load is bad input."""
        if self.plugins is None:
            loaded = []
            for point in metadata.entry_points(group=self.group):
                try:
                    point.load()
                except Exception as e:  # noqa: BLE001 - any failure of someone else's module is one line
                    raise UsageError(
                        f"{self.kind} plugin {point.name} ({point.value}) does not load: {type(e).__name__}: {e}"
                    ) from None
                loaded.append(point.name)
            self.plugins = loaded
        return self.plugins
