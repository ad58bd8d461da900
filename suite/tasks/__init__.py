"""Tasks by name: what a suite's `task` field may say."""

from __future__ import annotations

from suite.errors import UsageError
from suite.tasks.base import Recipe, Splits, Task
from suite.tasks.cifar import Cifar
from suite.tasks.digits import Digits
from suite.tasks.fashion import Fashion
from suite.tasks.imagenet import Imagenet
from suite.tasks.mpii import Mpii
from suite.tasks.s3dis import S3dis

TASKS: dict[str, Task] = {
    t.name: t for t in [Digits(), Fashion(), Cifar("cifar10", 10), Cifar("cifar100", 100), Imagenet(), Mpii(), S3dis()]
}


def get(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


__all__ = ["TASKS", "Recipe", "Splits", "Task", "get"]
