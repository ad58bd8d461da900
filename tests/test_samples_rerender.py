"""The committed samples re-render byte for byte: a change to the code that reads records,
judges claims or ranks rows cannot change what a committed report says without the sample
being re-rendered in the same commit (and the change then shows in its diff)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import suite.report
from suite import cli

SAMPLES = Path(__file__).resolve().parent.parent / "reports" / "samples"
RENDERED = ("claims.json", "leaderboard.json", "leaderboard.csv", "results.csv")


def _samples() -> list[Path]:
    return sorted(p.parent for p in SAMPLES.rglob("claims.json"))  # a ladder's rungs one level down


@pytest.mark.parametrize("sample", _samples(), ids=lambda p: p.relative_to(SAMPLES).as_posix())
def test_a_committed_sample_renders_to_the_same_bytes(sample, tmp_path, monkeypatch):
    # The figures are not compared (matplotlib is an extra); without it the rest renders alone.
    monkeypatch.setitem(sys.modules, "suite.report.plots", None)
    monkeypatch.delattr(suite.report, "plots", raising=False)
    out = tmp_path / sample.name
    shutil.copytree(sample, out)
    for name in RENDERED:
        (out / name).unlink(missing_ok=True)
    assert cli.main(["report", str(out)]) == 0
    for name in RENDERED:
        if (sample / name).exists():
            assert (out / name).read_bytes() == (sample / name).read_bytes(), f"{sample.name}/{name} changed"


def test_there_are_samples_to_compare():
    assert len(_samples()) >= 8


def test_a_report_and_its_figures_render_to_the_same_bytes_twice(tmp_path):
    sample = SAMPLES / "digits-cpu"
    pages = []
    for name in ("first", "second"):
        shutil.copytree(sample, tmp_path / name)
        assert cli.main(["report", str(tmp_path / name)]) == 0
        pages.append((tmp_path / name / "index.html").read_text())
    assert "<svg" in pages[0] and pages[0] == pages[1]
