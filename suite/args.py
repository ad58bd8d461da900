"""What every rpg-bench command line shares: one-line errors and the --device choice."""

from __future__ import annotations

import argparse
import difflib

import torch

from suite.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse, without its abbreviations (``--seed 2`` would silently be ``--seeds 2``,
    and start a run), with one-line errors, and an unknown option answered with the
    closest real one."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line and exit 2, not a usage dump
        raise UsageError(message)

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        parsed, rest = self.parse_known_args(args, namespace)
        if rest:
            raise UsageError(self._unknown(rest, getattr(parsed, "command", None)))
        return parsed

    def _unknown(self, rest: list[str], command: str | None) -> str:
        """One line for arguments nothing takes: the nearest option the command has to the
        first unknown one, and where the options are listed."""
        message = f"unrecognized arguments: {' '.join(rest)}"
        flag = next((a.split("=", 1)[0] for a in rest if a.startswith("--")), None)
        if flag is None:
            return message
        parser = self._subparser(command) or self
        options = {o.removeprefix("--"): o for a in parser._actions for o in a.option_strings if o.startswith("--")}
        close = difflib.get_close_matches(flag.removeprefix("--"), list(options), n=1, cutoff=0.6)
        hint = f"did you mean {options[close[0]]}? " if close else ""
        where = f"rpg-bench {command}" if command else "rpg-bench"
        return f"{message}; {hint}`{where} --help` lists the options"

    def _subparser(self, command: str | None) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                return action.choices[command]
        return None


def resolve_device(name: str) -> torch.device:
    """auto: CUDA where there is one, else the CPU; cuda where there is none is bad input."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    return torch.device(name)
