"""Operating-system errors on the paths rpg-bench reads and writes: one line naming the path
and what to do, exit 2, nothing half-written; a disk that fills mid-run loses nothing
recorded, and the rerun finishes the run."""

import errno
import json
import os
from pathlib import Path

import pytest

from suite import cli, records
from suite.training import checkpoints

SUITE = """name = "two"
[[experiment]]
name = "two"
task = "digits"
arch = "resnet18-cifar"
width = 0.25
methods = ["rpg", "plain"]
budgets = ["20K"]
"""
FAST = ["--profile", "smoke", "--no-progress", "--no-open", "--no-onnx"]


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(SUITE)
    return str(path)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("/proc/rpg-bench-forbidden/out", "No such file or directory"),  # no folder can be made under /proc
        ("{file}/out", "is not a writable folder"),  # a file where a folder is expected
        ("{tmp}/" + "n" * 300, "File name too long"),
    ],
)
def test_an_out_that_cannot_be_made_is_one_line(out, expected, suite, tmp_path, capsys):
    (tmp_path / "file").write_text("a file, not a folder")
    out = out.format(file=tmp_path / "file", tmp=tmp_path)
    assert cli.main(["--suite", suite, "--out", out, *FAST]) == 2
    err = one_line(capsys)
    assert expected in err and ("choose" in err or "check the path" in err or "not a writable folder" in err)


@pytest.mark.parametrize(
    ("code", "advice"),
    [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only"), (errno.ENOSPC, "no space left")],
)
def test_permission_a_read_only_disk_and_a_full_one_are_named(code, advice, suite, tmp_path, monkeypatch, capsys):
    """Root ignores permissions, and a read-only or full file system cannot be had in every
    sandbox: the first write of the run (its lock's folder) fails as the system would."""
    out = tmp_path / "out"
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == out:
            raise OSError(code, os.strerror(code), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert cli.main(["--suite", suite, "--out", str(out), *FAST]) == 2
    err = one_line(capsys)
    assert str(out) in err and advice in err
    assert not out.exists()


def test_a_folder_where_the_report_is_written_is_one_line(suite, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["--suite", suite, "--out", str(out), *FAST, "--methods", "plain"]) == 0
    (out / "index.html").unlink()
    (out / "index.html").mkdir()
    capsys.readouterr()
    assert cli.main(["report", str(out)]) == 2
    err = one_line(capsys)
    assert "index.html" in err and "Is a directory" in err
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_loses_nothing_recorded_and_the_rerun_finishes(suite, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    write, written = records.write_atomic, []

    def filling(path: Path, text: str) -> None:
        if path.parent.name == records.RECORDS and written:  # the second record finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, text)
        if path.parent.name == records.RECORDS:
            written.append(path)

    monkeypatch.setattr(records, "write_atomic", filling)
    assert cli.main(["--suite", suite, "--out", str(out), *FAST]) == 2
    err = one_line(capsys)
    assert "No space left on device" in err and "run the same command again" in err
    (kept,) = list((out / "records").glob("*.json"))
    assert json.loads(kept.read_text())["status"] == "ok"  # whole, and untouched
    assert not list((out / "records").glob(".*.tmp"))
    monkeypatch.setattr(records, "write_atomic", write)
    assert cli.main(["--suite", suite, "--out", str(out), *FAST]) == 0
    statuses = [json.loads(p.read_text())["status"] for p in (out / "records").glob("*.json")]
    assert statuses == ["ok", "ok"]


@pytest.mark.slow
def test_a_checkpoint_that_finds_the_disk_full_stops_the_run_and_is_not_the_cells_failure(
    suite, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    real = checkpoints.save

    def full(path, state):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(checkpoints, "save", full)
    assert cli.main(["--suite", suite, "--out", str(out), *FAST, "--methods", "rpg"]) == 2
    assert "No space left on device" in one_line(capsys)
    assert not list((out / "records").glob("*.json"))  # not recorded as the method's failure
    monkeypatch.setattr(checkpoints, "save", real)
    assert cli.main(["--suite", suite, "--out", str(out), *FAST, "--methods", "rpg"]) == 0


@pytest.mark.slow
def test_unreadable_inputs_are_one_line(suite, tmp_path, monkeypatch, capsys):
    (tmp_path / "folder.toml").mkdir()
    assert cli.main(["--suite", str(tmp_path / "folder.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "folder.toml" in one_line(capsys)
    # digits ships with scikit-learn: a data root that does not exist is no error for it.
    missing = str(tmp_path / "no" / "such")
    assert cli.main(["--suite", suite, "--out", str(tmp_path / "o"), "--data-root", missing, *FAST]) == 0
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "holds no rpg-bench records" in one_line(capsys)
    assert cli.main(["merge", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "m")]) == 2
    one_line(capsys)
