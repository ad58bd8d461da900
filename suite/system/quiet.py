"""Measurement in quiet (``--jobs N``): while one worker times a network, the other workers
of the run stand still, and the measuring worker uses every thread a serial run would.
Latencies then mean the same however the run was launched. (Peak memory does not need it:
on a CPU it is probed on one thread in a forked process, on CUDA each worker has its GPU.)

A readers-writer lock across the run's worker processes, on two files in OUT (flock): a
worker holds ``.quiet`` shared while it runs a cell (never while it waits for one), and
gives it up at its next training step when a measurement is waiting; a measurement takes
``.quiet-turn`` (so that no worker takes ``.quiet`` again meanwhile), then ``.quiet``
exclusively. A serial run (no ``join``) has no locks and no pauses.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import torch

LOCK, TURN = ".quiet", ".quiet-turn"


class _Gate:
    def __init__(self, folder: Path, threads: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.lock = open(folder / LOCK, "a")  # noqa: SIM115 - held for the worker's life
        self.turn = open(folder / TURN, "a")  # noqa: SIM115
        self.threads = threads
        self.working = False

    def _enter(self) -> None:
        """Take a shared hold, behind any measurement that holds or waits for the turn."""
        fcntl.flock(self.turn, fcntl.LOCK_SH)
        fcntl.flock(self.turn, fcntl.LOCK_UN)
        fcntl.flock(self.lock, fcntl.LOCK_SH)

    @contextlib.contextmanager
    def cell(self) -> Iterator[None]:
        self._enter()
        self.working = True
        try:
            yield
        finally:
            self.working = False
            fcntl.flock(self.lock, fcntl.LOCK_UN)

    def pause(self) -> None:
        if not self.working:
            return
        try:  # free unless a measurement holds (or waits for) the turn
            fcntl.flock(self.turn, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(self.turn, fcntl.LOCK_UN)
            return
        except BlockingIOError:
            pass
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self._enter()  # blocks until the measurement is over

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        if not self.working:
            yield
            return
        # Our own shared hold goes first: two workers that want to measure at once must not
        # each wait for the other's.
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        fcntl.flock(self.turn, fcntl.LOCK_EX)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            fcntl.flock(self.turn, fcntl.LOCK_UN)
            self._enter()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        if not self.working:
            yield
            return
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        try:
            yield
        finally:
            self._enter()


_gate: _Gate | None = None  # per process: set in --jobs workers only


def join(folder: Path, threads: int) -> None:
    """Make this process one of the run's workers: while it runs a cell (``cell()``), it
    trains while nobody measures, and measures with ``threads`` threads while nobody trains."""
    global _gate
    if _gate is None:
        _gate = _Gate(folder, threads)


def cell() -> contextlib.AbstractContextManager:
    """Around one cell of a worker: the time it counts as training."""
    return _gate.cell() if _gate is not None else contextlib.nullcontext()


def pause() -> None:
    """Called between training steps: stand still while another worker measures."""
    if _gate is not None:
        _gate.pause()


def measuring() -> contextlib.AbstractContextManager:
    """Around a measurement: every other worker of the run stands still meanwhile."""
    return _gate.measuring() if _gate is not None else contextlib.nullcontext()


def waiting() -> contextlib.AbstractContextManager:
    """Around a wait for another worker (its measurement of a shared key): this one counts
    as not training meanwhile, so a measurement never waits for a worker that waits."""
    return _gate.waiting() if _gate is not None else contextlib.nullcontext()
