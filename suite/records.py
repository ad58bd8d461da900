"""Result records on disk: one JSON file per cell, written atomically, read back strictly."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from suite.errors import UsageError

RECORDS = "records"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"results record {path} is unreadable or truncated: {e}") from None
    if not isinstance(data, dict) or not {"key", "config", "status"} <= set(data):
        raise UsageError(f"results record {path} is not an rpg-bench record")
    return data


def read_all(out: Path) -> list[dict]:
    folder = out / RECORDS
    return [read(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
