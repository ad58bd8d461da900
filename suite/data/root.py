"""Where data sets live: ``--data-root``, else ``$RPG_BENCH_DATA_ROOT``, else a folder in
the user's cache (the platform's convention, by platformdirs: ``~/.cache/rpg-bench/data``
on Linux, ``~/Library/Caches/rpg-bench/data`` on macOS, ``%LOCALAPPDATA%`` on Windows), as
torchvision users expect a data set to be fetched into a cache folder. Data sets that can
be downloaded (CIFAR, Fashion-MNIST) are fetched into that default folder with
torchvision's checksums; the others, and any download the network refuses, stop with one
line naming the folder and the layout to put there. A root chosen by --data-root or
``$RPG_BENCH_DATA_ROOT`` is read as given: a data set missing there is refused in one
line, never downloaded into it nor read from another copy. The image sets
``RPG_BENCH_DATA_ROOT=/data``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

ENV = "RPG_BENCH_DATA_ROOT"


def default() -> Path:
    """The user's cache folder for data sets (created only when something is downloaded)."""
    import platformdirs  # only when no root was given

    return platformdirs.user_cache_path("rpg-bench", appauthor=False) / "data"


def resolve(given: str | None) -> str:
    """The data root a run reads: the one given, else the environment's, else ``default()``."""
    return given or os.environ.get(ENV) or str(default())


def chosen(root: str | Path) -> bool:
    """Whether the root was chosen (--data-root or ``$RPG_BENCH_DATA_ROOT``), not the default folder."""
    return bool(os.environ.get(ENV)) or Path(root) != default()


def where(root: str | Path) -> str:
    """How a message names the root: the default folder says it is one, and how to change it."""
    if chosen(root):
        return str(root)
    return f"{root} (the default data folder; choose another with --data-root DIR or ${ENV})"


def missing(name: str, root: str | Path, layout: str) -> str:
    """The line for a data set missing from a chosen root, which is never downloaded into."""
    return (
        f"{name} is not in the data root {root} (given by --data-root or ${ENV}, read as given): "
        f"place it there as {placed(layout, root)}"
    )


def fetch(download: Callable[[], object], into: Path) -> str | None:
    """Run a torchvision download that writes into the folder ``into`` with a 20 s socket
    timeout: None, or why it failed (any network failure: URLError, timeouts, HTTP errors).
    A failed download leaves no empty folder it made behind (torchvision makes its folders
    before it connects)."""
    made = [p for p in (into, *into.parents) if not p.exists()]  # deepest first
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        download()
        return None
    except Exception as e:  # noqa: BLE001 - whatever the network did, it is one line for the user
        for folder in made:
            with contextlib.suppress(OSError):  # not empty: something arrived; keep it
                folder.rmdir()
        return f"{type(e).__name__}: {e}"
    finally:
        socket.setdefaulttimeout(old)


def placed(layout: str, root: str | Path) -> str:
    """A layout written for ``<data-root>`` with the actual root in its place."""
    return layout.replace("<data-root>", str(root))
