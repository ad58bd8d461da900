"""rpg-bench: the engine that runs RPG and its comparators at matched parameter budgets."""

from importlib import metadata

try:  # one version string, in pyproject.toml, read from the installed package's metadata
    __version__ = metadata.version("rpg-bench")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
