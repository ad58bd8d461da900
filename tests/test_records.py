"""Records, reports and run files on disk: written atomically, with the mode the user's
umask gives, as any other tool's files are."""

import contextlib
import os
import stat

import pytest

from suite import cli, records

SUITE = """name = "one"
[[experiment]]
name = "one"
task = "digits"
arch = "resnet18-cifar"
width = 0.25
methods = ["plain"]
budgets = ["20K"]
"""


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_written_file_has_the_mode_the_umask_gives(mask, expected, tmp_path):
    path = tmp_path / "deep" / "record.json"
    with umask(mask):
        records.write_json(path, {"a": 1})
        assert mode(path) == expected
        records.write_atomic(path, "replaced\n")  # a rewrite, too: the new file's mode, not the old's
    assert mode(path) == expected and path.read_text() == "replaced\n"
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.slow
def test_a_rendered_runs_files_are_readable_by_others(tmp_path, capsys):
    """A run under umask 022 writes its records, run.json and every report file 0644."""
    suite = tmp_path / "one.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    args = ["--suite", str(suite), "--out", str(out), "--profile", "smoke", "--no-progress", "--no-open"]
    with umask(0o022):
        assert cli.main([*args, "--no-onnx"]) == 0
    written = [p for p in out.rglob("*") if p.is_file() and p.name != ".lock"]
    names = {p.name for p in written}
    assert {"index.html", "results.csv", "leaderboard.csv", "leaderboard.json", "claims.json", "run.json"} <= names
    assert any(p.parent.name == "records" for p in written)
    unreadable = [str(p.relative_to(out)) for p in written if not mode(p) & stat.S_IROTH]
    assert not unreadable
