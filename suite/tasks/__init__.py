"""Tasks by name: what a suite's `task` field may say. One module per task, each
registering its tasks where it defines them (suite.tasks.registry)."""

from __future__ import annotations

from suite.tasks.base import Recipe, Splits, Task
from suite.tasks.registry import TASKS, get, register

# They register as imported, in the order `rpg-bench list` shows them: the offline ones first.
from suite.tasks import digits, fashion, cifar, imagenet, mpii, s3dis  # noqa: F401  # isort: skip

__all__ = ["TASKS", "Recipe", "Splits", "Task", "get", "register"]
