"""Where data sets live: ``--data-root``, else ``$RPG_BENCH_DATA_ROOT``, else a folder in
the user's cache (the platform's convention, by platformdirs: ``~/.cache/rpg-bench/data``
on Linux, ``~/Library/Caches/rpg-bench/data`` on macOS, ``%LOCALAPPDATA%`` on Windows), as
torchvision users expect a data set to be fetched into a cache folder. Data sets that can
be downloaded (CIFAR, Fashion-MNIST) are fetched there with torchvision's checksums; the
others, and any download the network refuses, stop with one line naming the folder and
the layout to put there. The image sets ``RPG_BENCH_DATA_ROOT=/data``.
"""

from __future__ import annotations

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


def where(root: str | Path) -> str:
    """How a message names the root: the default folder says it is one, and how to change it."""
    if os.environ.get(ENV) or Path(root) != default():
        return str(root)
    return f"{root} (the default data folder; choose another with --data-root DIR or ${ENV})"


def fetch(download: Callable[[], object]) -> str | None:
    """Run a torchvision download with a 20 s socket timeout: None, or why it failed (any
    network failure: URLError, timeouts, HTTP errors)."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        download()
        return None
    except Exception as e:  # noqa: BLE001 - whatever the network did, it is one line for the user
        return f"{type(e).__name__}: {e}"
    finally:
        socket.setdefaulttimeout(old)


def placed(layout: str, root: str | Path) -> str:
    """A layout written for ``<data-root>`` with the actual root in its place."""
    return layout.replace("<data-root>", str(root))
