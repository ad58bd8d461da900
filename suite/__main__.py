"""``python -m suite``: rpg-bench, in the form torchrun launches (``torchrun ... -m suite``)."""

from suite.cli import entry

entry()
