"""Result records on disk: one JSON file per cell, written atomically, read back strictly."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from suite.errors import UsageError, naming

RECORDS = "records"
RUN = "run.json"  # the last run's settings and the keys of its cells
SCHEMA = "schemas/record.json"  # under the suite package: the JSON Schema of a record


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path`` to write before the rename, created with mode 0o666 less
    the umask as any tool's file is (0644 under umask 022): tempfile.mkstemp's 0600 would
    leave every record and report unreadable to anyone else. O_EXCL and a random name keep
    it private to this writer, as mkstemp's did."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise naming(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def write_record(out: Path, record: dict) -> Path:
    """A cell's record, as OUT/records/<key>.json (its form: suite/schemas/record.json)."""
    path = out / RECORDS / f"{record['key']}.json"
    write_json(path, record)
    return path


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


def older(folder: Path, version: int) -> int:
    """How many records in ``folder`` an older rpg-bench wrote (a record format before ``version``)."""
    count = 0
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            count += json.loads(path.read_text(encoding="utf-8"))["config"].get("record_version", 0) < version
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # an unreadable record is reported where it is read, not here
    return count


def read_run(out: Path) -> tuple[dict, list[dict]]:
    """The last run's settings and the records of its cells only: a folder may also hold
    other profiles' or seeds' records, and mixing them would average incomparable numbers.
    The settings say how many records were left out (``other_records``) and how many of
    the run's cells have none (``unrecorded``: not run yet, interrupted, or in a shard
    not merged)."""
    recs = read_all(out)
    path = out / RUN
    run = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if run.get("keys"):
        keys = set(run["keys"])
        run["other_records"] = sum(r["key"] not in keys for r in recs)
        recs = [r for r in recs if r["key"] in keys]
        run["unrecorded"] = len(keys - {r["key"] for r in recs})
    return run, recs


@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold OUT's lock for the run: a second rpg-bench on the same OUT is refused, not
    interleaved. The kernel drops the lock when the process dies, even by SIGKILL. Bad input
    found before this point leaves no trace; creating OUT for its lock is the first write."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise UsageError(
                f"{out} is in use by another rpg-bench ({holder}); wait for it or use another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
