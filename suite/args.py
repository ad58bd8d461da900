"""What every rpg-bench command line shares: one-line errors and the --device choice."""

from __future__ import annotations

import argparse

import torch

from suite.errors import UsageError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, not a usage dump
        raise UsageError(message)


def resolve_device(name: str) -> torch.device:
    """auto: CUDA where there is one, else the CPU; cuda where there is none is bad input."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    return torch.device(name)
