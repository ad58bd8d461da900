"""Progress on a terminal is tqdm's bar; in a log (stderr not a terminal: CI, tox, a file)
it is whole lines, at most one every 30 s, with no carriage returns."""

import io
import sys

import pytest
from tqdm import tqdm

from suite import cli
from suite.errors import UsageError
from suite.system import progress


@pytest.fixture
def clock(monkeypatch):
    """progress's clock, moved by hand; and no line written recently by another bar."""
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress.Lines, "last", -float("inf"))
    return now


def test_a_log_gets_a_line_at_most_every_30_seconds_and_the_last_state(clock):
    log = io.StringIO()
    cells = progress.bar(total=240, desc="cells", unit="cell", file=log)
    assert isinstance(cells, progress.Lines)
    for i in range(240):  # two minutes of updates twice a second, as the parallel runner polls
        clock[0] += 0.5
        cells.set_postfix_str(f"cell {i} epoch 1")
        cells.update()
    cells.close()
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and lines[-1] == ""
    assert 4 <= len(lines) - 1 <= 6, lines  # the first, one per 30 s of the 120, the last
    assert "240/240" in lines[-2] and "cell 239" in lines[-2]


def test_a_nested_bar_that_leaves_no_line_writes_nothing_when_it_closes(clock):
    log = io.StringIO()
    epochs = progress.bar(range(3), desc="epochs", leave=False, file=log)
    for _ in epochs:
        clock[0] += 1
    assert log.getvalue().count("\n") == 1 and "\r" not in log.getvalue()  # its first state only


def test_a_terminal_gets_tqdm_s_bar(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = progress.bar(total=1, file=io.StringIO())
    assert type(bar) is tqdm
    bar.close()


@pytest.mark.slow
def test_a_run_s_progress_in_a_log_has_no_carriage_return(tmp_path, capfd):
    suite = tmp_path / "one.toml"
    suite.write_text(
        'name = "one"\n[[experiment]]\nname = "one"\ntask = "digits"\narch = "resnet18-cifar"\nwidth = 0.25\n'
        'methods = ["plain"]\nbudgets = ["20K"]\n'
    )
    argv = ["--suite", str(suite), "--profile", "smoke", "--out", str(tmp_path / "out"), "--no-open", "--no-onnx"]
    assert cli.main(argv) == 0
    err = capfd.readouterr().err
    assert "\r" not in err and "cells:" in err and "1/1" in err


def test_the_interval_is_set_by_the_environment_and_refused_when_it_is_not_seconds(monkeypatch):
    monkeypatch.delenv("RPG_BENCH_PROGRESS_SECONDS", raising=False)
    assert progress.every() == progress.LOG_EVERY
    monkeypatch.setenv("RPG_BENCH_PROGRESS_SECONDS", "0")
    assert progress.every() == 0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("RPG_BENCH_PROGRESS_SECONDS", bad)
        with pytest.raises(UsageError, match="RPG_BENCH_PROGRESS_SECONDS must be a number of seconds"):
            progress.every()
