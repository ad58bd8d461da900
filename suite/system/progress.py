"""Progress bars: tqdm's on a terminal; on anything else (a CI log, tox, a file) whole lines,
at most one every LOG_EVERY seconds (or $RPG_BENCH_PROGRESS_SECONDS), instead of carriage-return updates twice a second
(the log of one `tox -e bench` of 24 cells was 150 KB of bar updates)."""

from __future__ import annotations

import io
import math
import os
import sys
import time

from tqdm import tqdm

from suite.errors import UsageError

LOG_EVERY = 30.0  # seconds between a log's progress lines; $RPG_BENCH_PROGRESS_SECONDS sets another


def every() -> float:
    """Seconds between a log's progress lines: LOG_EVERY, or $RPG_BENCH_PROGRESS_SECONDS."""
    given = os.environ.get("RPG_BENCH_PROGRESS_SECONDS")
    if given is None:
        return LOG_EVERY
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:
        raise UsageError(f"RPG_BENCH_PROGRESS_SECONDS must be a number of seconds (0 or more), got {given!r}")
    return seconds


write = tqdm.write  # a line that does not tear a bar on a terminal


def bar(iterable=None, **kwargs) -> tqdm:
    """A progress bar on stderr, as tqdm takes its arguments: every bar of rpg-bench is one."""
    if kwargs.get("disable") or sys.stderr.isatty():
        return tqdm(iterable, **kwargs)
    return Lines(iterable, **kwargs)


class Lines(tqdm):
    """tqdm for a log: each display a whole line, with no carriage return or cursor move,
    and none within LOG_EVERY seconds of the last line any bar wrote (bars nest: the cells
    and a cell's epochs); a bar that leaves its line (the cells) writes its last state when
    it closes."""

    last = -math.inf  # when any bar last wrote a line

    def __init__(self, *args, **kwargs) -> None:
        self.every = every()
        kwargs.setdefault("mininterval", self.every)
        kwargs.setdefault("ascii", True)  # a log viewer's font may lack tqdm's block characters
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "":  # tqdm clearing a bar in place: a log has nothing to clear
            return False
        now = time.monotonic()
        if msg is None and now - Lines.last < self.every:
            return True
        Lines.last = now
        self.fp.write(f"{self if msg is None else msg}\n")
        self.fp.flush()
        return True

    def clear(self, nolock: bool = False) -> None:
        """Nothing drawn in place, nothing to clear (tqdm.write clears bars around its line)."""

    def close(self) -> None:
        if self.disable:
            return
        if (abs(self.pos) == 0 if self.leave is None else self.leave) and hasattr(self, "last_print_t"):
            Lines.last = -math.inf
            self.display()  # the last state, always
        # tqdm's own close redraws the bar in place and ends it with a newline or a
        # carriage return: here that goes nowhere.
        fp, self.fp = self.fp, io.StringIO()
        try:
            super().close()
        finally:
            self.fp = fp
