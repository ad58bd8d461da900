"""Nights for the history's tests: the paper oracle's Table 2 cells (tests/paper_oracle.py,
the paper's numbers with seed noise value ±0.1), one output folder per night, each with its
own commit, start time and CI run, and seeded noise of their own on every cell (a night is
never a copy of the last). From the fifth night on, ResNet-34-RPG at 11M is 3 points lower."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from paper_oracle import synthesize, write

from suite import claims, cli

NIGHTS = 7
DROP_FROM = 5  # the first night (1-based) at the lower level
DROP = 3.0
NOISE = 0.05  # each cell's own night-to-night noise, on top of the oracle's seeds
ORDER = [4, 1, 6, 0, 3, 5, 2]  # the order the folders are given in: not the nights'


def commit(night: int) -> str:
    """Night ``night``'s commit (1-based): forty hex digits of its own."""
    return f"{night:02x}{'c0ffee' * 7}"[:40]


def dropped(cell) -> bool:
    return cell.experiment == "table2" and cell.arch == "resnet34-cifar" and cell.method == "rpg"


def write_nights(root: Path, render: bool = True) -> list[Path]:
    """The seven nights under ``root``, as folders given in ORDER; each rendered by
    ``rpg-bench report`` (its own index.html) when ``render``."""
    every = claims.load()
    rng = np.random.default_rng(41)
    folders = {}
    for night in range(1, NIGHTS + 1):

        def shift(cell, night=night):
            return -DROP if night >= DROP_FROM and dropped(cell) else 0.0

        run, recs = synthesize("cifar", every, shift)
        recs = [r for r in recs if r["config"]["experiment"] == "table2"]
        for r in recs:
            noise = float(rng.normal(0, NOISE))
            for name in (r["metric"], f"val_{r['metric']}"):
                r["metrics"][name] += noise
            r["env"]["git_commit"] = commit(night)
        run |= {"keys": [r["key"] for r in recs], "cells": len(recs), "run_id": str(7000 + night)}
        run |= {"started": f"2026-05-{night:02d}T03:{night:02d}:00+00:00"}
        run["run_url"] = f"https://ci.example/runs/{run['run_id']}"
        out = root / f"night-{chr(ord('a') + ORDER.index(night - 1))}"
        write(out, run, recs)
        if render:
            assert cli.main(["report", str(out)]) == 0
        folders[night] = out
    return [folders[i + 1] for i in ORDER]
