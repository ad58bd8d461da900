"""The tasks by name (a suite.registry.Registry): what a suite's ``task`` field may say. A
task registers itself where it is defined: ``@register`` on a class with no required
arguments, ``register(Cifar("cifar10", 10))`` for a configured one. Another package's tasks
register the same way, in a module it names in the ``rpg_bench.tasks`` entry-point group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from suite.registry import Registry

if TYPE_CHECKING:
    from suite.tasks.base import Task

TASKS: Registry[Task] = Registry("task", "rpg_bench.tasks")
register = TASKS.register
get = TASKS.named
